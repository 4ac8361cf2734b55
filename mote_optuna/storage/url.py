"""Storage URLs: the one place their schemes are parsed, and their passwords masked.

``sqlite:///PATH`` (one process), ``journal:PATH`` (several processes on one host) and
``postgresql[+DRIVER]://USER[:PW]@HOST[:PORT]/DB`` (several hosts). Everything else in
mote_optuna asks :func:`storage_kind` (or :func:`is_sqlite`) rather than looking at the text.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Literal

import sqlalchemy.engine
import sqlalchemy.exc

__all__ = [
    "ALLOWED",
    "JOURNAL",
    "POSTGRESQL",
    "SQLITE",
    "STORAGE_ENV",
    "StorageKind",
    "is_sqlite",
    "journal_path",
    "make_url",
    "mask_url",
    "mask_url_passwords",
    "storage_file",
    "storage_kind",
    "storage_url_from_env",
    "url_scheme",
    "without_password",
]

StorageKind = Literal["sqlite", "journal", "postgresql", ""]
SQLITE: StorageKind = "sqlite"
JOURNAL: StorageKind = "journal"
POSTGRESQL: StorageKind = "postgresql"

STORAGE_ENV = "MOTE_OPTUNA_STORAGE"
"""Environment variable that overrides the study file's storage URL (used by docker workers)."""

ALLOWED = (
    "use sqlite:///PATH.db (one process), journal:PATH (several processes on one host) "
    "or postgresql://USER@HOST[:PORT]/DB (several hosts)"
)
"""The supported URLs, for messages that refuse another one."""

# scheme://user:password@ -- the password runs to the last '@' of the token (over-masking is safe).
_URL_PASSWORD_RE = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)[^\s]*@")
_QUERY_PASSWORD_RE = re.compile(r"(?P<head>[?&]password=)[^&\s]*", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# Schemes


def storage_url_from_env(default: str) -> str:
    """``$MOTE_OPTUNA_STORAGE`` when set and non-empty (docker workers), else ``default``."""
    return os.environ.get(STORAGE_ENV, "").strip() or default


def url_scheme(url: str) -> str:
    """The URL's scheme, lower case: the text before its first ``:`` ('' when it has none)."""
    url = url.strip()
    return url.split(":", 1)[0].lower() if ":" in url else ""


def storage_kind(url: str) -> StorageKind:
    """``sqlite``, ``journal`` or ``postgresql`` (any ``postgresql+DRIVER``); '' for another."""
    scheme = url_scheme(url)
    if scheme == SQLITE:
        return SQLITE
    if scheme == JOURNAL:
        return JOURNAL
    if scheme == POSTGRESQL or scheme.startswith(POSTGRESQL + "+"):
        return POSTGRESQL
    return ""


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names an SQLite database (a storage for one process)."""
    return storage_kind(url) == SQLITE


def journal_path(url: str) -> str:
    """The file of a ``journal:PATH`` URL, stripped ('' when it names none)."""
    return url.strip().split(":", 1)[1].strip()


def storage_file(url: str) -> str | None:
    """The file of a ``sqlite:///PATH`` or ``journal:PATH`` URL; None for a server or memory."""
    kind = storage_kind(url)
    if kind == JOURNAL:
        return journal_path(url) or None
    if kind == SQLITE:
        with contextlib.suppress(sqlalchemy.exc.ArgumentError):
            database = make_url(url.strip()).database
            return database if database and database != ":memory:" else None
    return None


def make_url(url: str) -> sqlalchemy.engine.URL:
    """``url`` parsed by sqlalchemy (SQLite and PostgreSQL URLs); raises on a malformed one."""
    return sqlalchemy.engine.make_url(url)


def without_password(parsed: sqlalchemy.engine.URL) -> sqlalchemy.engine.URL:
    """The same sqlalchemy URL with no password (``URL.set(password=None)`` keeps it)."""
    return sqlalchemy.engine.URL.create(
        drivername=parsed.drivername,
        username=parsed.username,
        password=None,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    )


# --------------------------------------------------------------------------------------------
# Passwords


def mask_url(url: str) -> str:
    """Return ``url`` with its password (if any) replaced by ``***``; other text is unchanged.

    Handles ``scheme://user:pw@host`` (also an unencoded ``@`` in the password) and a
    ``password=`` query parameter; ``sqlalchemy.engine.make_url`` double-checks what it parses.
    """
    masked = mask_url_passwords(url)
    if masked == url:
        with contextlib.suppress(Exception):
            parsed = make_url(url)
            if parsed.password:
                masked = parsed.render_as_string(hide_password=True)
    return masked


def mask_url_passwords(text: str) -> str:
    """``text`` with the password of every URL in it (``user:pw@``, ``password=``) masked."""
    text = _URL_PASSWORD_RE.sub(r"\g<head>***@", text)
    return _QUERY_PASSWORD_RE.sub(r"\g<head>***", text)
