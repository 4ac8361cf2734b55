"""`select`: the top-k stage on real tiny studies (table scores, and MOTE at `tiny` on digits)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from helpers import write_study
from nb201_synthetic import write_tables
from optuna_dashboard import get_note
from scipy.special import log_ndtr
from scipy.stats import kendalltau

from mote_optuna.cli import main
from mote_optuna.config import load_config
from mote_optuna.existing_study import load_existing_study
from mote_optuna.fidelity import TableFidelity, TrainFidelity
from mote_optuna.keys import SELECTION_ATTR
from mote_optuna.ranking import top_k
from mote_optuna.select import fit_weights, kendall_tau_a
from mote_optuna.spaces.nb201 import NB201Space
from mote_optuna.storage import make_storage
from mote_optuna.study import run_study

SPACE = NB201Space()

TERMS = ("size", "expressivity", "informative", "meco", "naswot")  # the stored z-scores' names


def _table_study(folder: Path, n_trials: int = 12) -> tuple[Path, Path]:
    """A real 12-trial study scored from a table, and a truth CSV whose 12-epoch validation
    accuracy falls as the score rises (so the best valid candidate is the last of the top k)."""
    truth, scores = write_tables(folder)
    frame = pd.read_csv(truth)
    mote = pd.read_csv(scores).set_index("arch_str")["mote"]
    frame["cifar10_valid_acc_12ep"] = 80.0 - frame["arch_str"].map(mote)
    frame.to_csv(truth, index=False)
    study = write_study(
        folder / "s.yaml", name="sel", storage=f"journal:{folder / 'sel.log'}",
        n_trials=n_trials, estimator={"kind": "table", "table": str(scores)},
    )  # fmt: skip
    run_study(load_config(study), out=lambda _line: None)
    return study, truth


@pytest.fixture
def table_study(tmp_path: Path) -> tuple[Path, Path]:
    return _table_study(tmp_path)


def _select(study: Path, truth: Path, *extra: str) -> int:
    return main(["select", str(study), "--fidelity", "table", "--truth", str(truth), *extra])


class Counter:
    """Counts the fidelity's measurements (``monkeypatch``ed onto its ``measure``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cls: Any) -> None:
        self.calls = 0
        inner = cls.measure

        def measure(fidelity: Any, *args: Any) -> tuple[float, float]:
            self.calls += 1
            return inner(fidelity, *args)  # type: ignore[no-any-return]

        monkeypatch.setattr(cls, "measure", measure)


