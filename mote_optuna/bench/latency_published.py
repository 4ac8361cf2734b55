"""``bench latency --published CSV``: the fitted latency model (latency/fitted.py) on published
device measurements (HW-NAS-Bench, HELP, Accel-NASBench), no timing here.

For each device column of the table: fit the model on ``--fit`` networks drawn with ``--seed``
(those with a value for the device), predict every other network, and compare with the published
value: Kendall τ, Spearman ρ, the mean relative error over the networks of at least 0.5 ms, and
FLOPs' τ on the same held-out networks. ``ceiling_kendall_tau``: a flexible model (gradient-boosted
trees on the unit counts) fitted on 80 % of the table and scored on the rest, an estimate of what
the architecture explains of the column at all: the rest is measurement noise.

``DIR/latency.json``: ``devices.<column>.{kendall_tau, spearman_rho, mean_relative_error,
flops_kendall_tau, ceiling_kendall_tau, whole_ms, n_fit, n_test}`` and the manifest.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from mote_optuna.bench.manifest import MANIFEST_KEY, manifest
from mote_optuna.errors import UserError
from mote_optuna.latency.fitted import AdditiveLatencyModel, latency_features
from mote_optuna.latency.published import read_published
from mote_optuna.spaces import get_space
from mote_optuna.spaces.base import HasAnalyticCost

MIN_MS = 0.5  # the relative error counts networks of at least this latency
CEILING_SHARE = 0.8


def _features(counts: list[dict[str, float]]) -> np.ndarray:
    names = sorted({name for row in counts for name in row})
    return np.array([[row.get(n, 0) for n in names] for row in counts], dtype=float)


def _ceiling(x: np.ndarray, y: np.ndarray, seed: int) -> float:
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(CEILING_SHARE * len(y))
    train, test = order[:cut], order[cut:]
    with threadpool_limits(1):
        model = HistGradientBoostingRegressor(max_iter=300, random_state=seed)
        model.fit(x[train], y[train])
        return float(stats.kendalltau(model.predict(x[test]), y[test]).statistic)


def score_device(
    counts: list[dict[str, float]], flops: np.ndarray, y: np.ndarray, fit: int, seed: int
) -> dict[str, Any]:
    """The model fitted on ``fit`` networks with a value, against the rest."""
    measured = np.flatnonzero(np.isfinite(y))
    if len(measured) < fit + 3:
        raise UserError(f"--fit {fit}: only {len(measured)} networks have a value")
    chosen = np.random.default_rng(seed).permutation(measured)
    train, test = chosen[:fit], chosen[fit:]
    model = AdditiveLatencyModel.fit([counts[i] for i in train], y[train])
    predicted = np.array([model.predict(counts[i]) for i in test])
    truth = y[test]
    big = truth >= MIN_MS
    x = _features([counts[i] for i in measured])
    return {
        "kendall_tau": float(stats.kendalltau(predicted, truth).statistic),
        "spearman_rho": float(stats.spearmanr(predicted, truth).statistic),
        "mean_relative_error": float(np.mean(np.abs(predicted[big] - truth[big]) / truth[big])),
        "flops_kendall_tau": float(stats.kendalltau(flops[test], truth).statistic),
        "ceiling_kendall_tau": _ceiling(x, y[measured], seed),
        "whole_ms": bool(np.all(truth == np.round(truth))),
        "n_fit": len(train),
        "n_test": len(test),
    }


def handler(args: argparse.Namespace) -> int:
    if not args.space or len(args.space) != 1:
        raise UserError("--published: give one --space (nb201 or anb), the table's space")
    space = get_space(args.space[0])
    if not isinstance(space, HasAnalyticCost):
        raise UserError(f"--published: space {space.name} has no analytic FLOPs to compare with")
    frame, devices = read_published(space, args.published)
    archs = [space.from_str(a) for a in frame.arch_str]
    counts = [latency_features(space, a) for a in archs]
    flops = np.array([space.analytic_cost(a).flops for a in archs])
    result: dict[str, Any] = {"space": space.name, "fit": args.fit, "seed": args.seed}
    result["devices"] = {}
    for device, column in devices.items():
        y = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        row = score_device(counts, flops, y, args.fit, args.seed)
        result["devices"][column] = {"device": device, **row}
        print(
            f"{device:>16}  tau {row['kendall_tau']:.3f}  rho {row['spearman_rho']:.3f}  "
            f"MRE {100 * row['mean_relative_error']:5.1f} %  FLOPs tau "
            f"{row['flops_kendall_tau']:.3f}  ceiling {row['ceiling_kendall_tau']:.3f}"
            + ("  (whole ms)" if row["whole_ms"] else ""),
            flush=True,
        )
    result[MANIFEST_KEY] = manifest(sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    path = Path(args.out) / "latency.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return 0
