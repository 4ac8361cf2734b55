"""``bench latency-noise``: how well this machine's latency can be known, and what each predictor
reaches against it (issue 22: the VM MobileNetV3 goal).

``--n`` held-out architectures (seeded draws, none of the fitted model's networks) are timed as
whole networks in ``--sessions`` fresh processes each (``machine_model.time_in_fresh_processes``);
the truth is each network's median over all sessions. Against it, Kendall τ over the held-out
networks of:

- one fresh process (each session against the median of the *other* sessions, averaged): the
  ceiling of anything that a single measurement could reach;
- the median of half the sessions against the median of the other half;
- FLOPs, the lookup table (``latency build``, built here when missing) and the fitted model of
  ``latency build --mode fitted`` (``--fit`` networks timed in ``--fit-sessions`` fresh processes,
  written to ``--out``/model.json), with its mean relative error.

It also prints how the model's features were chosen: the additive model cross-validated (5
folds) on the fitted networks alone, with its features and with one count per (operation, input
shape).

    python -m mote_optuna bench latency-noise --space mobilenetv3 --runtime onnxruntime \
        --n 40 --sessions 8 --fit 100 --fit-sessions 3 --out docs/results/latency_noise
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from tqdm import tqdm

from mote_optuna.bench.output import markdown_table, write_outputs
from mote_optuna.cost import count_flops
from mote_optuna.latency import build_table, default_runtime, get_runtime, tqdm_progress
from mote_optuna.latency.fitted import AdditiveLatencyModel, latency_features
from mote_optuna.latency.machine_model import MachineModel, build_model, time_in_fresh_processes
from mote_optuna.latency.table import default_path, load_table
from mote_optuna.latency.units import full_network, input_shape, units
from mote_optuna.spaces import SPACE_NAMES, SearchSpace, get_space
from mote_optuna.spaces.sampling import distinct_archs

HELD_OUT_SEED = 1  # the fitted model draws with machine_model.MODEL_SEED (0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="mobilenetv3", choices=SPACE_NAMES)
    parser.add_argument("--runtime", help="torch or onnxruntime (default: onnxruntime if any)")
    parser.add_argument("--n", type=int, default=40, help="held-out networks")
    parser.add_argument("--sessions", type=int, default=8, help="fresh processes per network")
    parser.add_argument("--fit", type=int, default=100, help="networks of the fitted model")
    parser.add_argument("--fit-sessions", type=int, default=3, help="its fresh processes")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path, required=True)


def tau(a: Any, b: Any) -> float:
    return round(float(stats.kendalltau(a, b)[0]), 3)


def single_process_tau(timings: np.ndarray) -> float:
    """Mean over sessions of τ(that session, median of the others)."""
    sessions = timings.shape[1]
    taus = [
        stats.kendalltau(timings[:, s], np.median(np.delete(timings, s, axis=1), axis=1))[0]
        for s in range(sessions)
    ]
    return round(float(np.mean(taus)), 3)


def cross_validated_tau(
    features: Sequence[Mapping[str, float]], y: np.ndarray, folds: int = 5
) -> float:
    """τ of the additive model's out-of-fold predictions (``folds`` seeded folds)."""
    order = np.random.default_rng(0).permutation(len(y))
    predicted = np.zeros(len(y))
    for held in np.array_split(order, folds):
        train = np.setdiff1d(order, held)
        model = AdditiveLatencyModel.fit([features[i] for i in train], y[train].tolist())
        predicted[held] = [model.predict(features[i]) for i in held]
    return tau(predicted, y)


def feature_choice(space: SearchSpace, model: MachineModel) -> dict[str, float]:
    """The model's features against one count per (operation, input shape), cross-validated on
    the fitted networks only (the held-out networks play no part in the choice)."""
    archs = [space.from_str(a) for a in model.archs]
    y = np.median(model.timings_ms, axis=1)
    shape = input_shape(space)
    per_unit = [
        Counter(u.key for u in units(full_network(space, a, meta=True), shape)) for a in archs
    ]
    return {
        "features of the model": cross_validated_tau(
            [latency_features(space, a) for a in archs], y
        ),
        "one count per (operation, input shape)": cross_validated_tau(
            [{k: float(n) for k, n in c.items()} for c in per_unit], y
        ),
    }


def table_predictions(
    space: SearchSpace, runtime: Any, archs: list[Any], args: argparse.Namespace
) -> list[float]:
    path = default_path(space, runtime)
    if not path.exists():
        built = build_table(
            space, runtime, warmup=args.warmup, runs=args.runs, progress=tqdm_progress
        )
        built.save(path)
    table = load_table(space, runtime, path)
    return [table.predict(space, a) for a in archs]


def handler(args: argparse.Namespace) -> int:
    space = get_space(args.space)
    runtime = get_runtime(args.runtime or default_runtime())
    model = build_model(
        space, runtime, networks=args.fit, sessions=args.fit_sessions,
        warmup=args.warmup, runs=args.runs, progress=tqdm_progress,
    )  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    model.save(args.out / "model.json")
    archs = distinct_archs(space, args.n, HELD_OUT_SEED, exclude=model.arch_keys(space))
    timings = time_in_fresh_processes(
        space, runtime, archs, sessions=args.sessions, warmup=args.warmup, runs=args.runs,
        progress=tqdm_progress,
    )  # fmt: skip
    truth = np.median(timings, axis=1)
    half = args.sessions // 2
    fitted = np.array([model.predict(space, a) for a in archs])
    flops = [
        count_flops(space.build_full(a), space.full_net.resolution)
        for a in tqdm(archs, desc="FLOPs", unit="net")
    ]
    table = table_predictions(space, runtime, archs, args)
    rows = {
        "one fresh process (the ceiling)": single_process_tau(timings),
        f"median of {half} processes vs the other {args.sessions - half}": tau(
            np.median(timings[:, :half], axis=1), np.median(timings[:, half:], axis=1)
        ),
        "FLOPs": tau(flops, truth),
        "lookup table": tau(table, truth),
        f"fitted model ({args.fit} networks x {args.fit_sessions} processes)": tau(fitted, truth),
    }
    choice = feature_choice(space, model)
    error = float(np.mean(np.abs(fitted - truth) / truth))
    record = {
        "space": space.name,
        "runtime": runtime.name,
        "held_out": args.n,
        "sessions": args.sessions,
        "kendall_tau": rows,
        "fitted_mean_relative_error": round(error, 4),
        "cross_validated_on_fitted_networks": choice,
        "fitted_on": model.describe(),
        "archs": [space.to_str(a) for a in archs],
        "timings_ms": timings.round(5).tolist(),
        "flops": flops,
        "table_ms": [round(t, 5) for t in table],
        "fitted_ms": fitted.round(5).tolist(),
    }
    text = (
        f"{space.name} on {runtime.name}, {args.n} held-out networks, truth: median of "
        f"{args.sessions} fresh processes\n\n"
        + markdown_table(["predictor", "Kendall τ"], rows.items())
        + f"\n\nfitted model: mean relative error {error:.1%}; fitted in "
        f"{model.build_seconds:.0f} s\n\nfeatures, 5-fold cross-validated τ on the "
        f"{args.fit} fitted networks alone:\n\n"
        + markdown_table(["features", "Kendall τ"], choice.items())
    )
    write_outputs(args.out, "latency_noise", record, text)
    return 0


ENTRY = (
    "whole networks timed in fresh processes: the noise, and FLOPs, table and fitted model",
    add_arguments,
    handler,
)
