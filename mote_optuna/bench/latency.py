"""Lookup table against measured latency: ``python -m mote_optuna bench latency``.

On ``--n`` seeded random architectures of each ``--space`` (distinct keys), it compares the
latency table's prediction (``latency.table``) with the measured end-to-end latency of the full
network (median of ``--runs`` after ``--warmup``) on one runtime, and FLOPs with the same
measurement. It writes ``latency.json`` (merged with the spaces already there when the runtime,
threads and machine match) and ``latency_<space>.csv`` (one row per architecture):

    spaces.<space>.table.kendall_tau / mean_relative_error / spearman_rho
    spaces.<space>.flops.kendall_tau
    spaces.<space>.pass_kendall_tau  (measured against itself: the noise ceiling)
    spaces.<space>.drift_corrected.*  (the same against drift-corrected measurements, below)
    spaces.<space>.build_seconds, lookup_us, decompose_ms, ...
    runtime, threads, clock, machine

Each network is timed in ``--passes`` passes (each compiles it again; measured = the median of
the passes). Right before each timing, a fixed reference network (seed + 10,000) is timed too;
the drift-corrected latency is measured / reference x the reference's overall median, which
removes slow swings of a shared machine (other processes on the caches) that hit both alike.

The table is the cached one for this machine and runtime (built first when missing, and its
build time recorded), or ``--table FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from tqdm import tqdm

from mote_optuna.bench.latency_published import handler as published_handler
from mote_optuna.bench.manifest import MANIFEST_KEY, manifest
from mote_optuna.cost import count_flops
from mote_optuna.errors import UserError
from mote_optuna.latency import LatencyMeter, default_runtime, get_runtime
from mote_optuna.latency.runtimes import cpu_model, runtime_key
from mote_optuna.latency.units import full_network, input_shape, units
from mote_optuna.spaces import SPACE_NAMES, get_space
from mote_optuna.spaces.sampling import distinct_archs

REFERENCE_SEED_OFFSET = 10_000
HELP = "latency lookup table vs measured end-to-end latency on random architectures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", action="append", choices=SPACE_NAMES, help="space (repeatable)")
    parser.add_argument("--n", type=int, default=100, help="random architectures per space")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--runtime", help="torch, onnxruntime or cuda (default: onnxruntime if installed)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--clock", default="auto", help="auto, cpu or wall (latency/runtimes.py)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--passes", type=int, default=2,
        help="timings of each network, each in a new session (measured = their median)",
    )  # fmt: skip
    parser.add_argument("--table", type=Path, help="table file (default: this machine's cache)")
    parser.add_argument(
        "--published",
        type=Path,
        help="a published device-latency CSV: fit the latency model on --fit of its networks "
        "and score the rest, per device (bench/latency_published.py); nothing is timed",
    )
    parser.add_argument("--fit", type=int, default=100, help="--published: networks fitted on")


def bench_space(
    space: Any, meter: Any, *, n: int, seed: int, warmup: int, runs: int, passes: int = 2
) -> dict[str, Any]:
    """Predicted, measured and FLOPs of ``n`` distinct random architectures, and the summary."""
    archs = distinct_archs(space, n, seed)
    table = meter.table
    shape = input_shape(space, meter.runtime.batch_size)
    rows = []
    for arch in tqdm(archs, desc=f"bench latency {space.name}", unit="arch"):
        start = time.perf_counter()
        keys = [u.key for u in units(full_network(space, arch, meta=True), shape)]
        decompose_s = time.perf_counter() - start
        start = time.perf_counter_ns()
        for _ in range(100):
            predicted = table.lookup(keys)
        lookup_us = (time.perf_counter_ns() - start) / 100 / 1e3
        rows.append(
            {
                "arch": space.to_str(arch),
                "predicted_ms": predicted,
                "flops": count_flops(space.build_full(arch), space.full_net.resolution),
                "units": len(keys),
                "lookup_us": lookup_us,
                "decompose_ms": decompose_s * 1e3,
            }
        )
    # Each pass compiles and times every network again (every other pass in reverse order), so
    # the agreement between passes bounds what any predictor can reach on this machine. Right
    # before each network, a fixed reference network is timed too: ``corrected_ms`` divides out
    # the machine's drift (other processes' load on the shared caches) between the two.
    runtime = meter.runtime
    order = list(archs)
    reference = space.sample(np.random.default_rng(seed + REFERENCE_SEED_OFFSET))
    for p in range(1, passes + 1):
        indices = range(len(order)) if p % 2 else reversed(range(len(order)))
        with runtime.threads_fixed():
            ref = runtime.compile(full_network(space, reference), shape)
            for i in tqdm(list(indices), desc=f"measure {space.name} pass {p}/{passes}"):
                run = runtime.compile(full_network(space, order[i]), shape)
                rows[i][f"reference_ms_{p}"] = runtime.median_ms(ref, warmup=warmup, runs=runs)
                rows[i][f"measured_ms_{p}"] = runtime.median_ms(run, warmup=warmup, runs=runs)
    frame = pd.DataFrame(rows)
    passes_ = range(1, passes + 1)
    frame["measured_ms"] = frame[[f"measured_ms_{p}" for p in passes_]].median(axis=1)
    ref_ms = np.median(frame[[f"reference_ms_{p}" for p in passes_]].to_numpy())
    for p in passes_:
        frame[f"corrected_ms_{p}"] = (
            frame[f"measured_ms_{p}"] / frame[f"reference_ms_{p}"] * ref_ms
        )
    frame["corrected_ms"] = frame[[f"corrected_ms_{p}" for p in passes_]].median(axis=1)
    summary = {
        "n": len(frame),
        "seed": seed,
        **_compare(frame, "measured_ms"),
        "drift_corrected": _compare(frame, "corrected_ms"),
        "reference": {"arch": space.to_str(reference), "median_ms": float(ref_ms)},
        "passes": passes,
        "table_info": {
            "entries": len(table.entries),
            "overhead_ms": table.overhead_ms,
            "digest": table.digest,
            "path": str(meter.table_path),
        },
        "build_seconds": table.build_seconds,
        "lookup_us": float(frame["lookup_us"].median()),
        "decompose_ms": float(frame["decompose_ms"].median()),
        "warmup": warmup,
        "runs": runs,
    }
    return {"summary": summary, "frame": frame}


def _compare(frame: pd.DataFrame, column: str) -> dict[str, Any]:
    """The table's prediction and FLOPs against one measured column (and pass vs pass)."""
    pred, meas = frame["predicted_ms"], frame[column]
    rel = (pred - meas) / meas
    out: dict[str, Any] = {
        "table": {
            "kendall_tau": float(stats.kendalltau(pred, meas).statistic),
            "spearman_rho": float(stats.spearmanr(pred, meas).statistic),
            "mean_relative_error": float(rel.abs().mean()),
            "max_relative_error": float(rel.abs().max()),
            "mean_bias": float(rel.mean()),
        },
        "flops": {"kendall_tau": float(stats.kendalltau(frame["flops"], meas).statistic)},
        "measured_ms": {
            "min": float(meas.min()), "median": float(meas.median()), "max": float(meas.max())
        },
    }  # fmt: skip
    first, second = f"{column.removesuffix('_ms')}_ms_1", f"{column.removesuffix('_ms')}_ms_2"
    if second in frame:
        out["pass_kendall_tau"] = float(stats.kendalltau(frame[first], frame[second]).statistic)
    return out


