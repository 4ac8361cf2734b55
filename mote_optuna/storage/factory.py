"""Storages by URL for mote_optuna studies: :func:`make_storage`.

Which storage for which setup (see ``OPTUNA_NOTES.md`` §1.3, §1.9):

- ``sqlite:///PATH``: one process. Parallel writers lock each other out, so ``workers > 1`` is
  refused.
- ``journal:PATH``: several processes on one host (``JournalStorage`` + ``JournalFileBackend``).
  Not on NFS. Journal storage has no heartbeat: see ``trial_heartbeat.heartbeat`` and
  ``stale.sweep_stale_trials``.
- ``postgresql://USER@HOST[:PORT]/DB``: several hosts. Optuna's own heartbeat fails trials whose
  worker died (``heartbeat_interval`` / ``grace_period``), :class:`~.stale.ReasonedRDBStorage`
  gives each a ``fail_reason`` and :class:`~.stale.RetryStaleTrialCallback` queues a retry.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy.exc
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from mote_optuna.errors import UserError
from mote_optuna.storage.secrets import PASSWORD_ENV, known_secrets, mask_secrets
from mote_optuna.storage.sqlite_threads import ThreadSafeSQLiteStorage
from mote_optuna.storage.stale import (
    DEFAULT_MAX_RETRY,
    ReasonedRDBStorage,
    RetryStaleTrialCallback,
)
from mote_optuna.storage.trial_heartbeat import (
    DEFAULT_HEARTBEAT_INTERVAL_S,
    quiet_heartbeat_warnings,
)
from mote_optuna.storage.url import (
    ALLOWED,
    JOURNAL,
    POSTGRESQL,
    SQLITE,
    journal_path,
    make_url,
    mask_url,
    storage_kind,
    without_password,
)

__all__ = ["SQLITE_TIMEOUT_S", "make_storage"]

SQLITE_TIMEOUT_S = 60.0
_PG_CONNECT_TIMEOUT_S = 10


def make_storage(
    url: str,
    *,
    workers: int = 1,
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL_S,
    grace_period: int | None = None,
    max_retry: int | None = DEFAULT_MAX_RETRY,
) -> BaseStorage:
    """Open the storage named by ``url`` for ``workers`` parallel worker processes.

    Args:
        url: ``sqlite:///PATH``, ``journal:PATH`` or ``postgresql[+psycopg]://USER[:PW]@HOST/DB``.
            For PostgreSQL the password should come from ``$MOTE_OPTUNA_DB_PASSWORD`` (or libpq's
            ``$PGPASSWORD``) rather than the URL; a password in the URL wins over both.
        workers: how many processes will use the storage at once (SQLite allows 1).
        heartbeat_interval: PostgreSQL only: seconds between heartbeats of a running trial.
        grace_period: PostgreSQL only: seconds without heartbeat after which a RUNNING trial is
            failed and retried; ``None`` = Optuna's default, ``2 * heartbeat_interval``.
        max_retry: how many times one trial may be retried after its worker died
            (``None`` = no limit).

    Returns:
        An :class:`~optuna.storages.RDBStorage` (SQLite, PostgreSQL) or a
        :class:`~optuna.storages.JournalStorage`; pass it to ``optuna.create_study(storage=...)``.

    Raises:
        UserError: an unsupported URL, SQLite with ``workers > 1``, or a storage that cannot be
            opened. The message is one line and never contains the password.
    """
    url = url.strip()
    kind = storage_kind(url)
    if kind == SQLITE:
        return _make_sqlite(url, workers=workers)
    if kind == JOURNAL:
        return _make_journal(url)
    if kind == POSTGRESQL:
        return _make_postgresql(
            url,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            max_retry=max_retry,
        )
    raise UserError(f"unsupported storage {mask_url(url)!r}: {ALLOWED}")


def _one_line(exc: BaseException, secrets: Iterable[str]) -> str:
    detail = str(getattr(exc, "orig", None) or exc)
    detail = " ".join(detail.split())
    detail = re.sub(r"\s*\(Background on this error at: \S+\)", "", detail)
    detail = mask_secrets(detail, secrets)
    return detail if len(detail) <= 300 else detail[:297] + "..."


def _make_sqlite(url: str, *, workers: int) -> BaseStorage:
    if workers > 1:
        raise UserError(
            f"storage {url} is SQLite, which is for one process, but {workers} workers were "
            "asked for: use journal:PATH (several processes on one host) or "
            "postgresql://USER@HOST/DB (several hosts)"
        )
    try:
        database = make_url(url).database
    except Exception as exc:
        raise UserError(f"invalid storage URL {url!r}: {_one_line(exc, ())}") from None
    if database and database != ":memory:" and not database.startswith("file:"):
        try:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the folder for {url}: {exc}") from None
    try:
        return ThreadSafeSQLiteStorage(
            url, engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
        )
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise UserError(f"cannot open storage {url}: {_one_line(exc, ())}") from None


def _make_journal(url: str) -> BaseStorage:
    path = journal_path(url)
    if not path:
        raise UserError("storage 'journal:' names no file: write journal:PATH, e.g. journal:x.log")
    file = Path(path).expanduser()
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(file)))
    except OSError as exc:
        raise UserError(f"cannot open storage {url}: {exc}") from None


def _make_postgresql(
    url: str, *, heartbeat_interval: int, grace_period: int | None, max_retry: int | None
) -> BaseStorage:
    try:
        parsed = make_url(url)
    except Exception:
        raise UserError(
            f"invalid storage URL {mask_url(url)!r}: write postgresql://USER@HOST[:PORT]/DB"
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    password = parsed.password or os.environ.get(PASSWORD_ENV) or None
    secrets = [s for s in (password, *known_secrets()) if s]
    # The password travels in connect_args, never in the URL that Optuna keeps (and pickles).
    connect_args: dict[str, Any] = {
        "connect_timeout": _PG_CONNECT_TIMEOUT_S,
        "application_name": "mote_optuna",
    }
    if password:
        connect_args["password"] = password
    bare_url = without_password(parsed).render_as_string(hide_password=False)
    shown = mask_url(url)
    # Optuna's heartbeat fails a dead worker's trial: ReasonedRDBStorage gives it a reason first
    storage_class = ReasonedRDBStorage if heartbeat_interval is not None else RDBStorage
    try:
        with quiet_heartbeat_warnings():
            return storage_class(
                bare_url,
                engine_kwargs={"pool_pre_ping": True, "connect_args": connect_args},
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=RetryStaleTrialCallback(max_retry=max_retry),
            )
    except ImportError:
        raise UserError(
            f"cannot open storage {shown}: the PostgreSQL driver is missing; "
            "pip install 'psycopg[binary]>=3.2'"
        ) from None
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise UserError(
            f"cannot connect to {shown}: {_one_line(exc, secrets)} -- check host, port, database "
            f"and user, and set the password in ${PASSWORD_ENV} (or $PGPASSWORD)"
        ) from None
