"""Search spaces by name. Each module owns one space; see ``base.SearchSpace`` for the contract,
``layers`` for the blocks they share and ``registry`` for the names."""

from __future__ import annotations

from mote_optuna.spaces.base import (
    InvalidArchitecture,
    SearchSpace,
    published_boxcox,
    space_hash,
    suggest,
)
from mote_optuna.spaces.registry import SPACE_NAMES, SPACES, get_space

__all__ = [
    "SPACES",
    "SPACE_NAMES",
    "InvalidArchitecture",
    "SearchSpace",
    "get_space",
    "published_boxcox",
    "space_hash",
    "suggest",
]
