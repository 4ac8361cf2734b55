"""Storages for mote_optuna studies, one job per module:

- :mod:`.url`: the storage URL schemes (the one place they are parsed) and URL passwords;
- :mod:`.secrets`: secret masking and the logging :class:`SecretFilter`;
- :mod:`.factory`: :func:`make_storage`, a storage by URL (SQLite, journal file, PostgreSQL);
- :mod:`.trial_heartbeat`: the heartbeat thread of a running trial (journal, SQLite);
- :mod:`.stale`: the stale-trial sweep, its retry callback and :class:`ReasonedRDBStorage`.

Everything is re-exported here, so ``from mote_optuna.storage import make_storage`` works. Modules
of this package import each other directly, never through this one.
"""

from __future__ import annotations

from mote_optuna.storage.factory import SQLITE_TIMEOUT_S, make_storage
from mote_optuna.storage.secrets import (
    PASSWORD_ENV,
    SecretFilter,
    install_secret_filter,
    known_secrets,
    mask_secrets,
)
from mote_optuna.storage.stale import (
    DEFAULT_MAX_RETRY,
    ReasonedRDBStorage,
    RetryStaleTrialCallback,
    sweep_stale_trials,
)
from mote_optuna.storage.trial_heartbeat import (
    DEFAULT_HEARTBEAT_INTERVAL_S,
    heartbeat,
    touch_heartbeat,
)
from mote_optuna.storage.url import (
    STORAGE_ENV,
    is_sqlite,
    mask_url,
    storage_kind,
    storage_url_from_env,
)

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL_S",
    "DEFAULT_MAX_RETRY",
    "PASSWORD_ENV",
    "SQLITE_TIMEOUT_S",
    "STORAGE_ENV",
    "ReasonedRDBStorage",
    "RetryStaleTrialCallback",
    "SecretFilter",
    "heartbeat",
    "install_secret_filter",
    "is_sqlite",
    "known_secrets",
    "make_storage",
    "mask_secrets",
    "mask_url",
    "storage_kind",
    "storage_url_from_env",
    "sweep_stale_trials",
    "touch_heartbeat",
]
