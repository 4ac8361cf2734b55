"""``bench study-search``: real studies over sampler seeds, the true accuracy of each top-1, the
summary beside the space's best and a random search's expected top-1 (exact order statistics)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from helpers import REPO_ROOT, write_study

from mote_optuna.bench.study_search import expected_random_top1
from mote_optuna.cli import main
from mote_optuna.spaces.nb201 import NB201Space

TRUTH = REPO_ROOT / "tests" / "data" / "nb201_test_acc.csv.gz"


def test_expected_random_top1_is_the_mean_max_over_every_subset() -> None:
    assert expected_random_top1(np.array([3.0, 1.0, 2.0]), 2) == pytest.approx(8 / 3)
    values = np.random.default_rng(0).normal(size=7)
    for n in (1, 3, 7):
        brute = np.mean([max(c) for c in itertools.combinations(values, n)])
        assert expected_random_top1(values, n) == pytest.approx(brute)


def test_studies_over_seeds_and_their_top1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = write_study(tmp_path / "study.yaml", n_trials=4, name="s")
    table = pd.read_csv(TRUTH)  # a 12-epoch validation column, made up: the stage selects on it
    table["cifar10_valid_acc_12ep"] = -table["cifar10_test_acc_200ep"]
    truth_csv = tmp_path / "truth.csv"
    table.to_csv(truth_csv, index=False)
    out = tmp_path / "out"
    argv = ["bench", "study-search", str(study), "--truth", str(truth_csv), "--seeds", "1,2"]
    argv += ["--objectives", "live_flops", "--jobs", "2", "--select-k", "1,3", "--out", str(out)]
    assert main(argv) == 0
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert sorted(r["seed"] for r in runs) == [1, 2]
    truth = table.set_index("arch_str")["cifar10_test_acc_200ep"]
    space = NB201Space()
    for run in runs:
        name = f"s_live_flops_s{run['seed']}"
        trials = optuna.load_study(study_name=name, storage=f"sqlite:///{out / name}.db").trials
        live = {t.user_attrs["arch"]: t.values[0] for t in trials if t.values}
        live_number = {t.user_attrs["arch"]: t.number for t in reversed(trials) if t.values}
        assert run["top1_value"] == max(live.values())
        assert live[run["top1"]] == pytest.approx(
            space.analytic_cost(space.live_arch(space.from_str(run["top1"]))).flops
        )
        first = {}  # each distinct architecture (arch_key) by its first trial
        for t in sorted((t for t in trials if t.values), key=lambda t: t.number):
            first.setdefault(t.user_attrs["arch_key"], t)
        tied = [t.user_attrs["arch"] for t in first.values() if t.values[0] == run["top1_value"]]
        assert run["top1_tied"] == len(tied) and run["workers"] == 1  # bench/top1.py's rule
        assert run["top1_accuracy"] == pytest.approx(np.mean([truth[a] for a in tied]))
        assert run["top1"] == min(tied, key=lambda a: live_number[a])
    summary = json.loads((out / "search.json").read_text())
    assert summary["space_best"] == pytest.approx(truth.max())
    mean = np.mean([r["top1_accuracy"] for r in runs])
    assert summary["objectives"]["live_flops"]["mean_top1"] == pytest.approx(mean)
    assert summary["manifest"]["command"].startswith("python -m mote_optuna bench study-search")
    for run in runs:  # k=1: the top-1; k=3: the worst test accuracy of the top 3 (valid = -test)
        name = f"s_live_flops_s{run['seed']}"
        trials = optuna.load_study(study_name=name, storage=f"sqlite:///{out / name}.db").trials
        ranked = sorted(
            {t.user_attrs["arch"]: t.values[0] for t in trials if t.values}.items(),
            key=lambda item: -item[1],
        )
        k1 = summary["select"]["live_flops top-k k=1 cifar10_valid_acc_12ep"]["by_seed"]
        k3 = summary["select"]["live_flops top-k k=3 cifar10_valid_acc_12ep"]["by_seed"]
        assert k1[str(run["seed"])] == pytest.approx(truth[run["top1"]])  # select: lowest number
        assert k3[str(run["seed"])] == pytest.approx(min(truth[a] for a, _ in ranked[:3]))
    written = (out / "search.md").read_text()  # both tables, as printed
    assert "| live_flops |" in written and "| live_flops top-k k=3 " in written
    (out / "search.md").unlink()
    assert main(["bench", "render", str(out / "search.json")]) == 0  # from the JSON alone
    assert (out / "search.md").read_text() == written
    capsys.readouterr()
    assert main(argv) == 0  # finished studies are not run again
    assert len((out / "runs.jsonl").read_text().splitlines()) == 2
    assert "| live_flops |" in capsys.readouterr().out
