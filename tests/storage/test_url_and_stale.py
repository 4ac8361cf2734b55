"""The storage package's parts on their own: URL kinds and the storage that names stale trials."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, fail_stale_trials
from optuna.trial import TrialState

from mote_optuna import keys
from mote_optuna.compat import RDB_STALE_TRIAL_IDS
from mote_optuna.storage import make_storage
from mote_optuna.storage.sqlite_threads import ThreadSafeSQLiteStorage
from mote_optuna.storage.stale import ReasonedRDBStorage, RetryStaleTrialCallback
from mote_optuna.storage.url import is_sqlite, journal_path, storage_kind, url_scheme

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("sqlite:///studies/x.db", "sqlite"),
        ("  SQLite:///x.db", "sqlite"),
        ("journal:studies/x.log", "journal"),
        ("postgresql://mote@db/mote", "postgresql"),
        ("postgresql+psycopg://mote:pw@db:5432/mote", "postgresql"),
        ("postgresqlx://mote@db/mote", ""),
        ("mysql://mote@db/mote", ""),
        ("sqlite", ""),
        ("", ""),
    ],
)
def test_storage_kind(url: str, kind: str) -> None:
    assert storage_kind(url) == kind
    assert is_sqlite(url) == (kind == "sqlite")


def test_url_parts() -> None:
    assert url_scheme(" Journal: a.log") == "journal"
    assert url_scheme("no-colon") == ""
    assert journal_path("journal:  studies/x.log ") == "studies/x.log"
    assert journal_path("journal:") == ""


def test_reasoned_storage_overrides_the_compat_method() -> None:
    if not hasattr(RDBStorage, RDB_STALE_TRIAL_IDS):
        pytest.skip("this Optuna has no such method: trials fail without a reason")
    mine = getattr(ReasonedRDBStorage, RDB_STALE_TRIAL_IDS)
    assert mine is not getattr(RDBStorage, RDB_STALE_TRIAL_IDS)


def test_sqlite_storage_has_no_heartbeat_and_takes_a_trial_under_a_lock() -> None:
    storage = make_storage("sqlite:///:memory:")
    assert type(storage) is ThreadSafeSQLiteStorage and isinstance(storage, RDBStorage)
    assert storage.get_heartbeat_interval() is None


def test_heartbeat_failure_carries_a_reason(tmp_path: Path) -> None:
    """Optuna's heartbeat fails a silent trial; the storage writes ``fail_reason`` first."""
    url = f"sqlite:///{tmp_path / 'hb.db'}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)  # ask, not optimize
        storage = ReasonedRDBStorage(
            url,
            heartbeat_interval=1,
            grace_period=1,
            heartbeat_stale_trial_callback=RetryStaleTrialCallback(max_retry=1),
        )
        study = optuna.create_study(storage=storage, study_name="hb")
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        storage.record_heartbeat(trial._trial_id)
        time.sleep(2.2)
        fail_stale_trials(study)
    failed = study.trials[trial.number]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs[keys.FAIL_REASON_ATTR] == (
        "worker stopped: no heartbeat for more than 1 s"
    )
    retry = study.trials[-1]
    assert retry.state == TrialState.WAITING
    assert retry.user_attrs == {keys.RETRY_OF_ATTR: trial.number}
