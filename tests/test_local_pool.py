"""Several trials at once on one host (local_pool.py): real spawned processes, a real SQLite
study, real MOTE training on digits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
import pytest
import torch
from helpers import REPO_ROOT, ProcessProbe, StallingProbe, write_study
from optuna.trial import TrialState
from optuna_dashboard import get_note

from mote_optuna.cli import main
from mote_optuna.config import load_config
from mote_optuna.estimators.registry import make_estimator
from mote_optuna.local_pool import ScoringPool, available_cores, resolve_local
from mote_optuna.objective import Objective
from mote_optuna.spaces import get_space

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"


def test_auto_is_one_trial_per_core_on_a_cpu_and_one_on_a_gpu() -> None:
    assert resolve_local("auto", torch.device("cpu")) == available_cores()
    assert resolve_local("auto", torch.device("cuda")) == 1
    assert resolve_local(3, torch.device("cpu")) == 3


def test_each_trial_runs_in_a_pool_process_of_one_passive_thread() -> None:
    space = get_space("nb201")
    arch = space.from_str(CELL)
    with ScoringPool(processes=2, threads=1).load(ProcessProbe(), space) as pool:
        with ThreadPoolExecutor(4) as threads:
            results = list(threads.map(lambda _: pool.evaluate(space, arch), range(4)))
        assert pool.describe() == {"name": "probe"}
    pids = {r.attrs["pid"] for r in results}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert all(r.values["threads"] == 1.0 for r in results)
    assert all(r.attrs["wait_policy"] == "PASSIVE" for r in results)


def test_a_killed_pool_process_fails_only_its_trial(tmp_path: Path) -> None:
    space = get_space("nb201")
    arch = space.from_str(CELL)
    marker = tmp_path / "pid"
    with ScoringPool(processes=1).load(StallingProbe(marker), space) as pool:
        with ThreadPoolExecutor(1) as thread:
            stalled = thread.submit(pool.evaluate, space, arch)
            deadline = time.monotonic() + 60
            while not marker.exists() or not marker.read_text():
                assert time.monotonic() < deadline, "the pool process never started scoring"
                time.sleep(0.05)
            os.kill(int(marker.read_text()), signal.SIGKILL)
            with pytest.raises(RuntimeError, match="died"):
                stalled.result(timeout=60)
        assert pool.evaluate(space, arch).values["threads"] == 1.0  # a new process scores


def test_a_study_goes_on_when_a_pool_process_dies(tmp_path: Path) -> None:
    config = load_config(write_study(tmp_path / "s.yaml", n_trials=2))
    space = get_space("nb201")
    marker = tmp_path / "pid"
    study = optuna.create_study(directions=config.directions)
    pool = ScoringPool(processes=1).load(StallingProbe(marker), space)
    with pool, ThreadPoolExecutor(1) as thread:
        running = thread.submit(study.optimize, Objective(config, space, pool), n_trials=2)
        deadline = time.monotonic() + 60
        while not marker.exists() or not marker.read_text():
            assert time.monotonic() < deadline, "the pool process never started scoring"
            time.sleep(0.05)
        os.kill(int(marker.read_text()), signal.SIGKILL)
        running.result(timeout=120)  # no exception: the study went on
    first, second = study.trials
    assert first.state == TrialState.FAIL and "died" in first.user_attrs["fail_reason"]
    assert second.state == TrialState.COMPLETE


def test_run_with_two_trials_at_once_on_sqlite_scores_as_one_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], one_thread: None
) -> None:
    path = write_study(tmp_path / "s.yaml", n_trials=4)
    assert main(["run", str(path), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 trials at once, each in a process of 1 thread(s)" in out
    config = load_config(path)
    study = optuna.load_study(study_name=config.name, storage=config.storage_url)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 4  # exactly the budget, although two trials ran at once
    note = get_note(study)
    assert "local: 2" in note and "threads: 1" in note  # the policy as run, in the study note
    space = get_space("nb201")
    estimator = make_estimator(config, space)
    for trial in complete[:2]:
        again = estimator.evaluate(space, space.from_str(trial.user_attrs["arch"]))
        assert trial.values[0] == pytest.approx(again.values["mote"], rel=1e-6)


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_sigkill_of_run_ends_its_pool_and_loses_only_trials_in_flight(tmp_path: Path) -> None:
    path = write_study(
        tmp_path / "s.yaml",
        n_trials=4,
        estimator={"budget": "tiny", "epochs": 40, "images_per_label": 30},
    )
    config = load_config(path)
    cmd = [sys.executable, "-m", "mote_optuna", "run", str(path), "--workers", "2"]
    run = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while True:
        assert time.monotonic() < deadline and run.poll() is None, "never saw a trial complete"
        try:
            study = optuna.load_study(study_name=config.name, storage=config.storage_url)
            states = [t.state for t in study.get_trials()]
        except (KeyError, ValueError):
            states = []
        if TrialState.COMPLETE in states and TrialState.RUNNING in states:
            break
        time.sleep(0.2)
    pool = _children(run.pid)
    assert len(pool) >= 2
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pool) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in pool), "pool processes outlived their run"

    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name=config.name, storage=config.storage_url)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 4
    lost = study.get_trials(states=(TrialState.FAIL,))
    assert 1 <= len(lost) <= 2 and all("stopped" in t.user_attrs["fail_reason"] for t in lost)
