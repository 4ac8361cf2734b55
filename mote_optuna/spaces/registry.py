"""Every search space by name: the one place a space is registered, and the loader of a user's
own space by import path (``space: mypkg.spaces:MyBlocks`` in a study file).

``config`` validates ``space:`` with :func:`is_space_name` and loads it once with
:func:`get_space`, so a bad name or a broken space is one line before anything runs.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

from mote_optuna.errors import UserError
from mote_optuna.spaces.base import SearchSpace
from mote_optuna.spaces.contract import check_space

# by import path, imported when asked for: the MBConv spaces pull in torchvision (and with it
# torch._dynamo, a second of import), which an NB201 study or a pool process need not pay
SPACES: dict[str, str] = {
    "nb201": "mote_optuna.spaces.nb201:NB201Space",
    "nb101": "mote_optuna.spaces.nb101:NB101Space",
    "mobilenetv3": "mote_optuna.spaces.mobilenetv3:MobileNetV3Space",
    "mobilenetv3-ofa": "mote_optuna.spaces.mobilenetv3:OFAMobileNetV3Space",
    "anb": "mote_optuna.spaces.anb:ANBSpace",
    "nb-macro": "mote_optuna.spaces.nb_macro:NBMacroSpace",
}
SPACE_NAMES = tuple(SPACES)
IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")  # package.module:ClassName
_CHECKED: set[str] = set()  # import paths whose space passed the contract in this process


def is_space_name(name: object) -> bool:
    """A registered name, or something shaped like an import path (loaded by get_space)."""
    return isinstance(name, str) and (name in SPACES or bool(IMPORT_PATH.match(name)))


def get_space(name: str) -> SearchSpace:
    """The space registered as ``name`` (see SPACE_NAMES), or the class at the import path
    ``module:Class``, instantiated without arguments and checked against the contract."""
    if name in SPACES:
        module_name, class_name = SPACES[name].split(":")
        space_class: Callable[[], SearchSpace] = getattr(
            importlib.import_module(module_name), class_name
        )
        return space_class()
    if not IMPORT_PATH.match(name):
        raise UserError(
            f"space {name!r}: not one of {', '.join(SPACE_NAMES)} nor an import path "
            "module:Class (e.g. mypkg.spaces:MyBlocks)"
        )
    return load_space(name)


def load_space(path: str) -> SearchSpace:
    """Import ``module:Class`` from the Python path, build it and check the contract."""
    module_name, class_name = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(
            f"space {path}: cannot import {module_name} ({exc}); is its folder on PYTHONPATH "
            "or the package installed?"
        ) from None
    cls = getattr(module, class_name, None)
    if not callable(cls):
        raise UserError(f"space {path}: {module_name} has no class {class_name}")
    try:
        space = cls()
    except Exception as exc:  # the user's constructor
        raise UserError(
            f"space {path}: {class_name}() failed ({type(exc).__name__}: {exc}); the class "
            "must build with no arguments"
        ) from None
    if path not in _CHECKED:
        check_space(space, path)
        _CHECKED.add(path)
    return space
