"""``bench busy``: real runs of a study file under two policies, one beside a busy process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import write_study

from mote_optuna.cli import main


def test_runs_under_policies_and_the_ratio_to_the_single_thread_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = write_study(tmp_path / "s.yaml", n_trials=2)
    out = tmp_path / "busy"
    args = ["bench", "busy", str(study), "--trials", "2", "--runs", "default:1", "--out", str(out)]
    assert main(args) == 0
    record = json.loads((out / "busy.json").read_text())
    runs = {(r["policy"], r["competitors"]): r for r in record["runs"]}
    assert set(runs) == {("single", 0), ("default", 1)}  # the baseline is always run
    assert runs[("single", 0)]["ratio"] == 1.0 and all(r["trials"] == 2 for r in runs.values())
    default = runs[("default", 1)]
    assert default["ratio"] == pytest.approx(
        default["wall_s"] / runs[("single", 0)]["wall_s"], abs=0.01
    )
    assert "| default: one single-thread process per core" in (out / "busy.md").read_text()
    assert {"commit", "cpu", "cores"} <= set(record["manifest"])
    assert main([*args[:5], "--runs", "fast:1", "--out", str(out)]) == 2
    assert "POLICY:COMPETITORS" in capsys.readouterr().err
