"""A running trial's heartbeat for storages without Optuna's own (journal, SQLite).

The trial's ``heartbeat`` user attr holds its last sign of life; a thread rewrites it while the
objective trains. A storage whose Optuna heartbeat is on (PostgreSQL from ``make_storage``)
needs none of this: ``optimize`` runs Optuna's.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import BaseStorage

from mote_optuna.keys import HEARTBEAT_ATTR
from mote_optuna.storage.secrets import known_secrets, mask_secrets

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL_S",
    "heartbeat",
    "heartbeat_enabled",
    "quiet_heartbeat_warnings",
    "touch_heartbeat",
]

_logger = logging.getLogger("mote_optuna.storage")

DEFAULT_HEARTBEAT_INTERVAL_S = 30

# The ExperimentalWarnings Optuna emits for its heartbeat features.
_HEARTBEAT_WARNINGS_RE = (
    r"(Argument ``heartbeat_interval``|\S*RetryHeartbeatStaleTrialCallback\S*"
    r"|\S*fail_stale_trials) is"
)


def heartbeat_enabled(storage: BaseStorage) -> bool:
    """Whether ``storage`` runs Optuna's own heartbeat (an RDB storage with an interval)."""
    get_interval = getattr(storage, "get_heartbeat_interval", None)
    return callable(get_interval) and get_interval() is not None


@contextlib.contextmanager
def quiet_heartbeat_warnings() -> Iterator[None]:
    """Hide Optuna's ExperimentalWarnings about heartbeat and its retry callback.

    They come on every storage creation and carry nothing a user can act on; ``optimize``
    hides the one of ``fail_stale_trials`` the same way. Scoped, so no global filter changes.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=_HEARTBEAT_WARNINGS_RE, category=ExperimentalWarning
        )
        yield


def touch_heartbeat(trial: optuna.Trial) -> None:
    """Record that ``trial`` is alive: user attr ``heartbeat`` = now, ISO 8601 in UTC."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    trial.set_user_attr(HEARTBEAT_ATTR, now)


@contextlib.contextmanager
def heartbeat(
    trial: optuna.Trial, interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S
) -> Iterator[None]:
    """Touch ``trial``'s ``heartbeat`` user attr now and every ``interval_s`` seconds until exit.

    Wrap the long part of an objective (training) in it when the storage has no heartbeat of its
    own (journal, SQLite). With a storage whose Optuna heartbeat is on (PostgreSQL from
    ``make_storage``) it does nothing, because ``optimize`` already runs Optuna's.

    A stale-trial sweep (``sweep_stale_trials``) must use an ``older_than_s`` well above
    ``interval_s`` (at least 3x), or it fails trials that are alive.
    """
    if heartbeat_enabled(trial.storage):
        yield
        return
    touch_heartbeat(trial)  # first write from the caller's thread, so errors surface here
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(interval_s):
                try:
                    touch_heartbeat(trial)
                except UpdateFinishedTrialError:
                    _logger.warning(
                        "trial %d was finished by someone else (a stale-trial sweep?) while "
                        "still running; its result will be rejected",
                        trial.number,
                    )
                    return
                except Exception as exc:
                    _logger.warning(
                        "heartbeat of trial %d failed: %s",
                        trial.number,
                        mask_secrets(str(exc), known_secrets()),
                    )
        finally:
            remove_session = getattr(trial.storage, "remove_session", None)
            if callable(remove_session):
                with contextlib.suppress(Exception):
                    remove_session()

    thread = threading.Thread(target=beat, name=f"mote-heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
