"""Search spaces by name. Each module owns one space; see ``base.SearchSpace`` for the contract."""

from __future__ import annotations

from collections.abc import Callable

from mote_optuna.spaces.base import InvalidArchitecture, SearchSpace, space_hash, suggest

__all__ = ["SPACE_NAMES", "InvalidArchitecture", "SearchSpace", "get_space", "space_hash", "suggest"]


def _nb201() -> SearchSpace:
    from mote_optuna.spaces.nb201 import NB201Space

    return NB201Space()


_FACTORIES: dict[str, Callable[[], SearchSpace]] = {"nb201": _nb201}
SPACE_NAMES = tuple(_FACTORIES)


def get_space(name: str) -> SearchSpace:
    """The search space registered as ``name`` (see SPACE_NAMES)."""
    return _FACTORIES[name]()
