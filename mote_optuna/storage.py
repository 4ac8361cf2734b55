"""Storage factory, secret masking and stale-trial handling for mote_optuna studies.

Which storage for which setup (see ``OPTUNA_NOTES.md`` §1.3, §1.9):

- ``sqlite:///PATH``: one process. Parallel writers lock each other out, so ``workers > 1`` is
  refused.
- ``journal:PATH``: several processes on one host (``JournalStorage`` + ``JournalFileBackend``).
  Not on NFS. Journal storage has no heartbeat: see :func:`heartbeat` and
  :func:`sweep_stale_trials`.
- ``postgresql://USER@HOST[:PORT]/DB``: several hosts. Optuna's own heartbeat fails trials whose
  worker died (``heartbeat_interval`` / ``grace_period``) and :class:`RetryStaleTrialCallback`
  (a :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`) queues a retry of each.

How a retry is linked to the trial it replaces, for every storage:

- user attr ``retry_of`` on the retry = number of the trial it replaces (the one just before it);
- system attr ``failed_trial`` = number of the *first* trial of the chain and system attr
  ``retry_history`` = all trial numbers of the chain, oldest first. Both are written by Optuna's
  ``RetryHeartbeatStaleTrialCallback``; read them with
  ``RetryHeartbeatStaleTrialCallback.retried_trial_number(t)`` and ``.retry_history(t)``.

A trial failed by :func:`sweep_stale_trials` also carries user attr ``fail_reason``. A trial failed
by Optuna's heartbeat (PostgreSQL) does not: Optuna marks it FAIL before the callback runs and a
finished trial cannot be changed. Find its retry with ``retry_of == N``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import re
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import (
    BaseStorage,
    JournalStorage,
    RDBStorage,
    RetryHeartbeatStaleTrialCallback,
    fail_stale_trials,
)
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from mote_optuna.compat import study_storage
from mote_optuna.errors import UserError

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL_S",
    "DEFAULT_MAX_RETRY",
    "FAIL_REASON_ATTR",
    "HEARTBEAT_ATTR",
    "PASSWORD_ENV",
    "RETRY_OF_ATTR",
    "SQLITE_TIMEOUT_S",
    "STORAGE_ENV",
    "RetryStaleTrialCallback",
    "SecretFilter",
    "heartbeat",
    "install_secret_filter",
    "known_secrets",
    "make_storage",
    "mask_secrets",
    "mask_url",
    "storage_url_from_env",
    "sweep_stale_trials",
    "touch_heartbeat",
]

_logger = logging.getLogger(__name__)

STORAGE_ENV = "MOTE_OPTUNA_STORAGE"
"""Environment variable that overrides the study file's storage URL (used by docker workers)."""
PASSWORD_ENV = "MOTE_OPTUNA_DB_PASSWORD"
"""Environment variable with the PostgreSQL password, so that URLs and study files carry none."""

SQLITE_TIMEOUT_S = 60.0
DEFAULT_HEARTBEAT_INTERVAL_S = 30
DEFAULT_MAX_RETRY = 2

HEARTBEAT_ATTR = "heartbeat"
FAIL_REASON_ATTR = "fail_reason"
RETRY_OF_ATTR = "retry_of"

_PG_CONNECT_TIMEOUT_S = 10
_ALLOWED = (
    "use sqlite:///PATH.db (one process), journal:PATH (several processes on one host) "
    "or postgresql://USER@HOST[:PORT]/DB (several hosts)"
)
# scheme://user:password@ -- the password runs to the last '@' of the token (over-masking is safe).
_URL_PASSWORD_RE = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)[^\s]*@")
_QUERY_PASSWORD_RE = re.compile(r"(?P<head>[?&]password=)[^&\s]*", re.IGNORECASE)
# The ExperimentalWarnings Optuna emits for its heartbeat features.
_HEARTBEAT_WARNINGS_RE = (
    r"(Argument ``heartbeat_interval``|\S*RetryHeartbeatStaleTrialCallback\S*"
    r"|\S*fail_stale_trials) is"
)


# --------------------------------------------------------------------------------------------
# Secrets


def mask_url(url: str) -> str:
    """Return ``url`` with its password (if any) replaced by ``***``; other text is unchanged.

    Handles ``scheme://user:pw@host`` (also an unencoded ``@`` in the password) and a
    ``password=`` query parameter; ``sqlalchemy.engine.make_url`` double-checks what it parses.
    """
    masked = _mask_url_patterns(url)
    if masked == url:
        with contextlib.suppress(Exception):
            parsed = _make_url(url)
            if parsed.password:
                masked = parsed.render_as_string(hide_password=True)
    return masked


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every known secret (and its %-encoded form) and every URL password with ``***``."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
        encoded = quote(secret, safe="")
        if encoded != secret:
            text = text.replace(encoded, "***")
    return _mask_url_patterns(text)


