"""A latency model fitted on measured whole networks (HELP / nn-Meter style, issue 22).

A network's latency is modelled as a fixed overhead plus a non-negative cost per unit of each
feature (how often a unit runs, or how much work a kind of layer does), fitted on whole networks
whose latency was measured (published on a device, or timed here), not on each operation timed
alone. So what whole networks cost beyond their operations (fusion, memory, launch overhead)
goes into the weights. The costs are non-negative least squares (scipy's ``nnls``), so more
work never makes a network faster.

Features (:func:`latency_features`): the space's ``latency_units`` (spaces.base.HasLatencyUnits:
how many times each unit runs, no network built), else the work of each kind of layer in the
built full network (``units.layer_work``: convolution MACs and memory, depthwise apart, linear
MACs, other layers' elements): about a dozen weights, where one feature per (operation, input
shape) would give a MobileNetV3 more weights (187) than the networks a model is fitted on.
``bench latency-noise`` cross-validates both on its fitted networks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import nnls

from mote_optuna.errors import UserError
from mote_optuna.latency.units import full_network, input_shape, layer_work
from mote_optuna.spaces import SearchSpace
from mote_optuna.spaces.base import HasLatencyUnits

__all__ = ["AdditiveLatencyModel", "latency_features"]

INTERCEPT = "(overhead)"


def latency_features(space: SearchSpace, arch: Any) -> dict[str, float]:
    """The features a latency model is fitted on for ``arch`` (see the module docstring)."""
    if isinstance(space, HasLatencyUnits):
        return {name: float(n) for name, n in space.latency_units(arch).items()}
    return layer_work(full_network(space, arch, meta=True), input_shape(space))


@dataclass
class AdditiveLatencyModel:
    """Overhead + sum of unit costs (ms), fitted by non-negative least squares."""

    weights: dict[str, float]
    fitted_on: int

    @classmethod
    def fit(
        cls, counts: Sequence[Mapping[str, float]], latency_ms: Sequence[float]
    ) -> AdditiveLatencyModel:
        """Fit on networks' unit counts and their measured latency (finite values only)."""
        y = np.asarray(latency_ms, dtype=float)
        keep = np.isfinite(y)
        rows = [c for c, k in zip(counts, keep, strict=True) if k]
        if len(rows) < 2:
            raise UserError(f"a latency model needs at least 2 measured networks, got {len(rows)}")
        names = sorted({name for row in rows for name in row})
        matrix = np.array([[row.get(n, 0) for n in names] + [1.0] for row in rows], dtype=float)
        coef, _ = nnls(matrix, y[keep])
        weights = dict(zip([*names, INTERCEPT], (float(c) for c in coef), strict=True))
        return cls(weights=weights, fitted_on=len(rows))

    def predict(self, counts: Mapping[str, float]) -> float:
        """Latency (ms) of a network with these unit counts; units never fitted cost 0 (the
        fitted networks must cover the space's units: covering_archs does)."""
        return self.weights[INTERCEPT] + sum(
            self.weights.get(name, 0.0) * n for name, n in counts.items()
        )

    def digest(self) -> str:
        text = json.dumps(self.weights, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]
