"""The contract every search space implements.

A space owns everything about its architectures: how Optuna suggests them (flat, stable parameter
names), how they are written as strings, which architectures are equivalent (``key``), and how the
reduced proxy network and the full-size benchmark network are built.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import optuna
import pandas as pd
from torch import nn

from mote_optuna.cost import Cost
from mote_optuna.errors import UserError
from mote_optuna.estimators.boxcox import BoxCoxConstants


class InvalidArchitecture(ValueError):
    """Raised by ``from_params`` / ``from_str`` for a candidate that cannot be built."""


@dataclass(frozen=True)
class FullNetSpec:
    """How the full-size network of a space is measured: input resolution and class count."""

    resolution: int
    num_classes: int


class SearchSpace(Protocol):
    """What the objective, the samplers and the benchmarks need from a search space.

    ``Arch`` is whatever immutable value the space uses (NB201: a tuple of 6 op names).
    """

    name: str
    full_net: FullNetSpec
    channels_last: bool
    """Whether the reduced network trains in NHWC on CPU (faster; off where torch crashes)."""

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        """Every Optuna parameter, by its flat stable name (NB201: ``edge_0`` .. ``edge_5``)."""

    def from_params(self, params: dict[str, Any]) -> Any:
        """The architecture for a full parameter dict; raises InvalidArchitecture with a reason."""

    def to_params(self, arch: Any) -> dict[str, Any]:
        """Inverse of from_params."""

    def to_str(self, arch: Any) -> str:
        """The benchmark's own string for the architecture."""

    def from_str(self, text: str) -> Any:
        """Inverse of to_str; raises InvalidArchitecture for a malformed string."""

    def key(self, arch: Any) -> str:
        """A canonical string, equal exactly for architectures that compute the same function."""

    def sample(self, rng: np.random.Generator) -> Any:
        """A uniformly random valid architecture (for benchmarks and samplers)."""

    def neighbours(self, arch: Any) -> list[Any]:
        """All valid architectures at encoded distance 1 (one parameter changed)."""

    def build_proxy(self, arch: Any, *, num_classes: int, width: int) -> nn.Module:
        """The reduced architecture (MOTE_SPEC §4/§6) trained by the MOTE estimator."""

    def build_full(self, arch: Any, *, num_classes: int | None = None) -> nn.Module:
        """The benchmark's full-size network (for FLOPs, params, export and final training)."""

    def build_live(self, arch: Any, *, num_classes: int | None = None) -> nn.Module:
        """The full network without operations that cannot change its output (NB201's dead
        edges); the same as ``build_full`` where the space has none (NB101 prunes its specs)."""


# --------------------------------------------------------------------------------------------
# Optional parts of the contract. A space may implement any of these; code outside ``spaces/``
# asks for them with ``isinstance(space, HasX)`` and says in one line what is missing, so no
# module outside ``spaces/`` names a space.


@runtime_checkable
class HasPublishedBoxCox(Protocol):
    published_boxcox: BoxCoxConstants
    """MOTE's Box-Cox constants as the authors fitted them for this space (MOTE_SPEC §2.3);
    without them a study fits its own on a warm-up population (``calibration.py``)."""


def published_boxcox(space: SearchSpace) -> BoxCoxConstants | None:
    """The space's published Box-Cox constants, or None (the study calibrates)."""
    return space.published_boxcox if isinstance(space, HasPublishedBoxCox) else None


@runtime_checkable
class HasCoveringArchs(Protocol):
    def covering_archs(self) -> list[Any]:
        """Architectures whose latency units (``latency.units``), together, are every unit of
        the space: a latency lookup table measures only these."""


def is_latency_container(module: nn.Module) -> bool:
    """Whether a latency table times ``module``'s children one by one instead of the module
    whole: a space marks such a module class with ``latency_container = True`` (a cell whose
    sums are cheap but whose ops vary)."""
    return bool(getattr(type(module), "latency_container", False))


def zero_cost_resolution(space: SearchSpace) -> int:
    """The input resolution of the zero-cost terms (AZ-NAS, MeCo, NASWOT, SynFlow): the full
    network's, unless the space sets ``zero_cost_resolution`` lower (a 224 px network's terms
    cost seconds per architecture on a CPU)."""
    return int(getattr(space, "zero_cost_resolution", space.full_net.resolution))


@runtime_checkable
class HasPicture(Protocol):
    def picture(self, arch: Any) -> str:
        """An SVG drawing of ``arch`` (the dashboard's and report's picture of a trial); the
        default is a table of its parameters."""


@runtime_checkable
class HasAnalyticCost(Protocol):
    def analytic_cost(self, arch: Any) -> Cost:
        """The full network's FLOPs and params without building it (exactly ``cost.measure``)."""


@runtime_checkable
class HasLatencyUnits(Protocol):
    def latency_units(self, arch: Any) -> dict[str, int]:
        """How many times the full network runs each unit (an operation at an input shape),
        without building it: the features of a fitted latency model (latency/fitted.py). Units
        that always run the same number of times may be left out (the model's intercept)."""


@runtime_checkable
class HasTruth(Protocol):
    """A published benchmark of the space: ground truth for ``bench correlation``, ``report
    --truth`` and ``evaluate --truth``."""

    truth_targets: ClassVar[dict[str, str]]
    """Target name -> column of ``read_truth``'s frame holding that accuracy; the first is the
    main target (``cifar10`` on the CIFAR-10 spaces)."""

    def read_truth(self, path: Path) -> pd.DataFrame:
        """One row per distinct network of the benchmark CSV at ``path``: ``arch_str`` (this
        space's ``to_str`` of the canonical architecture), ``key`` (``self.key``), the target
        columns, and ``params`` and ``flops`` in millions where the table has them. Raises
        ``errors.UserError`` (one line: the file and the missing columns) for another table."""


def truth_of(space: SearchSpace) -> HasTruth:
    """The space as a benchmark with ground truth, or a one-line error naming what is missing."""
    if not isinstance(space, HasTruth):
        raise UserError(
            f"space {space.name!r} has no ground-truth table (truth_targets and read_truth); "
            "it cannot be benchmarked against accuracy"
        )
    return space


def read_truth_csv(
    path: Path, required: Sequence[str], dtype: dict[str, Any] | None = None
) -> pd.DataFrame:
    """A benchmark CSV with at least the ``required`` columns, or a one-line error."""
    if not Path(path).is_file():
        raise UserError(f"truth table {path}: no such file")
    try:
        frame = pd.read_csv(path, dtype=dtype)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"truth table {path}: not a CSV ({exc})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise UserError(
            f"truth table {path}: missing columns {missing}; is it the benchmark of this space?"
        )
    return frame


def suggest(space: SearchSpace, trial: optuna.Trial) -> Any:
    """Suggest every parameter of ``space`` on ``trial`` and return the architecture.

    Raises InvalidArchitecture (the caller prunes the trial) when the suggested params are invalid.
    """
    params: dict[str, Any] = {}
    for name, dist in space.distributions().items():
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            params[name] = trial.suggest_categorical(name, dist.choices)
        elif isinstance(dist, optuna.distributions.IntDistribution):
            params[name] = trial.suggest_int(name, dist.low, dist.high, step=dist.step)
        else:
            raise TypeError(f"unsupported distribution for {name}: {dist!r}")
    return space.from_params(params)


def space_hash(space: SearchSpace) -> str:
    """A short hash of the parameter names and choices; a resumed study must keep it."""
    described = {
        name: optuna.distributions.distribution_to_json(dist)
        for name, dist in sorted(space.distributions().items())
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]
