"""``bench workers``: a real ``run --workers N`` on a journal file, and the per-trial cost of the
storage measured in this process."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from helpers import REPO_ROOT

from mote_optuna.cli import main

TRUTH = REPO_ROOT / "tests" / "data" / "nb201_test_acc.csv.gz"


def test_throughput_and_overhead_on_a_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MOTE_OPTUNA_TEST_PG", raising=False)
    table = tmp_path / "scores.csv"
    truth = pd.read_csv(TRUTH)
    truth.assign(mote=truth.cifar10_test_acc_200ep)[["arch_str", "mote"]].to_csv(
        table, index=False
    )
    out = tmp_path / "out"
    argv = ["bench", "workers", "--table", str(table), "--journal", "--trials", "6"]
    argv += ["--workers", "1", "--overhead-trials", "8", "--out", str(out)]
    assert main(argv) == 0
    record = json.loads((out / "workers.json").read_text())
    (run,) = record["runs"]
    assert (run["storage"], run["workers"], run["complete"]) == ("journal", 1, 6)
    assert run["per_min"] == pytest.approx(60 * 6 / run["window_s"])
    assert run["wall_s"] > run["window_s"]  # start-up and the final figures are outside
    (cost,) = record["overhead"]
    assert cost["compute_ms"] > 0
    assert cost["overhead_ms"] == pytest.approx(cost["cycle_ms"] - cost["compute_ms"])
    assert "manifest" in record and "| journal | 1 | 6 |" in (out / "workers.md").read_text()
    assert main(["bench", "workers", "--table", str(table), "--out", str(out)]) == 2
