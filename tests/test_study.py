"""End to end: real MOTE training, a real SQLite file, resume, caching, constraints, SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from helpers import REPO_ROOT, CountingEstimator, write_study
from optuna.trial import TrialState

from mote_optuna.cli import main
from mote_optuna.config import load_config
from mote_optuna.estimators.registry import make_estimator
from mote_optuna.objective import Objective
from mote_optuna.spaces import get_space


def _load(path: Path) -> optuna.Study:
    config = load_config(path)
    return optuna.load_study(study_name=config.name, storage=config.storage_url)


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(TrialState.COMPLETE,))


def test_run_resume_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(tmp_path / "s.yaml", n_trials=3)
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "[   3/3]" in out and "ETA" in out and "Pareto front" in out
    first = {t.number: t.values for t in _complete(_load(path))}
    assert len(first) == 3
    trial = _complete(_load(path))[0]
    for attr in (
        "arch",
        "arch_key",
        "landscape_term",
        "speed_term",
        "train_losses",
        "mote_seconds",
    ):
        assert attr in trial.user_attrs
    assert len(trial.user_attrs["landscape_losses"]) == 3  # the tiny budget's landscape points

    # raising n_trials continues the same study; the stored trials are kept as they were
    assert main(["run", str(path), "--set", "n_trials=5"]) == 0
    study = _load(path)
    assert len(_complete(study)) == 5
    assert {t.number: t.values for t in _complete(study) if t.number in first} == first
    # rerunning at the budget adds nothing
    assert main(["run", str(path), "--set", "n_trials=5"]) == 0
    assert "already has 5/5" in capsys.readouterr().out

    assert main(["report", str(path)]) == 0
    report = tmp_path / "t-report"
    for name in ("pareto.csv", "trials.csv", "pareto.html"):
        assert (report / name).stat().st_size > 0
    assert "mote" in (report / "pareto.csv").read_text().splitlines()[0]


def test_resume_with_other_estimator_settings_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path / "s.yaml", n_trials=1)
    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    assert main(["run", str(path), "--set", "estimator.epochs=3", "--set", "n_trials=2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "estimator.epochs: stored 2, now 3" in err[0]
    assert main(["run", str(path), "--set", "objectives=[mote, params]"]) == 2
    assert "directions" in capsys.readouterr().err
    assert len(_complete(_load(path))) == 1


def test_equivalent_architectures_are_trained_once(tmp_path: Path) -> None:
    config = load_config(write_study(tmp_path / "s.yaml"))
    space = get_space("nb201")
    estimator = CountingEstimator(make_estimator(config, space))
    study = optuna.create_study(directions=config.directions)
    a = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    b = "|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    for text in (a, b):
        study.enqueue_trial(space.to_params(space.from_str(text)))
    study.optimize(Objective(config, space, estimator), n_trials=2)
    first, second = study.trials
    assert estimator.calls == 1
    assert second.user_attrs["cached_from"] == first.number
    assert second.values[0] == first.values[0]  # the score is reused, untrained
    # FLOPs and params are each cell's own full network's: the dead 3x3 convolution of ``a`` is
    # built and counted there, not in ``b``
    for trial, text in ((first, a), (second, b)):
        cost = space.analytic_cost(space.from_str(text))
        assert trial.values[1:] == [cost.flops, cost.params]
    assert second.values[1] < first.values[1]


def _states(db: Path) -> list[str]:
    """Trial states straight from the SQLite file ([] while the worker is still creating it)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return [row[0] for row in conn.execute("SELECT state FROM trials ORDER BY number")]
    except sqlite3.OperationalError:
        return []


def test_sigkill_mid_trial_loses_no_completed_trial(tmp_path: Path) -> None:
    # slow enough (a few seconds a trial) that the kill lands inside a training run
    path = write_study(
        tmp_path / "s.yaml",
        n_trials=3,
        estimator={"budget": "tiny", "epochs": 40, "images_per_label": 30},
    )
    db = tmp_path / "study.db"
    cmd = [sys.executable, "-m", "mote_optuna", "run", str(path)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    worker = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        states = _states(db)
        if states.count("COMPLETE") >= 1 and states and states[-1] == "RUNNING":
            break
        time.sleep(0.2)
    else:
        worker.kill()
        pytest.fail("the worker never reached a second trial")
    time.sleep(0.5)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    before = {t.number: t.values for t in _complete(_load(path))}
    assert _states(db)[-1] == "RUNNING"

    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "left RUNNING by a stopped worker" in done.stdout
    study = _load(path)
    assert len(_complete(study)) == 3
    assert {t.number: t.values for t in _complete(study) if t.number in before} == before
    killed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(killed) == 1 and "stopped" in killed[0].user_attrs["fail_reason"]


def _has_cell(db: Path, number: int) -> bool:
    """Whether trial ``number`` has been given its cell (its ``arch_key`` is stored)."""
    query = (
        "SELECT COUNT(*) FROM trial_user_attributes JOIN trials USING (trial_id)"
        " WHERE number = ? AND key = 'arch_key'"
    )
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return bool(conn.execute(query, (number,)).fetchone()[0])
    except sqlite3.OperationalError:
        return False


def _kill_during_trial(path: Path, number: int) -> None:
    """Run the study in a subprocess and SIGKILL it while trial ``number`` trains its cell."""
    db = path.parent / "study.db"
    cmd = [sys.executable, "-m", "mote_optuna", "run", str(path)]
    worker = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while _states(db) != ["COMPLETE"] * number + ["RUNNING"] or not _has_cell(db, number):
        if time.monotonic() > deadline or worker.poll() is not None:
            worker.kill()
            pytest.fail(f"never saw trial {number} training: {_states(db)}")
        time.sleep(0.1)
    worker.send_signal(signal.SIGKILL)
    worker.wait()


def test_resumed_seeded_study_proposes_new_cells_reproducibly(tmp_path: Path) -> None:
    runs = []
    for attempt in ("first", "second"):
        folder = tmp_path / attempt
        folder.mkdir()
        path = write_study(
            folder / "s.yaml",
            n_trials=6,
            # a trial of about a second: long enough for the kill to land in it
            estimator={"budget": "tiny", "epochs": 12, "images_per_label": 30},
        )
        _kill_during_trial(path, 2)
        done = subprocess.run(
            [sys.executable, "-m", "mote_optuna", "run", str(path)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        runs.append(_load(path).trials)
    first, second = runs
    before = {t.user_attrs["arch_key"] for t in first[:3]}  # proposed before the kill
    retry = first[3]  # the killed trial 2, queued again with its cell
    assert retry.user_attrs["retry_of"] == 2 and retry.user_attrs["arch_key"] in before
    resumed = [t.user_attrs["arch_key"] for t in first[4:]]
    assert resumed and not set(resumed) & before, "a resumed proposal replayed an earlier one"
    assert "reseeded" in done.stdout
    assert len(_complete(_load(path))) == 6
    assert [(t.state, t.params) for t in first] == [(t.state, t.params) for t in second]
    assert [t.values for t in first] == [t.values for t in second]
