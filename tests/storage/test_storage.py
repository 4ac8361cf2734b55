"""Storage factory, masking and stale trials: real SQLite and journal files, real PostgreSQL."""

from __future__ import annotations

import io
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.exceptions import ExperimentalWarning
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from mote_optuna.errors import UserError
from mote_optuna.keys import FAIL_REASON_ATTR, HEARTBEAT_ATTR, RETRY_OF_ATTR
from mote_optuna.storage import (
    PASSWORD_ENV,
    SQLITE_TIMEOUT_S,
    STORAGE_ENV,
    SecretFilter,
    heartbeat,
    install_secret_filter,
    make_storage,
    mask_secrets,
    mask_url,
    storage_url_from_env,
    sweep_stale_trials,
)

REPO = Path(__file__).resolve().parents[2]

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _objective(trial: optuna.Trial) -> float:
    with heartbeat(trial, 0.2):
        return trial.suggest_float("x", -1.0, 1.0)


def _wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------------
# make_storage


def test_sqlite_refuses_several_workers(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        make_storage(f"sqlite:///{tmp_path}/s.db", workers=2)
    message = str(err.value)
    assert "\n" not in message
    assert "one process" in message
    assert "journal:PATH" in message and "postgresql://" in message
    assert not (tmp_path / "s.db").exists()


def test_sqlite_creates_folder_and_raises_timeout(tmp_path: Path) -> None:
    db = tmp_path / "deep" / "er" / "s.db"
    storage = make_storage(f"sqlite:///{db}")
    assert isinstance(storage, RDBStorage)
    assert storage.engine_kwargs["connect_args"]["timeout"] == SQLITE_TIMEOUT_S
    assert storage.get_heartbeat_interval() is None
    study = optuna.create_study(storage=storage, study_name="s")
    study.optimize(_objective, n_trials=2)
    assert db.is_file()
    reopened = optuna.load_study(study_name="s", storage=make_storage(f"sqlite:///{db}"))
    assert [t.state for t in reopened.trials] == [TrialState.COMPLETE] * 2


def test_journal_file_storage_for_several_workers(tmp_path: Path) -> None:
    log = tmp_path / "sub" / "study.log"
    storage = make_storage(f"journal:{log}", workers=4)
    assert isinstance(storage, JournalStorage)
    study = optuna.create_study(storage=storage, study_name="j")
    study.optimize(_objective, n_trials=3)
    assert log.stat().st_size > 0
    reopened = optuna.load_study(study_name="j", storage=make_storage(f"journal:{log}"))
    assert len(reopened.trials) == 3


@pytest.mark.parametrize(
    "url", ["mysql://u:hunter2@h/db", "redis://:hunter2@h/0", "/tmp/x.db", "", "sqlite3:x"]
)
def test_unsupported_url_lists_the_allowed_schemes(url: str) -> None:
    with pytest.raises(UserError) as err:
        make_storage(url)
    message = str(err.value)
    assert "\n" not in message and "hunter2" not in message
    assert "sqlite:///" in message and "journal:" in message and "postgresql://" in message


def test_journal_without_path_is_refused() -> None:
    with pytest.raises(UserError, match="journal:PATH"):
        make_storage("journal:")


def test_postgres_connection_failure_is_one_masked_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    port = _closed_port()
    with pytest.raises(UserError) as err:
        make_storage(f"postgresql://mote:hunter2@127.0.0.1:{port}/nodb")
    message = str(err.value)
    assert "\n" not in message
    assert "hunter2" not in message
    assert f"postgresql://mote:***@127.0.0.1:{port}/nodb" in message
    assert PASSWORD_ENV in message
    assert err.value.__suppress_context__


def test_postgres_password_from_env_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "s3cr3t-from-env")
    with pytest.raises(UserError) as err:
        make_storage(f"postgresql+psycopg://mote@127.0.0.1:{_closed_port()}/nodb")
    assert "s3cr3t-from-env" not in str(err.value)


def test_storage_url_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    assert storage_url_from_env("sqlite:///a.db") == "sqlite:///a.db"
    monkeypatch.setenv(STORAGE_ENV, "postgresql://mote@db/mote")
    assert storage_url_from_env("sqlite:///a.db") == "postgresql://mote@db/mote"


