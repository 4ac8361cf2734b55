"""The one top-1 rule (bench/top1.py): ties at the best score are averaged, on scored cells and
on a real study; ``bench top1-curve`` uses it on random subsets of pooled correlation runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from mote_optuna.bench.top1 import study_top1, tied_best, top1_accuracy
from mote_optuna.cli import main
from mote_optuna.keys import ARCH_ATTR, ARCH_KEY_ATTR
from mote_optuna.spaces.nb201 import NB201Space


def test_ties_at_the_best_score_are_averaged() -> None:
    scores = np.array([1.0, 3.0, np.nan, 3.0, 2.0])
    acc = np.array([90.0, 91.0, 99.0, 93.0, 95.0])
    assert tied_best(scores).tolist() == [False, True, False, True, False]
    assert top1_accuracy(scores, acc) == pytest.approx(92.0)  # not 91 (earliest) nor 93 (luckiest)
    assert top1_accuracy(np.array([1.0, 2.0]), np.array([50.0, 60.0])) == 60.0
    with pytest.raises(ValueError):
        top1_accuracy(np.array([np.nan]), np.array([1.0]))


def _study(values: list[tuple[str, float]], direction: str) -> optuna.Study:
    study = optuna.create_study(directions=[direction, "minimize"])
    for number, (arch, value) in enumerate(values):
        study.add_trial(
            optuna.trial.create_trial(
                values=[value, float(number)],
                user_attrs={ARCH_ATTR: arch, ARCH_KEY_ATTR: arch.split("#")[0]},
            )
        )
    return study


def test_a_studys_top1_averages_its_tied_distinct_architectures() -> None:
    accuracy = pd.Series({"a": 90.0, "b": 94.0, "c": 80.0, "d": 70.0, "b#twin": 10.0})
    # b#twin is b's equivalent (same arch_key, later): it counts once, as b
    study = _study([("c", 1.0), ("a", 5.0), ("b", 5.0), ("b#twin", 5.0), ("d", 2.0)], "maximize")
    top1 = study_top1(study, ["mote", "flops"], accuracy)
    assert (top1.arch, top1.value, top1.tied, top1.distinct) == ("a", 5.0, 2, 4)
    assert top1.accuracy == pytest.approx(92.0)
    # a minimised score: the lowest value is best
    study = _study([("c", 1.0), ("a", 5.0), ("d", 1.0)], "minimize")
    top1 = study_top1(study, ["mote", "flops"], accuracy)
    assert (top1.arch, top1.tied, top1.accuracy) == ("c", 2, pytest.approx(75.0))


def _run(folder: Path, frame: pd.DataFrame) -> Path:
    folder.mkdir()
    frame.to_csv(folder / "scores.csv", index=False)
    return folder


def test_top1_curve_on_two_pooled_runs(tmp_path: Path) -> None:
    space = NB201Space()
    archs = [space.to_str(a) for a in space.all_archs()[:6]]
    truth = pd.DataFrame({"arch_str": archs, "cifar10_test_acc_200ep": [90, 91, 92, 93, 94, 95]})
    truth.to_csv(tmp_path / "truth.csv", index=False)
    # "good" ranks by accuracy; "flat" ties every cell; a cell scored twice keeps its first row
    first = pd.DataFrame({"arch_str": archs[:4], "good": [1, 2, 3, 4], "flat": 0.0})
    second = pd.DataFrame({"arch_str": archs[3:], "good": [-9, 5, 6], "flat": 0.0})
    runs = [_run(tmp_path / "r0", first), _run(tmp_path / "r1", second)]
    out = tmp_path / "out"
    argv = ["bench", "top1-curve", *map(str, runs), "--truth", str(tmp_path / "truth.csv")]
    argv += ["--scores", "good,flat", "--sizes", "2,6,9", "--draws", "50", "--out", str(out)]
    assert main([*argv, "--show", "good", "--top", "2"]) == 0
    record = json.loads((out / "top1_curve.json").read_text())
    assert record["pool"] == 6 and "manifest" in record
    two, whole = record["rows"]  # sizes not below the pool's 6 are left out; then "all"
    assert two["cells"] == 2 and two["good"] == pytest.approx(two["best"])
    assert two["flat"] < two["good"]  # every draw: the mean of two distinct accuracies
    assert whole["all"] and whole["good"] == 95.0 and whole["flat"] == pytest.approx(92.5)
    text = (out / "top1_curve.md").read_text()
    assert "| 6 (all) | 95.00 | 92.50 | 95.00 |" in text
    assert f"  rank 1  95.00  {archs[5]}" in text