def test_table_fidelity_picks_the_best_valid_candidate(
    table_study: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study_file, truth = table_study
    out = tmp_path / "out"
    assert _select(study_file, truth, "--top-k", "4", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    config = load_config(study_file)
    study = load_existing_study(config)
    expected = top_k(study, config.objectives, 4)
    valid = pd.read_csv(truth).set_index("arch_str")["cifar10_valid_acc_12ep"]
    best = max(expected, key=lambda t: valid[t.user_attrs["arch"]])
    assert best.number != expected[0].number  # the stage changes the answer of the score alone
    record = json.loads((out / "select.json").read_text())
    assert {"pick", "queries", "candidates", "fidelity", "column"} <= set(record)
    assert record["pick"]["trial"] == best.number
    assert record["pick"]["arch"] == best.user_attrs["arch"]
    assert record["queries"] == 4 and record["column"] == "cifar10_valid_acc_12ep"
    assert record["cost"] == "4 x recorded 12-epoch training"
    assert [c["arch"] for c in record["candidates"]] == [t.user_attrs["arch"] for t in expected]
    for candidate in record["candidates"]:
        assert set(candidate) >= {"arch", "score", "fidelity_value"}
        assert candidate["fidelity_value"] == pytest.approx(valid[candidate["arch"]])
    assert "query 1/4" in printed and "query 4/4" in printed
    assert f"pick: trial {best.number}" in printed
    assert study.user_attrs[SELECTION_ATTR] == record  # stored in the study
    note = get_note(study)
    assert "Final pick (top-k stage)" in note and best.user_attrs["arch"] in note
    assert note.startswith("# sel")  # the study's own note is kept


def test_rerun_and_resume_do_not_query_again(
    table_study: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study_file, truth = table_study
    counter = Counter(monkeypatch, TableFidelity)
    out = ["--out", str(tmp_path / "out")]
    assert _select(study_file, truth, "--top-k", "2", *out) == 0
    assert counter.calls == 2
    assert _select(study_file, truth, "--top-k", "4", *out) == 0  # resumed with a larger K
    assert counter.calls == 4
    assert _select(study_file, truth, "--top-k", "4", *out) == 0  # re-run
    assert counter.calls == 4
    record = json.loads((tmp_path / "out" / "select.json").read_text())
    assert record["queries"] == 4 and record["new_queries"] == 0


def test_report_shows_the_selection(
    table_study: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study_file, truth = table_study
    assert _select(study_file, truth, "--top-k", "3", "--out", str(tmp_path / "sel")) == 0
    pick = json.loads((tmp_path / "sel" / "select.json").read_text())["pick"]
    capsys.readouterr()
    assert main(["report", str(study_file), "--out", str(tmp_path / "rep")]) == 0
    printed = capsys.readouterr().out
    assert "top-k stage (table cifar10_valid_acc_12ep): 3 queries of budget 3" in printed
    assert f"pick: trial {pick['trial']} {pick['arch']}" in printed
    trials = pd.read_csv(tmp_path / "rep" / "trials.csv")
    assert trials["select_value"].notna().sum() == 3
    assert list(trials.loc[trials["select_pick"], "number"]) == [pick["trial"]]
    assert "top-k stage" in (tmp_path / "rep" / "pareto.html").read_text()


def test_select_section_of_the_study_file(table_study: tuple[Path, Path], tmp_path: Path) -> None:
    study_file, truth = table_study
    text = study_file.read_text()
    out = tmp_path / "from-file"
    study_file.write_text(text + f"select: {{top_k: 2, truth: {truth}, out: {out}}}\n")
    assert main(["select", str(study_file)]) == 0
    assert json.loads((out / "select.json").read_text())["queries"] == 2
    (out / "select.json").unlink()
    assert main(["run", str(study_file)]) == 0  # a finished search: run ends with the stage
    assert json.loads((out / "select.json").read_text())["queries"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--truth-column", "cifar10_test_acc_12ep"], "a test column"),
        (["--truth-column", "nope_valid"], "not a column of"),
        (["--top-k", "0"], "select.top_k: must be a positive number"),
        ([], "give --top-k K"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    table_study: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    study_file, truth = table_study
    top = [] if "--top-k" in args or not args else ["--top-k", "2"]
    capsys.readouterr()
    assert _select(study_file, truth, *top, *args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_truth_without_the_arch_and_empty_study(
    table_study: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study_file, truth = table_study
    config = load_config(study_file)
    first = top_k(load_existing_study(config), config.objectives, 1)[0].user_attrs["arch"]
    partial = tmp_path / "partial.csv"
    table = pd.read_csv(truth)
    table[table["arch_str"] != first].to_csv(partial, index=False)
    capsys.readouterr()
    assert _select(study_file, partial, "--top-k", "2") == 2
    err = capsys.readouterr().err
    assert f"no cifar10_valid_acc_12ep for {first}" in err and err.count("\n") == 1
    empty = write_study(tmp_path / "e.yaml", name="empty", storage=f"journal:{tmp_path / 'e.log'}")
    storage = make_storage(load_config(empty).storage_url)
    optuna.create_study(study_name="empty", storage=storage, directions=["maximize"] * 3)
    assert _select(empty, truth, "--top-k", "2") == 2
    err = capsys.readouterr().err
    assert "has no completed trials" in err and err.count("\n") == 1


# --------------------------------------------------------------------------------------------
# Few-query mode


def test_kendall_tau_a_matches_scipy_without_ties() -> None:
    rng = np.random.default_rng(0)
    scores, labels = rng.normal(size=(5, 9)), rng.normal(size=9)
    expected = [kendalltau(row, labels).statistic for row in scores]
    assert list(kendall_tau_a(scores, labels)) == pytest.approx(expected)


def test_fit_weights_finds_the_informative_term() -> None:
    rng = np.random.default_rng(1)
    terms = rng.normal(size=(12, len(TERMS)))
    labels = terms[:, 2] * 3.0  # only the third term ranks the labels
    uniform_tau = kendall_tau_a(log_ndtr(terms).sum(axis=1)[None, :], labels)[0]
    weights, tau = fit_weights(terms, labels, samples=2000, seed=0)
    assert tau > uniform_tau and tau > 0.8
    assert int(np.argmax(weights)) == 2 and weights.sum() == pytest.approx(len(TERMS))
    assert np.all(weights >= 0)


def _ensemble_study(folder: Path, n: int = 30) -> tuple[Path, Path]:
    """A study with the ensemble objective and stored z-scored terms, written through Optuna, and
    a truth CSV whose validation accuracy follows the third term only."""
    study_file = write_study(
        folder / "e.yaml", name="ens", storage=f"journal:{folder / 'ens.log'}",
        objectives=["ensemble", "flops", "params"],
    )  # fmt: skip
    config = load_config(study_file)
    study = optuna.create_study(
        study_name="ens", storage=make_storage(config.storage_url), directions=config.directions
    )
    rng = np.random.default_rng(3)
    archs = {SPACE.key(a): a for a in (SPACE.sample(rng) for _ in range(3 * n))}
    rows = []
    for arch in list(archs.values())[:n]:
        z = dict(zip(TERMS, rng.normal(size=len(TERMS)).round(3), strict=True))
        study.add_trial(
            optuna.trial.create_trial(
                params=SPACE.to_params(arch), distributions=SPACE.distributions(),
                values=[float(log_ndtr(list(z.values())).sum()), 1.0, 1.0],
                user_attrs={"arch": SPACE.to_str(arch), "arch_key": SPACE.key(arch),
                            "ensemble_z": z},
            )
        )  # fmt: skip
        rows.append({"arch_str": SPACE.to_str(arch), "cifar10_valid_acc_12ep": 50 + z[TERMS[2]]})
    truth = folder / "truth.csv"
    pd.DataFrame(rows).to_csv(truth, index=False)
    return study_file, truth


def test_few_query_mode_stays_within_k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    study_file, truth = _ensemble_study(tmp_path)
    counter = Counter(monkeypatch, TableFidelity)
    out = tmp_path / "out"
    args = ["--top-k", "8", "--few-query", "--out", str(out)]
    assert _select(study_file, truth, *args) == 0
    record = json.loads((out / "select.json").read_text())
    assert counter.calls == record["queries"] == len(record["candidates"]) == 8
    assert record["mode"] == "reweight" and record["initial"] == math.ceil(8 / 2)
    assert set(record["weights"]) == set(TERMS)
    config = load_config(study_file)
    study = load_existing_study(config)
    first = [t.number for t in top_k(study, config.objectives, 4)]
    assert [c["trial"] for c in record["candidates"][:4]] == first
    assert len({c["trial"] for c in record["candidates"]}) == 8
    assert record["pick"]["fidelity_value"] == max(
        c["fidelity_value"] for c in record["candidates"]
    )
    assert _select(study_file, truth, *args) == 0  # a re-run reads the stored values
    assert counter.calls == 8
    assert json.loads((out / "select.json").read_text())["candidates"] == record["candidates"]


def test_few_query_mode_needs_the_ensemble(
    table_study: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    study_file, truth = table_study
    capsys.readouterr()
    assert _select(study_file, truth, "--top-k", "3", "--few-query") == 2
    assert "must include ensemble" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Train fidelity


def test_train_fidelity_end_to_end_on_digits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    study_file = write_study(tmp_path / "t.yaml", name="train", n_trials=3)  # tiny MOTE, digits
    run_study(load_config(study_file), out=lambda _line: None)
    counter = Counter(monkeypatch, TrainFidelity)
    out = tmp_path / "out"
    recipe = ["evaluation.epochs=1", "evaluation.batch_size=32", "evaluation.test_fraction=0.75"]
    args = ["select", str(study_file), *(a for r in recipe for a in ("--set", r))]
    args += ["--top-k", "2", "--fidelity", "train", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    record = json.loads((out / "select.json").read_text())
    assert record["fidelity"] == "train" and record["column"] is None
    assert record["source"].startswith("trained: 1 epochs on digits")
    assert counter.calls == record["queries"] == 2
    values = [c["fidelity_value"] for c in record["candidates"]]
    assert all(0.0 <= v <= 100.0 for v in values)
    assert record["pick"]["fidelity_value"] == max(values)
    assert "query 2/2" in printed
    assert main(args) == 0  # the same recipe: stored
    assert counter.calls == 2


def test_train_fidelity_key_follows_the_recipe(tmp_path: Path) -> None:
    study_file = write_study(tmp_path / "t.yaml", name="train")
    keys = {
        TrainFidelity(config, SPACE, config.evaluation).key
        for config in (
            load_config(study_file),
            load_config(study_file, ["evaluation.epochs=12"]),  # the default: the same key
            load_config(study_file, ["evaluation.seed=1"]),
            load_config(study_file, ["evaluation.epochs=1"]),
        )
    }
    assert len(keys) == 3