# --------------------------------------------------------------------------------------------
# masking


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://mote:pw@db:5432/x", "postgresql://mote:***@db:5432/x"),
        ("postgresql+psycopg://mote:p%40ss@db/x", "postgresql+psycopg://mote:***@db/x"),
        ("postgresql://mote:p@ss@db/x", "postgresql://mote:***@db/x"),
        (
            "postgresql://mote@db/x?password=pw&sslmode=require",
            "postgresql://mote@db/x?password=***&sslmode=require",
        ),
        ("postgresql://mote@db/x", "postgresql://mote@db/x"),
        ("sqlite:///studies/a.db", "sqlite:///studies/a.db"),
        ("journal:studies/a.log", "journal:studies/a.log"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_mask_secrets_in_free_text() -> None:
    text = "retry postgresql://a:b@c/d with hunter2 (hunter%212) -- hunter2!"
    assert mask_secrets(text, ["hunter2", "hunter!2"]) == (
        "retry postgresql://a:***@c/d with *** (***) -- ***!"
    )


def test_secret_filter_masks_messages_args_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger(f"mote_optuna.test.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.propagate = False
    install_secret_filter(["hunter2"], loggers=[logger.name])
    assert any(isinstance(f, SecretFilter) for f in handler.filters)
    logger.warning("connecting to %s", "postgresql://mote:hunter2@db/x")
    logger.warning("password is %s", "hunter2")
    try:
        raise RuntimeError("login failed for hunter2")
    except RuntimeError:
        logger.exception("boom")
    out = stream.getvalue()
    assert "hunter2" not in out
    assert "postgresql://mote:***@db/x" in out
    assert "password is ***" in out
    assert "RuntimeError: login failed for ***" in out


# --------------------------------------------------------------------------------------------
# stale trials without Optuna heartbeat (SQLite, journal)


def test_sqlite_start_sweep_fails_leftover_and_queues_linked_retry(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    # A run killed mid-trial leaves this behind: a RUNNING trial with params and attrs.
    killed = optuna.create_study(storage=make_storage(url), study_name="s")
    trial = killed.ask()
    x = trial.suggest_float("x", -1.0, 1.0)
    trial.set_user_attr("arch", "|nor_conv_3x3~0|")
    del killed, trial

    study = optuna.load_study(study_name="s", storage=make_storage(url))
    assert sweep_stale_trials(study, older_than_s=0) == [0]
    assert sweep_stale_trials(study, older_than_s=0) == []  # nothing left to sweep

    failed, retry = study.trials
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs[FAIL_REASON_ATTR].startswith(
        "worker stopped: trial found RUNNING with no progress for"
    )
    assert retry.state == TrialState.WAITING
    assert retry.params == {"x": x}
    assert retry.user_attrs == {"arch": "|nor_conv_3x3~0|", RETRY_OF_ATTR: 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == 0

    study.optimize(_objective, n_trials=1)  # the retry runs first, with the same params
    done = study.trials[1]
    assert done.state == TrialState.COMPLETE
    assert done.params == {"x": x}
    assert done.values == [x]


def test_sweep_stops_retrying_after_max_retry(tmp_path: Path) -> None:
    study = optuna.create_study(storage=make_storage(f"sqlite:///{tmp_path}/s.db"))
    study.ask().suggest_float("x", 0.0, 1.0)
    assert sweep_stale_trials(study, older_than_s=0, max_retry=1) == [0]
    retry = study.ask()  # pops the WAITING retry
    assert retry.number == 1
    retry.suggest_float("x", 0.0, 1.0)
    assert sweep_stale_trials(study, older_than_s=0, max_retry=1) == [1]
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL, TrialState.FAIL]  # no third trial: max_retry reached
    assert study.trials[1].user_attrs[RETRY_OF_ATTR] == 0
    assert study.trials[1].system_attrs["retry_history"] == [0]


def test_heartbeat_keeps_a_journal_trial_alive(tmp_path: Path) -> None:
    study = optuna.create_study(storage=make_storage(f"journal:{tmp_path}/j.log"))
    alive, silent = study.ask(), study.ask()
    with heartbeat(alive, 0.1):
        assert HEARTBEAT_ATTR in study.trials[0].user_attrs
        time.sleep(1.5)
        assert sweep_stale_trials(study, older_than_s=1.0) == [silent.number]
    study.tell(alive, 1.0)
    assert [t.state for t in study.trials[:2]] == [TrialState.COMPLETE, TrialState.FAIL]
    assert study.trials[2].user_attrs[RETRY_OF_ATTR] == silent.number


# --------------------------------------------------------------------------------------------
# a worker process killed with SIGKILL mid-trial

_WORKER = """
import os, time
import optuna
from mote_optuna.storage import heartbeat, make_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
storage = make_storage(
    os.environ["T_URL"], workers=2, heartbeat_interval=1, grace_period=2, max_retry=1
)
study = optuna.load_study(
    study_name=os.environ["T_STUDY"], storage=storage,
    sampler=optuna.samplers.RandomSampler(seed=7),
)

def objective(trial):
    x = trial.suggest_float("x", -1.0, 1.0)
    with heartbeat(trial, 0.2):
        time.sleep(300)
    return x

study.optimize(objective, n_trials=1)
"""


def _start_worker(url: str, study_name: str) -> subprocess.Popen[bytes]:
    # The URL travels in the environment, not in argv (visible to every user in `ps`).
    env = {**os.environ, "T_URL": url, "T_STUDY": study_name}
    return subprocess.Popen([sys.executable, "-c", _WORKER], cwd=REPO, env=env)


def _kill_mid_trial(study: optuna.Study, worker: subprocess.Popen[bytes]) -> None:
    def running() -> bool:
        assert worker.poll() is None, f"worker exited early with code {worker.returncode}"
        return bool(study.get_trials(states=(TrialState.RUNNING,)))

    _wait_for(running, "the worker's trial to start")
    time.sleep(1.5)  # a few heartbeats
    worker.send_signal(signal.SIGKILL)
    assert worker.wait(timeout=10) == -signal.SIGKILL


def _assert_failed_retried_and_completed(study: optuna.Study, n: int) -> None:
    trials = study.trials
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == n
    assert states.count(TrialState.FAIL) == 1
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    killed = next(t for t in trials if t.state == TrialState.FAIL)
    retries = [t for t in trials if t.user_attrs.get(RETRY_OF_ATTR) == killed.number]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.state == TrialState.COMPLETE
    assert retry.params == killed.params
    assert retry.system_attrs["failed_trial"] == killed.number


@pytest.mark.timeout(60)
def test_journal_sigkilled_worker_is_swept_and_retried(tmp_path: Path) -> None:
    url = f"journal:{tmp_path}/j.log"
    study = optuna.create_study(storage=make_storage(url, workers=2), study_name="j")
    worker = _start_worker(url, "j")
    try:
        _wait_for(lambda: bool(study.get_trials(states=(TrialState.RUNNING,))), "trial start")
        time.sleep(2.0)
        # Started 2 s ago but its heartbeat is fresh: alive, not swept.
        assert sweep_stale_trials(study, older_than_s=1.5) == []
        _kill_mid_trial(study, worker)
    finally:
        worker.kill()
        worker.wait()
    time.sleep(2.0)
    killed = study.get_trials(states=(TrialState.RUNNING,))[0].number
    assert sweep_stale_trials(study, older_than_s=1.5) == [killed]
    assert "no progress for" in study.trials[killed].user_attrs[FAIL_REASON_ATTR]
    study.optimize(
        _objective, n_trials=20, callbacks=[MaxTrialsCallback(3, states=(TrialState.COMPLETE,))]
    )
    _assert_failed_retried_and_completed(study, 3)


# --------------------------------------------------------------------------------------------
# PostgreSQL (real server: `.ci/postgres.sh start && source .ci/pg.env`)


@pytest.mark.postgres
@pytest.mark.timeout(60)
def test_postgres_sigkilled_worker_is_failed_and_retried_by_heartbeat(pg_url: str) -> None:
    name = f"kill-{uuid.uuid4().hex[:8]}"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExperimentalWarning)  # heartbeat noise stays hidden
        storage = make_storage(
            pg_url, workers=2, heartbeat_interval=1, grace_period=2, max_retry=1
        )
    study = optuna.create_study(storage=storage, study_name=name)
    try:
        worker = _start_worker(pg_url, name)
        try:
            _kill_mid_trial(study, worker)
        finally:
            worker.kill()
            worker.wait()
        killed = study.get_trials(states=(TrialState.RUNNING,))
        assert len(killed) == 1  # SIGKILL leaves the trial RUNNING ...
        time.sleep(3.5)  # ... until its heartbeat is older than grace_period (2 s)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ExperimentalWarning)
            study.optimize(
                _objective,
                n_trials=20,
                callbacks=[MaxTrialsCallback(4, states=(TrialState.COMPLETE,))],
            )
        _assert_failed_retried_and_completed(study, 4)
        assert study.trials[killed[0].number].state == TrialState.FAIL
    finally:
        optuna.delete_study(study_name=name, storage=storage)


@pytest.mark.postgres
def test_postgres_password_from_env_stays_out_of_the_url(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.engine import make_url

    parsed = make_url(pg_url)
    assert parsed.password, "the test URL should carry a password"
    monkeypatch.setenv(PASSWORD_ENV, str(parsed.password))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    bare = pg_url.replace(f":{parsed.password}@", "@")
    assert bare != pg_url
    storage = make_storage(bare, workers=8)
    assert isinstance(storage, RDBStorage)
    assert storage.url.startswith("postgresql+psycopg://")
    assert str(parsed.password) not in storage.url
    assert storage.get_heartbeat_interval() is not None
    name = f"env-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(storage=storage, study_name=name)
    try:
        study.optimize(_objective, n_trials=2)
        assert len(study.trials) == 2
    finally:
        optuna.delete_study(study_name=name, storage=storage)

    monkeypatch.setenv(PASSWORD_ENV, "wrong-password")
    with pytest.raises(UserError) as err:
        make_storage(bare)
    assert "wrong-password" not in str(err.value)
    assert "password authentication failed" in str(err.value)
