"""`evaluate`: train picked candidates for real (digits), or read the benchmark's accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from nb201_synthetic import CHEAP_TOP, write_tables

from mote_optuna.cli import main
from mote_optuna.config import StudyConfig, config_from_dict
from mote_optuna.data import DatasetConfig, load_arrays, per_label_subset
from mote_optuna.errors import UserError
from mote_optuna.evaluate import candidates, evaluate_study
from mote_optuna.report import pareto_frame, trials_frame
from mote_optuna.spaces.nb201 import NB201Space
from mote_optuna.study import load_existing_study, run_study


def _digits_subset(tmp_path: Path) -> Path:
    """50 images per label of scikit-learn's digits (real data), as an npz file."""
    arrays = per_label_subset(load_arrays(DatasetConfig(name="digits")), 50, seed=0)
    path = tmp_path / "digits500.npz"
    np.savez(path, x=arrays.x, y=arrays.y)
    return path


def _study(tmp_path: Path) -> tuple[StudyConfig, optuna.Study, Path]:
    truth, scores = write_tables(tmp_path, cheap_top=True)
    digits = _digits_subset(tmp_path)
    config = config_from_dict(
        {
            "name": "evaluate",
            "storage": f"journal:{tmp_path / 'evaluate.log'}",
            "sampler": {"name": "random", "seed": 0},
            "n_trials": 3,
            "estimator": {"kind": "table", "table": str(scores)},
            "dataset": {"name": "digits"},
            "device": "cpu",
            "evaluation": {
                "dataset": {"name": "npz", "path": str(digits)},
                "epochs": 10,
                "batch_size": 32,
                "lr": 0.1,
                "augment": False,
            },
        },
        "test",
    )
    run_study(config, out=lambda s: None)
    study = load_existing_study(config)
    study.enqueue_trial(NB201Space().to_params(CHEAP_TOP))  # the highest MOTE, no convolutions
    config.n_trials = 4
    run_study(config, out=lambda s: None)
    return config, load_existing_study(config), truth


def test_evaluate_trains_top1_on_digits_and_stores_it(tmp_path: Path) -> None:
    config, study, _ = _study(tmp_path)
    (top,) = candidates(study, config.objectives, top_k=1, pareto=False)
    assert top.user_attrs["arch"] == NB201Space().to_str(CHEAP_TOP)
    lines: list[str] = []
    record = evaluate_study(study, config, top_k=1, out=lines.append)
    result = record["trials"][str(top.number)]
    assert result["eval_source"].startswith("trained: 10 epochs on npz (400 train / 100 held-out")
    assert result["eval_acc"] > 30.0, "10 classes: chance is 10 %"
    assert record["final_pick"] == top.number
    assert any("accuracy from trained" in line for line in lines)
    # stored in the study, read back by the report
    again = load_existing_study(config)
    frame = trials_frame(again, config.objectives)
    picked = frame[frame["final_pick"]]
    assert list(picked["number"]) == [top.number]
    assert float(picked["eval_acc"].iloc[0]) == result["eval_acc"]
    assert "eval_acc" in pareto_frame(again, config.objectives).columns


def test_evaluate_with_truth_uses_recorded_accuracy(tmp_path: Path) -> None:
    config, study, truth = _study(tmp_path)
    record = evaluate_study(study, config, pareto=True, truth=truth, out=lambda s: None)
    assert len(record["trials"]) == len(study.best_trials)
    assert all("recorded, not trained" in r["eval_source"] for r in record["trials"].values())
    best = max(record["trials"].values(), key=lambda r: r["eval_acc"])
    assert record["trials"][str(record["final_pick"])] == best
    with pytest.raises(UserError, match="exactly one"):
        evaluate_study(study, config, out=lambda s: None)


def test_evaluate_cli_with_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, truth = _study(tmp_path)
    study_file = tmp_path / "study.yaml"
    study_file.write_text(
        f"name: evaluate\nstorage: journal:{tmp_path / 'evaluate.log'}\nn_trials: 4\n"
        f"estimator:\n  kind: table\n  table: {tmp_path / 'scores.csv'}\n"
    )
    code = main(["evaluate", str(study_file), "--top-k", "2", "--truth", str(truth)])
    out = capsys.readouterr().out
    assert code == 0 and "final pick: trial" in out and "recorded, not trained" in out
