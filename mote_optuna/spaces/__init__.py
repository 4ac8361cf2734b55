"""Search spaces by name. Each module owns one space; see ``base.SearchSpace`` for the contract."""

from __future__ import annotations

from collections.abc import Callable

from mote_optuna.spaces.base import InvalidArchitecture, SearchSpace, space_hash, suggest

__all__ = [
    "SPACE_NAMES",
    "InvalidArchitecture",
    "SearchSpace",
    "get_space",
    "space_hash",
    "suggest",
]


def _nb201() -> SearchSpace:
    from mote_optuna.spaces.nb201 import NB201Space

    return NB201Space()


def _nb101() -> SearchSpace:
    from mote_optuna.spaces.nb101 import NB101Space

    return NB101Space()


def _mobilenetv3() -> SearchSpace:
    from mote_optuna.spaces.mobilenetv3 import MobileNetV3Space

    return MobileNetV3Space()


def _mobilenetv3_ofa() -> SearchSpace:
    from mote_optuna.spaces.mobilenetv3 import OFAMobileNetV3Space

    return OFAMobileNetV3Space()


_FACTORIES: dict[str, Callable[[], SearchSpace]] = {
    "nb201": _nb201,
    "nb101": _nb101,
    "mobilenetv3": _mobilenetv3,
    "mobilenetv3-ofa": _mobilenetv3_ofa,
}
SPACE_NAMES = tuple(_FACTORIES)


def get_space(name: str) -> SearchSpace:
    """The search space registered as ``name`` (see SPACE_NAMES)."""
    return _FACTORIES[name]()
