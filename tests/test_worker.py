"""Many workers on one study (issue 6): real worker processes on real PostgreSQL and journal files.

Trials use the table estimator slowed down by a ``sitecustomize`` in the workers' PYTHONPATH
(``MOTE_TEST_SLOW_S`` seconds per training), so that a kill lands inside a training run and two
workers really overlap, without the cost of MOTE training on a shared 2-core machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from helpers import REPO_ROOT, write_study
from nb201_synthetic import write_tables
from optuna.trial import FrozenTrial, TrialState

from mote_optuna.cli import main
from mote_optuna.config import load_config
from mote_optuna.keys import EVALUATING_ATTR, FAIL_REASON_ATTR, RETRY_OF_ATTR, WORKER_ATTR
from mote_optuna.spaces import get_space
from mote_optuna.storage import STORAGE_ENV, make_storage

SLOW_ENV = "MOTE_TEST_SLOW_S"
SITECUSTOMIZE = f'''
import os
if os.environ.get("{SLOW_ENV}"):
    import time
    from mote_optuna.estimators.table import TableEstimator

    _evaluate = TableEstimator.evaluate

    def _slow_evaluate(self, space, arch):
        time.sleep(float(os.environ["{SLOW_ENV}"]))
        return _evaluate(self, space, arch)

    TableEstimator.evaluate = _slow_evaluate
'''
# two NB201 cells with one canonical key (see tests/test_study.py)
TWIN_A = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
TWIN_B = "|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"

optuna.logging.set_verbosity(optuna.logging.WARNING)


def write_scores(folder: Path) -> Path:
    _, path = write_tables(folder)
    return path


def slow_env_in(folder: Path) -> dict[str, str]:
    """Environment of worker processes whose table estimator sleeps per training."""
    site = folder / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", SLOW_ENV: "1.5"}


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scores(tmp_path_factory.mktemp("tables"))


@pytest.fixture
def slow_env(tmp_path: Path) -> dict[str, str]:
    return slow_env_in(tmp_path)


def study_file(tmp_path: Path, scores: Path, name: str, n_trials: int) -> Path:
    return write_study(
        tmp_path / "s.yaml",
        name=name,
        n_trials=n_trials,
        estimator={"kind": "table", "table": str(scores)},
        workers={"local": 1, "heartbeat_interval": 1, "grace_period": 2, "max_retry": 2},
        artifacts=str(tmp_path / "artifacts"),
    )


def _precreate(path: Path, url: str, *archs: str) -> optuna.Study:
    """Create the study and queue ``archs`` first, so that two workers start on twins."""
    config = load_config(path)
    study = optuna.create_study(
        study_name=config.name, storage=make_storage(url, workers=2), directions=config.directions
    )
    space = get_space("nb201")
    for text in archs:
        study.enqueue_trial(space.to_params(space.from_str(text)))
    return study


def _worker(path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "mote_optuna", "worker", str(path), "--local-workers", "2"]
    return subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_for(predicate: Callable[[], object], what: str, timeout_s: float = 60.0) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _assert_exact_and_no_duplicate_training(study: optuna.Study, n: int) -> None:
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == n
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    trained = [t.user_attrs["arch_key"] for t in complete if "cached_from" not in t.user_attrs]
    assert len(trained) == len(set(trained)), "an architecture was trained twice"


def _kill_one_mid_training(
    study: optuna.Study, procs: list[subprocess.Popen[str]]
) -> tuple[int, int]:
    """SIGKILL the worker of a trial that is training: (trial number, pid)."""

    def training() -> FrozenTrial | None:
        for t in study.get_trials(states=(TrialState.RUNNING,)):
            if t.user_attrs.get(EVALUATING_ATTR) and t.number >= 1:
                return t
        return None

    trial = _wait_for(training, "a trial in training")
    assert isinstance(trial, FrozenTrial)
    pid = int(trial.user_attrs[WORKER_ATTR].rsplit(":", 1)[1])
    assert pid in {p.pid for p in procs}
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    return trial.number, pid


def _assert_killed_failed_and_retried(study: optuna.Study, killed: int) -> None:
    dead = study.trials[killed]
    assert dead.state == TrialState.FAIL
    assert "worker stopped" in dead.user_attrs[FAIL_REASON_ATTR]
    retries = [t for t in study.trials if t.user_attrs.get(RETRY_OF_ATTR) == killed]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == dead.params


# --------------------------------------------------------------------------------------------


def test_sqlite_with_two_workers_is_refused_in_one_line(
    tmp_path: Path, scores: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SQLite study has one writer: ``run --workers 2`` drives both trials from one process
    (tests/test_local_pool.py), and a second ``worker`` process is refused."""
    path = study_file(tmp_path, scores, "sq", 2)
    path.write_text(path.read_text().replace("journal:", "sqlite:///"))
    assert main(["worker", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SQLite, which is for one process" in err[0]
    assert "journal:PATH" in err[0] and "postgresql://" in err[0]
    assert not (tmp_path / "study.db").exists()


@pytest.mark.postgres
@pytest.mark.timeout(85)
def test_two_workers_on_postgres_finish_exactly_n_without_training_twice(
    tmp_path: Path, scores: Path, slow_env: dict[str, str], pg_url: str
) -> None:
    name = f"w2-{uuid.uuid4().hex[:8]}"
    path = study_file(tmp_path, scores, name, 8)
    study = _precreate(path, pg_url, TWIN_A, TWIN_B)  # trials 0 and 1: equivalent cells
    env = {**slow_env, STORAGE_ENV: pg_url}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mote_optuna", "run", str(path), "--workers", "2"],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=80,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "w1 | " in done.stdout and "w2 | " in done.stdout
        assert "Pareto front of" in done.stdout
        _assert_exact_and_no_duplicate_training(study, 8)
        twin = study.trials[1]
        assert twin.state == TrialState.COMPLETE and twin.user_attrs["cached_from"] == 0
        assert twin.values[0] == study.trials[0].values[0]  # mote reused (the table has own flops)
        workers = {t.user_attrs[WORKER_ATTR] for t in study.trials}
        assert len(workers) == 2, "both workers ran trials"
    finally:
        optuna.delete_study(study_name=name, storage=make_storage(pg_url))


def sigkill_run(tmp_path: Path, scores: Path, env: dict[str, str], url: str, n: int) -> None:
    name = f"k-{uuid.uuid4().hex[:8]}"
    path = study_file(tmp_path, scores, name, n)
    env = {**env, STORAGE_ENV: url}
    study = _precreate(path, url)
    procs = [_worker(path, env), _worker(path, env)]
    try:
        killed, pid = _kill_one_mid_training(study, procs)
        survivors = [p for p in procs if p.pid != pid]
        out, _ = survivors[0].communicate(timeout=70)
        assert survivors[0].returncode == 0, out
        _assert_exact_and_no_duplicate_training(study, n)
        _assert_killed_failed_and_retried(study, killed)
        assert "study budget reached" not in study.trials[killed].user_attrs.get(
            FAIL_REASON_ATTR, ""
        )
    finally:
        for p in procs:
            p.kill()
            p.wait()
        if url.startswith("postgresql"):
            optuna.delete_study(study_name=name, storage=make_storage(url))


@pytest.mark.timeout(88)
def test_sigkilled_worker_on_journal_is_retried_and_study_ends_exact(
    tmp_path: Path, scores: Path, slow_env: dict[str, str]
) -> None:
    sigkill_run(tmp_path, scores, slow_env, f"journal:{tmp_path / 'j.log'}", 5)