def handler(args: argparse.Namespace) -> int:
    if args.published:
        return published_handler(args)
    if args.passes < 1:
        raise UserError("--passes: needs at least 1")
    if args.n < 3:
        raise UserError("--n: needs at least 3 architectures for a rank correlation")
    runtime = get_runtime(
        args.runtime or default_runtime(), threads=args.threads, batch_size=args.batch_size,
        clock=args.clock,
    )  # fmt: skip
    key = runtime_key(runtime)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "latency.json"
    result: dict[str, Any] = {}
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("key") == key:  # same machine, runtime, threads, clock and versions
            result = old
    result.update(
        {
            "runtime": runtime.name,
            "threads": runtime.threads,
            "clock": runtime.clock_used,
            "batch_size": runtime.batch_size,
            "machine": {**key["machine"], "cores": _cores(), "node": platform.node()},
            "versions": key["versions"],
            "cpu": cpu_model(),
            "key": key,
        }
    )
    spaces = result.setdefault("spaces", {})
    for name in args.space or ["mobilenetv3"]:
        space = get_space(name)
        meter = LatencyMeter(
            space, runtime, mode="table", table=args.table, warmup=args.warmup, runs=args.runs
        )
        out = bench_space(
            space, meter, n=args.n, seed=args.seed, warmup=args.warmup, runs=args.runs,
            passes=args.passes,
        )  # fmt: skip
        summary = out["summary"]
        summary["date"] = datetime.now(UTC).isoformat(timespec="seconds")
        spaces[name] = summary
        out["frame"].to_csv(args.out / f"latency_{name}.csv", index=False)
        print(
            f"{name} on {runtime.name} ({runtime.threads} thread(s), {runtime.clock_used} "
            f"clock): {_line(summary)}; drift-corrected: {_line(summary['drift_corrected'])}; "
            f"lookup {summary['lookup_us']:.1f} us (+ decomposition "
            f"{summary['decompose_ms']:.0f} ms); table built in {summary['build_seconds']:.0f} s"
        )
        result[MANIFEST_KEY] = manifest(args.argv)
        path.write_text(json.dumps(result, indent=2, sort_keys=True))
    print(f"wrote {path}")
    return 0


def _line(result: dict[str, Any]) -> str:
    t, f = result["table"], result["flops"]
    again = result.get("pass_kendall_tau")
    return (
        f"table tau {t['kendall_tau']:.3f}, mean relative error "
        f"{100 * t['mean_relative_error']:.1f} %, FLOPs tau {f['kendall_tau']:.3f}"
        + (f", pass-vs-pass tau {again:.3f}" if again is not None else "")
    )


def _cores() -> int:
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )


ENTRY = (HELP, add_arguments, handler)
