"""``bench correlation`` end to end on the ``tiny`` budget, on a truth CSV and npz written here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from helpers import write_study

from mote_optuna.bench.correlation import sample_cells, study_settings
from mote_optuna.cli import build_parser, main
from mote_optuna.data import DatasetConfig
from mote_optuna.estimators.ensemble import RULE
from mote_optuna.estimators.settings import EstimatorConfig
from mote_optuna.keys import ARCH_ATTR
from mote_optuna.spaces.nb201 import NB201Space


@pytest.fixture(autouse=True)
def _restore_threads():
    """The bench sets torch's thread count (--threads 1); give the next tests theirs back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("bench")
    space = NB201Space()
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(12)]
    convs = np.array([sum(op.startswith("nor_conv") for op in a) for a in archs], dtype=float)
    truth = pd.DataFrame(
        {
            "arch_str": [space.to_str(a) for a in archs],
            "cifar10_test_acc_200ep": 80 + 2 * convs + rng.normal(0, 0.5, len(archs)),
            "cifar100_test_acc_200ep": 50 + 3 * convs + rng.normal(0, 0.5, len(archs)),
            "imagenet16_test_acc_200ep": 20 + convs + rng.normal(0, 0.5, len(archs)),
            "params_M_cifar10": 0.1 + 0.1 * convs,  # skips measuring the full network
            "flops_M_cifar10": 10 + 20 * convs,
        }
    ).drop_duplicates("arch_str")
    truth_path = root / "truth.csv"
    truth.to_csv(truth_path, index=False)
    y = np.repeat(np.arange(4), 10)
    colours = rng.integers(0, 256, size=(4, 1, 1, 3))
    x = np.clip(colours[y] + rng.normal(0, 20, (len(y), 32, 32, 3)), 0, 255).astype(np.uint8)
    data_path = root / "tiny.npz"
    np.savez(data_path, x=x, y=y)
    released = truth[["arch_str"]].assign(
        mote=rng.normal(size=len(truth)),
        landscape_term=rng.normal(size=len(truth)),
        speed_term=rng.normal(size=len(truth)),
    )
    released_path = root / "released.csv"
    released.to_csv(released_path, index=False)
    return truth_path, data_path, released_path


def _run(truth: Path, data: Path, out: Path, n: int, *extra: str) -> int:
    argv = ["bench", "correlation", "--truth", str(truth), "--data", str(data)]
    argv += ["--budget", "tiny", "--n", str(n), "--seed", "0", "--out", str(out)]
    argv += ["--baseline-batch", "4", "--reference", "3", "--threads", "1", *extra]
    return main(argv)


