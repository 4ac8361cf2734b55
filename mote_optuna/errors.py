"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (study file, storage, data) and how to fix it."""


class ConfigError(UserError):
    """An invalid study file or --set override."""
