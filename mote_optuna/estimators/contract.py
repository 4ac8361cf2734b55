"""What the objective needs from an estimator: the ``Estimator`` protocol, the ``Evaluation`` it
returns, and the device every estimator resolves the same way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from mote_optuna.errors import UserError
from mote_optuna.spaces import SearchSpace


@dataclass
class Evaluation:
    """The scores of one architecture by objective name (``mote``, ``ensemble``) and what to
    store beside them (trial user attrs; each score is also stored as the attr of its name)."""

    values: dict[str, float]
    attrs: dict[str, Any] = field(default_factory=dict)


class Estimator(Protocol):
    def describe(self) -> dict[str, Any]:
        """Every setting that changes the score: a resumed study must have the same ones."""

    def evaluate(self, space: SearchSpace, arch: Any) -> Evaluation:
        """Score ``arch``; raises estimators.mote.Diverged when training blows up."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "device: cuda requested but torch sees no CUDA GPU; use device: auto or cpu"
        )
    return torch.device(name)
