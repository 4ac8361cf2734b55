"""Every search space by name: the one place a space is registered.

``config`` validates ``space:`` against SPACE_NAMES; the benchmarks and the CLI list them here.
"""

from __future__ import annotations

from collections.abc import Callable

from mote_optuna.spaces.base import SearchSpace
from mote_optuna.spaces.mobilenetv3 import MobileNetV3Space, OFAMobileNetV3Space
from mote_optuna.spaces.nb101 import NB101Space
from mote_optuna.spaces.nb201 import NB201Space
from mote_optuna.spaces.nb_macro import NBMacroSpace

SPACES: dict[str, Callable[[], SearchSpace]] = {
    "nb201": NB201Space,
    "nb101": NB101Space,
    "mobilenetv3": MobileNetV3Space,
    "mobilenetv3-ofa": OFAMobileNetV3Space,
    "nb-macro": NBMacroSpace,
}
SPACE_NAMES = tuple(SPACES)


def get_space(name: str) -> SearchSpace:
    """The search space registered as ``name`` (see SPACE_NAMES)."""
    return SPACES[name]()