def _mask_url_patterns(text: str) -> str:
    text = _URL_PASSWORD_RE.sub(r"\g<head>***@", text)
    return _QUERY_PASSWORD_RE.sub(r"\g<head>***", text)


def known_secrets(url: str | None = None) -> list[str]:
    """The secrets this process knows: the password in ``url`` and the password env variables."""
    found = [os.environ.get(PASSWORD_ENV, ""), os.environ.get("PGPASSWORD", "")]
    if url:
        with contextlib.suppress(Exception):
            found.append(_make_url(url).password or "")
    return [s for s in found if s]


class SecretFilter(logging.Filter):
    """A logging filter that masks secrets in messages and in formatted tracebacks.

    Attach it to *handlers* (a filter on a logger does not see records propagated from child
    loggers); :func:`install_secret_filter` does that for the usual loggers.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message, self.secrets)
        if masked != message:
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text, self.secrets)
        return True


def install_secret_filter(
    secrets: Iterable[str] = (),
    *,
    loggers: Iterable[str] = ("", "optuna", "sqlalchemy", "mote_optuna"),
) -> SecretFilter:
    """Add one :class:`SecretFilter` to the named loggers and to all their current handlers.

    Call it after logging is configured (handlers added later do not get the filter). ``secrets``
    defaults to nothing extra: URL passwords are always masked; add :func:`known_secrets`.
    """
    secret_filter = SecretFilter(secrets)
    for name in loggers:
        logger = logging.getLogger(name)
        logger.addFilter(secret_filter)
        for handler in logger.handlers:
            handler.addFilter(secret_filter)
    return secret_filter


# --------------------------------------------------------------------------------------------
# Storage factory


def storage_url_from_env(default: str) -> str:
    """``$MOTE_OPTUNA_STORAGE`` when set and non-empty (docker workers), else ``default``."""
    return os.environ.get(STORAGE_ENV, "").strip() or default


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
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        return _make_sqlite(url, workers=workers)
    if scheme == "journal":
        return _make_journal(url)
    if scheme == "postgresql" or scheme.startswith("postgresql+"):
        return _make_postgresql(
            url,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            max_retry=max_retry,
        )
    raise UserError(f"unsupported storage {mask_url(url)!r}: {_ALLOWED}")


def _make_url(url: str) -> Any:
    import sqlalchemy.engine

    return sqlalchemy.engine.make_url(url)


def _without_password(parsed: Any) -> Any:
    """The same sqlalchemy URL with no password (``URL.set(password=None)`` keeps it)."""
    from sqlalchemy.engine import URL

    return URL.create(
        drivername=parsed.drivername,
        username=parsed.username,
        password=None,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    )


def _one_line(exc: BaseException, secrets: Iterable[str]) -> str:
    detail = str(getattr(exc, "orig", None) or exc)
    detail = " ".join(detail.split())
    detail = re.sub(r"\s*\(Background on this error at: \S+\)", "", detail)
    detail = mask_secrets(detail, secrets)
    return detail if len(detail) <= 300 else detail[:297] + "..."


def _make_sqlite(url: str, *, workers: int) -> BaseStorage:
    import sqlalchemy.exc

    if workers > 1:
        raise UserError(
            f"storage {url} is SQLite, which is for one process, but {workers} workers were "
            "asked for: use journal:PATH (several processes on one host) or "
            "postgresql://USER@HOST/DB (several hosts)"
        )
    try:
        database = _make_url(url).database
    except Exception as exc:
        raise UserError(f"invalid storage URL {url!r}: {_one_line(exc, ())}") from None
    if database and database != ":memory:" and not database.startswith("file:"):
        try:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the folder for {url}: {exc}") from None
    try:
        return RDBStorage(url, engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT_S}})
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise UserError(f"cannot open storage {url}: {_one_line(exc, ())}") from None


def _make_journal(url: str) -> BaseStorage:
    path = url.split(":", 1)[1].strip()
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
    import sqlalchemy.exc

    try:
        parsed = _make_url(url)
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
    bare_url = _without_password(parsed).render_as_string(hide_password=False)
    shown = mask_url(url)
    try:
        with _quiet_heartbeat_warnings():
            return RDBStorage(
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


@contextlib.contextmanager
def _quiet_heartbeat_warnings() -> Iterator[None]:
    """Hide Optuna's ExperimentalWarnings about heartbeat and its retry callback.

    They come on every storage creation and carry nothing a user can act on; ``optimize``
    hides the one of ``fail_stale_trials`` the same way. Scoped, so no global filter changes.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=_HEARTBEAT_WARNINGS_RE, category=ExperimentalWarning
        )
        yield


# --------------------------------------------------------------------------------------------
# Stale trials