def test_end_to_end_and_resume(
    inputs: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth, data, released = inputs
    out = tmp_path / "out"
    assert _run(truth, data, out, 3) == 0
    result = json.loads((out / "correlation.json").read_text())
    assert result["n"] == 3
    assert set(result["seconds_per_arch"]) >= {"median", "p90"}
    for name in ("mote", "landscape", "speed", "paper_formula", "tse", "params", "flops"):
        assert set(result["scores"][name]["kendall_tau"]) == {"cifar10", "cifar100", "imagenet16"}
    for name in ("synflow", "naswot", "grad_norm"):
        assert name in result["scores"]
    assert (out / "correlation.html").stat().st_size > 0
    assert "τ cifar10" in capsys.readouterr().out

    cache = out / "cells.jsonl"
    lines = cache.read_text().splitlines()
    first = {r["arch"]: r for r in map(json.loads, lines[1:])}
    assert len(first) == len(lines) - 1 >= 3  # header + one line per cell, sample and reference
    assert len(result["reference"]["archs"]) == 3
    assert set(first) == set(result["reference"]["archs"]) | set(first)
    # An interrupted run leaves a cut line: it is ignored and that cell is scored again.
    cut = json.loads(lines[-1])["arch"]
    cache.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    assert _run(truth, data, out, 4, "--released", str(released)) == 0
    records = [
        json.loads(line) for line in cache.read_text().splitlines()[1:] if line.endswith("}")
    ]
    archs = [r["arch"] for r in records]
    assert len(archs) == len(set(archs)) and cut in archs  # the cut cell scored once again
    kept = [a for a in first if a != cut]
    assert archs[: len(kept)] == kept  # reused in place, not rescored
    assert [r["mote"] for r in records[: len(kept)]] == [first[a]["mote"] for a in kept]
    result = json.loads((out / "correlation.json").read_text())
    assert result["n"] == 4
    assert set(result["fidelity_vs_released"]) >= {"landscape", "speed_flops", "mote_flops"}


def test_cache_with_other_settings_is_refused_and_older_zero_cost_terms_refreshed(
    inputs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    truth, data, _ = inputs
    out = tmp_path / "out"
    assert _run(truth, data, out, 2, "--no-baselines") == 0
    assert _run(truth, data, out, 2, "--no-baselines", "--epochs", "3") == 2
    cache = out / "cells.jsonl"
    lines = [json.loads(line) for line in cache.read_text().splitlines()]
    header, records = lines[0]["header"], lines[1:]
    fresh = {r["arch"]: r["az_expressivity"] for r in records}
    # as written by the version before: stale zero-cost terms, and MOTE terms to keep
    header["zero_cost"] -= 1
    for r in records:
        r.update(az_expressivity=123.0, landscape=7.0)
    cache.write_text("".join(json.dumps(r) + "\n" for r in [{"header": header}, *records]))
    assert _run(truth, data, out, 2, "--no-baselines") == 0
    lines = [json.loads(line) for line in cache.read_text().splitlines()]
    assert lines[0]["header"]["zero_cost"] == header["zero_cost"] + 1
    assert {r["arch"]: r["az_expressivity"] for r in lines[1:]} == fresh  # recomputed
    assert {r["landscape"] for r in lines[1:]} == {7.0}  # kept, not retrained
    assert len(lines) == len(records) + 1
    # a cache of a newer version than this code's is refused, not silently reused
    lines[0]["header"]["zero_cost"] += 1
    cache.write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert _run(truth, data, out, 2, "--no-baselines") == 2


def test_listed_cells_are_scored_in_place_of_a_sample(
    inputs: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth, data, _ = inputs
    listed = list(pd.read_csv(truth).arch_str[-2:])
    cells = tmp_path / "cells.txt"
    cells.write_text("\n".join([*listed, listed[0], ""]) + "\n")  # a repeat and a blank line
    out = tmp_path / "out"
    assert _run(truth, data, out, 3, "--no-baselines", "--cells", str(cells)) == 0
    assert list(pd.read_csv(out / "scores.csv").arch_str) == listed

    capsys.readouterr()
    cells.write_text(listed[0] + "\n|not_a_cell~0|\n")
    assert _run(truth, data, tmp_path / "bad", 3, "--cells", str(cells)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1 of 2 lines are not an arch_str" in err[0]


def test_the_bench_scores_the_ensemble_exactly_as_a_study(
    inputs: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One scorer (``estimators.scorer``): a study's ``ensemble`` value of a cell equals the
    bench's, with the study's estimator and dataset (``--study``) and the same reference
    population (the study's warm-up)."""
    _, data, _ = inputs
    # one torch thread in both, as the bench's --threads 1: the same float summation order
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study_file = write_study(
        tmp_path / "study.yaml",
        storage=storage,
        n_trials=5,
        objectives=["ensemble", "flops", "params"],
        estimator={"budget": "tiny", "calibration": {"population": 3, "seed": 0}},
        dataset={"name": "npz", "path": str(data)},
    )
    assert main(["run", str(study_file)]) == 0
    study = optuna.load_study(study_name="t", storage=storage)
    trials = {t.user_attrs[ARCH_ATTR]: t.values[0] for t in study.trials if t.values}
    truth = tmp_path / "truth.csv"
    pd.DataFrame({"arch_str": list(trials), "cifar10_test_acc_200ep": range(len(trials))}).to_csv(
        truth, index=False
    )
    cells = tmp_path / "cells.txt"
    cells.write_text("\n".join(trials) + "\n")
    argv = ["bench", "correlation", "--truth", str(truth), "--study", str(study_file)]
    argv += ["--cells", str(cells), "--reference", "3", "--reference-seed", "0"]
    argv += ["--threads", "1", "--no-baselines", "--out", str(tmp_path / "bench")]
    assert main(argv) == 0
    scores = pd.read_csv(tmp_path / "bench" / "scores.csv", index_col="arch_str")["ensemble"]
    assert len(trials) >= 4
    for arch, value in trials.items():
        assert scores[arch] == pytest.approx(value, rel=1e-9, abs=1e-9), arch


def test_set_and_the_old_flags_give_one_estimator(
    inputs: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--set estimator.FIELD=VALUE`` is validated as a study's; an old flag is its alias."""
    truth, data, _ = inputs
    base = ["bench", "correlation", "--truth", str(truth), "--data", str(data)]
    base += ["--out", str(tmp_path / "out")]

    def settings(*extra: str) -> tuple[EstimatorConfig, DatasetConfig]:
        args = build_parser().parse_args([*base, *extra])
        config = study_settings(args.study, args.data, args.set)
        return config.estimator, config.dataset

    assert settings("--set", "estimator.epochs=3") == settings("--epochs", "3")
    assert settings("--epochs", "3")[0].epochs == 3
    old = settings("--budget", "tiny", "--lr", "1e-3", "--estimator-seed", "2", "--width", "4")
    sets = ["estimator.budget=tiny", "estimator.lr=1e-3", "estimator.seed=2", "estimator.width=4"]
    assert old == settings(*[a for s in sets for a in ("--set", s)])
    # a study's sections, --data in place of its dataset, then the flags in their order
    study = write_study(tmp_path / "s.yaml", estimator={"budget": "tiny", "epochs": 4})
    estimator, dataset = settings("--study", str(study), "--set", "estimator.width=4")
    assert (estimator.epochs, estimator.width, estimator.budget) == (4, 4, "tiny")
    assert (dataset.name, dataset.path) == ("npz", str(data))
    assert settings("--epochs", "2", "--set", "estimator.epochs=5")[0].epochs == 5

    bad = {
        "--set=estimator.epochs=many": "estimator.epochs: expected an integer",
        "--set=estimator.colour=red": "estimator.colour: unknown field",
        "--set=sampler.name=tpe": "takes estimator.FIELD=VALUE or dataset.FIELD=VALUE",
        "--budget=huge": "estimator.budget: expected one of 'paper', 'lite', 'tiny'",
        "--reference=2": "--reference 2: the ensemble's reference population needs at least 3",
    }
    for flag, message in bad.items():
        capsys.readouterr()
        assert main([*base, flag]) == 2, flag
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def test_table_of_several_runs_and_the_manifest(
    inputs: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth, data, _ = inputs
    for seed in (0, 1, 2):
        out = tmp_path / f"s{seed}"
        argv = ["bench", "correlation", "--truth", str(truth), "--data", str(data), "--n", "4"]
        argv += ["--seed", str(seed), "--budget", "tiny", "--reference", "3", "--threads", "1"]
        assert main([*argv, "--baseline-batch", "4", "--out", str(out)]) == 0
        manifest = json.loads((out / "correlation.json").read_text())["manifest"]
        assert {"commit", "versions", "cpu", "cores", "threads", "date", "command"} <= set(
            manifest
        )
        assert {"torch", "optuna", "numpy"} <= set(manifest["versions"])
        assert manifest["command"].endswith(f"--out {out}")  # the command as given
    runs = [str(tmp_path / f"s{seed}") for seed in (0, 1, 2)]
    assert main(["bench", "table", *runs, "--out", str(tmp_path / "table")]) == 0
    table = json.loads((tmp_path / "table" / "table.json").read_text())["spaces"]["nb201"]
    assert table["seeds"] == [0, 1, 2] and table["held_out"] == [1, 2]
    row = table["stats"]["kendall_tau.cifar10"]["ensemble"]
    held = [row["by_seed"]["1"], row["by_seed"]["2"]]
    assert row["held_out_mean"] == pytest.approx(np.mean(held))
    text = (tmp_path / "table" / "table.md").read_text()
    assert "| ensemble |" in text and "seed 0 (tuned)" in text
    assert text.strip() in capsys.readouterr().out
    assert main(["bench", "table", runs[0], runs[0]]) == 2  # one run per space and seed
    capsys.readouterr()
    # the rule is chosen on seed 0 only
    assert main(["bench", "ensemble-rule", runs[1]]) == 2
    assert "tune on seed 0 only" in capsys.readouterr().err
    assert main(["bench", "ensemble-rule", runs[0], "--out", str(tmp_path / "rule")]) == 0
    record = json.loads((tmp_path / "rule" / "ensemble_rule.json").read_text())
    gains = [r["mean_gain_over_size"] for r in record["rules"]]
    assert record["chosen"] == record["rules"][0] and gains[0] == max(gains)
    assert record["criterion"] == "mean-gain"
    assert record["current"]["describe"] == RULE.describe()
    for space, best in record["ceiling"].items():  # no rule is above a space's ceiling there
        assert best["any"]["tau"][space] == max(r["tau"][space] for r in record["rules"])
        assert best["any"]["tau"][space] >= best["equal"]["tau"][space]
    rule_md = (tmp_path / "rule" / "ensemble_rule.md").read_text()
    assert f"chosen by mean-gain: {record['chosen']['rule']}" in rule_md
    assert rule_md.strip() in capsys.readouterr().out  # the markdown is what the bench printed


def test_a_held_out_sample_leaves_out_the_tuning_sample(inputs: tuple[Path, Path, Path]) -> None:
    truth = pd.read_csv(inputs[0])
    tuning = set(sample_cells(truth, 4, 0).arch_str)
    held = sample_cells(truth, 6, 1, tuning_n=4)
    assert not tuning & set(held.arch_str) and held.arch_str.is_unique and len(held) == 6
    assert list(held.arch_str[:3]) == list(sample_cells(truth, 3, 1, tuning_n=4).arch_str)
    assert tuning & set(sample_cells(truth, 8, 1).arch_str)  # without it they overlap


def test_compare_runs_of_the_same_cells_under_other_settings(
    inputs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    truth, data, _ = inputs
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run(truth, data, a, 4, "--no-baselines") == 0
    assert _run(truth, data, b, 4, "--no-baselines", "--epochs", "3") == 0
    out = tmp_path / "cmp"
    args = ["bench", "compare", str(a), str(b), "--truth", str(truth), "--out", str(out)]
    assert main(args) == 0
    rows = json.loads((out / "compare.json").read_text())["rows"]
    assert [r["label"] for r in rows] == ["as the first run", "epochs 3"]
    for row, run in zip(rows, (a, b), strict=True):
        mote = json.loads((run / "correlation.json").read_text())["scores"]["mote"]
        assert row["mote"]["kendall_tau"] == pytest.approx(mote["kendall_tau"]["cifar10"])
        low, high = row["mote"]["interval"]
        assert -1.0 <= low <= high <= 1.0
    c = tmp_path / "c"
    assert _run(truth, data, c, 3, "--no-baselines") == 0  # other cells: refused
    assert (
        main(["bench", "compare", str(a), str(c), "--truth", str(truth), "--out", str(out)]) == 2
    )
