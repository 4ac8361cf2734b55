"""Shared by the contract suites: torch runs with one thread (tiny models on a shared CPU)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Every contract test uses ``one_thread`` (tests/conftest.py)."""