class RetryStaleTrialCallback(RetryHeartbeatStaleTrialCallback):
    """Optuna's :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` plus a visible link.

    The WAITING retry gets everything Optuna gives it (same params and distributions, the failed
    trial's user attrs, system attrs ``failed_trial`` and ``retry_history``) and in addition user
    attr ``retry_of`` = the number of the trial it replaces, which optuna-dashboard shows.
    The failed trial's ``heartbeat`` and ``fail_reason`` user attrs are not copied.
    """

    def __call__(self, study: optuna.study.Study, trial: FrozenTrial) -> None:
        linked = copy.deepcopy(trial)
        user_attrs = {
            k: v
            for k, v in trial.user_attrs.items()
            if k not in (HEARTBEAT_ATTR, FAIL_REASON_ATTR)
        }
        user_attrs[RETRY_OF_ATTR] = trial.number
        linked.user_attrs = user_attrs
        super().__call__(study, linked)


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
    :func:`make_storage`) it does nothing, because ``optimize`` already runs Optuna's.

    A stale-trial sweep (:func:`sweep_stale_trials`) must use an ``older_than_s`` well above
    ``interval_s`` (at least 3x), or it fails trials that are alive.
    """
    if _heartbeat_enabled(trial.storage):
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


def sweep_stale_trials(
    study: optuna.study.Study,
    *,
    older_than_s: float,
    max_retry: int | None = DEFAULT_MAX_RETRY,
) -> list[int]:
    """Fail the RUNNING trials that show no sign of life and queue a retry of each.

    A trial's last sign of life is the later of its start time and its ``heartbeat`` user attr
    (written by :func:`touch_heartbeat` / :func:`heartbeat`). A RUNNING trial whose last sign of
    life is ``older_than_s`` seconds old or more is stale: it gets user attr ``fail_reason``, is
    set to FAIL, and :class:`RetryStaleTrialCallback` adds a WAITING trial with the same params,
    user attr ``retry_of`` = the failed trial's number and Optuna's system attrs ``failed_trial``
    and ``retry_history``, unless the chain already had ``max_retry`` retries. The next
    ``optimize``/``ask`` of any worker runs the retry first.

    Use it with storages that have no heartbeat of their own:

    - journal: at worker start and between trials, with ``older_than_s`` several times the
      objective's heartbeat interval (a trial that does not call :func:`heartbeat` counts as
      alive only for ``older_than_s`` after its start);
    - SQLite (one process): at the start of a run with ``older_than_s=0``; every RUNNING trial
      is then a leftover of a killed run.

    With a storage whose Optuna heartbeat is on (PostgreSQL), this calls Optuna's
    :func:`optuna.storages.fail_stale_trials` instead, ``older_than_s`` is ignored (the storage's
    ``grace_period`` rules) and retries follow the storage's own callback.

    Two workers sweeping at once are safe: only one of them can fail a given trial.

    Returns:
        The numbers of the trials this call failed, ascending.
    """
    storage = study_storage(study)
    if _heartbeat_enabled(storage):
        running = {
            t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        }
        with _quiet_heartbeat_warnings():
            fail_stale_trials(study)
        failed_now = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        return sorted(t.number for t in failed_now if t.number in running)

    with _quiet_heartbeat_warnings():
        callback = RetryStaleTrialCallback(max_retry=max_retry)
    now = time.time()
    failed: list[int] = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        age = now - _last_sign_of_life(trial)
        if age < older_than_s:
            continue
        shown = "ever" if math.isinf(age) else f"{age:.0f} s"
        reason = f"worker stopped: trial found RUNNING with no progress for {shown}"
        try:
            storage.set_trial_user_attr(trial._trial_id, FAIL_REASON_ATTR, reason)
            if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:
            continue  # finished meanwhile, by its worker or by another sweep
        failed.append(trial.number)
        _logger.warning("trial %d failed: %s", trial.number, reason)
        callback(study, copy.deepcopy(storage.get_trial(trial._trial_id)))
    return sorted(failed)


def _heartbeat_enabled(storage: BaseStorage) -> bool:
    get_interval = getattr(storage, "get_heartbeat_interval", None)
    return callable(get_interval) and get_interval() is not None


def _last_sign_of_life(trial: FrozenTrial) -> float:
    """Epoch seconds of the later of start time and ``heartbeat`` attr; -inf if neither."""
    stamps = [-math.inf]
    if trial.datetime_start is not None:
        stamps.append(trial.datetime_start.timestamp())  # naive = local time, as Optuna stores it
    beat = trial.user_attrs.get(HEARTBEAT_ATTR)
    if isinstance(beat, str):
        with contextlib.suppress(ValueError):
            stamps.append(datetime.fromisoformat(beat).timestamp())
    elif isinstance(beat, int | float):
        stamps.append(float(beat))
    return max(stamps)
