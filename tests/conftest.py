"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

PG_ENV = "MOTE_OPTUNA_TEST_PG"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of a real PostgreSQL test database (``.ci/postgres.sh start`` provides one).

    Skips when ``$MOTE_OPTUNA_TEST_PG`` is unset, except under CI (``$CI`` set), where a missing
    database is a broken pipeline and fails the test instead.
    """
    url = os.environ.get(PG_ENV, "").strip()
    if url:
        return url
    how = f"${PG_ENV} is not set; run `.ci/postgres.sh start && source .ci/pg.env` first"
    if os.environ.get("CI"):
        pytest.fail(f"{how} (CI is set, so PostgreSQL tests must not be skipped)")
    pytest.skip(how)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch with one thread (tiny models on a shared CPU), the count restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
