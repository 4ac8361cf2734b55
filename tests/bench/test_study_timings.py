"""``bench study-timings`` and ``report``'s timing line read one implementation (timings.py):
on a real SQLite study, a cached trial's copied estimator seconds never count twice."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from mote_optuna.cli import main
from mote_optuna.keys import CACHED_FROM_ATTR, CALIBRATION_WARMUP_ATTR
from mote_optuna.report import timing_summary

T0 = datetime(2026, 1, 1, 12, 0, 0)


def _trial(start: float, end: float, attrs: dict[str, object], state: TrialState) -> FrozenTrial:
    return FrozenTrial(
        number=0, trial_id=0, state=state, value=1.0 if state == TrialState.COMPLETE else None,
        values=None, datetime_start=T0 + timedelta(seconds=start),
        datetime_complete=T0 + timedelta(seconds=end), params={"x": 0.5},
        distributions={"x": FloatDistribution(0, 1)}, user_attrs=attrs, system_attrs={},
        intermediate_values={},
    )  # fmt: skip


def _study(url: str) -> optuna.Study:
    study = optuna.create_study(study_name="timed", storage=url, direction="maximize")
    done = TrialState.COMPLETE
    for trial in [
        _trial(0, 2, {"trial_seconds": 2.0, CALIBRATION_WARMUP_ATTR: True}, done),
        _trial(10, 13, {"trial_seconds": 3.0, "mote_seconds": 2.5}, done),
        # reused trial 1's values: its copied mote_seconds must not count again
        _trial(14, 14.5, {"mote_seconds": 2.5, CACHED_FROM_ATTR: 1}, done),
        _trial(15, 20, {"trial_seconds": 5.0, "mote_seconds": 4.5}, done),
        _trial(20.5, 21, {}, TrialState.PRUNED),
    ]:
        study.add_trial(trial)
    return study


def test_the_bench_and_the_report_read_the_same_timings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = _study(url)
    line = timing_summary(study)
    assert line.startswith("trials: 4 complete, 1 pruned; 3 trained, 1 cached;")
    assert "median 3.00, p90 4.60" in line  # the warm-up's 2 s, 3 s and 5 s
    out = tmp_path / "out"
    assert main(["bench", "study-timings", url, "timed", "--out", str(out)]) == 0
    record = json.loads((out / "study_timings.json").read_text())
    assert (record["warmup"], record["sampled"], record["cached"]) == (1, 3, 1)
    assert record["span_s"] == pytest.approx(10.0)  # 10 s .. 20 s: COMPLETE sampled trials
    assert record["gaps_s"] == pytest.approx(1.0 + 0.5)
    assert record["median_s"] == {"trial_seconds": 4.0, "mote_seconds": 3.5}
    assert {"commit", "versions", "cpu", "cores", "threads", "date"} <= set(record["manifest"])
    assert "| mote_seconds | 3.50 | 2 |" in (out / "study_timings.md").read_text()
    assert main(["bench", "study-timings", url, "other", "--out", str(out)]) == 2
