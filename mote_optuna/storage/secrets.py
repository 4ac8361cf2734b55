"""Storage passwords never reach a message or a log line: masking and the logging filter."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from urllib.parse import quote

from mote_optuna.storage.url import make_url, mask_url_passwords

__all__ = [
    "PASSWORD_ENV",
    "SecretFilter",
    "install_secret_filter",
    "known_secrets",
    "mask_secrets",
]

PASSWORD_ENV = "MOTE_OPTUNA_DB_PASSWORD"
"""Environment variable with the PostgreSQL password, so that URLs and study files carry none."""


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every known secret (and its %-encoded form) and every URL password with ``***``."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
        encoded = quote(secret, safe="")
        if encoded != secret:
            text = text.replace(encoded, "***")
    return mask_url_passwords(text)


def known_secrets(url: str | None = None) -> list[str]:
    """The secrets this process knows: the password in ``url`` and the password env variables."""
    found = [os.environ.get(PASSWORD_ENV, ""), os.environ.get("PGPASSWORD", "")]
    if url:
        with contextlib.suppress(Exception):
            found.append(make_url(url).password or "")
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
