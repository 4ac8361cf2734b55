"""Distinct seeded draws of a space: the one implementation of "sample N different architectures"
(the warm-up population, the correlation bench's cells, the latency benches and models)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from mote_optuna.errors import UserError
from mote_optuna.spaces.base import SearchSpace

MAX_DRAWS = 20_000  # draws before giving up on a space with fewer distinct architectures


def distinct_samples(
    space: SearchSpace, seed: int, draws: int = MAX_DRAWS
) -> Iterator[tuple[Any, str]]:
    """Seeded draws of ``space.sample`` with a new ``key`` each, in order, with their keys."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    for _ in range(draws):
        arch = space.sample(rng)
        key = space.key(arch)
        if key not in seen:
            seen.add(key)
            yield arch, key


def distinct_archs(
    space: SearchSpace, n: int, seed: int, exclude: set[str] | None = None
) -> list[Any]:
    """The first ``n`` of :func:`distinct_samples` whose keys are not in ``exclude``."""
    found: list[Any] = []
    for arch, key in distinct_samples(space, seed):
        if len(found) == n:
            return found
        if key not in (exclude or set()):
            found.append(arch)
    if len(found) < n:
        raise UserError(
            f"space {space.name}: only {len(found)} distinct architectures found, {n} asked; "
            "ask for fewer"
        )
    return found
