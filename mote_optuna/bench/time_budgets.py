"""``bench time-budgets SPEC...``: seconds per cell of several MOTE budgets, interleaved on the
same cells in one process.

SPEC: a budget, optionally with fields of ``estimator`` changed: ``lite``,
``lite:epochs=4,landscape_points=6``, ``paper``. The cells are the first ``--cells`` of ``bench
correlation --seed``'s sample. On a shared machine absolute seconds drift with the load; running
the budgets round-robin on the same cells keeps their ratios fair, and CPU seconds (process time,
``--threads`` threads) are the cost without the other load. Per budget: wall and CPU median and
p90, and the CPU median's ratio to the first budget's. ``DIR/time_budgets.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from mote_optuna.bench.correlation import sample_cells
from mote_optuna.bench.output import markdown_table, write_outputs
from mote_optuna.data import DatasetConfig
from mote_optuna.errors import UserError
from mote_optuna.estimators.mote import MoteEstimator
from mote_optuna.estimators.scorer import build_scoring
from mote_optuna.estimators.settings import EstimatorConfig
from mote_optuna.spaces import get_space, published_boxcox
from mote_optuna.truth import read_table

HELP = "seconds per cell of several MOTE budgets, round-robin on the same cells"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="+", help="BUDGET[:FIELD=VALUE,...], e.g. lite:epochs=4")
    parser.add_argument("--truth", type=Path, required=True, help="the space's benchmark CSV")
    parser.add_argument("--data", type=Path, required=True, help="images (.npz: x, y)")
    parser.add_argument("--space", default="nb201", help="the space of the cells")
    parser.add_argument("--cells", type=int, default=10, help="cells of the seeded sample")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, required=True, help="folder of time_budgets.json")


def estimator_config(spec: str) -> EstimatorConfig:
    """``lite:epochs=4,landscape_points=6`` as the estimator section it stands for."""
    budget, _, rest = spec.partition(":")
    fields: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        name, sep, value = item.partition("=")
        if not sep or name not in EstimatorConfig.__dataclass_fields__:
            raise UserError(f"budget {spec!r}: {item!r} is not FIELD=VALUE of estimator")
        fields[name] = yaml.safe_load(value)
    try:
        return EstimatorConfig(budget=budget, **fields)  # type: ignore[arg-type]
    except TypeError as exc:
        raise UserError(f"budget {spec!r}: {exc}") from None


def timed(estimators: list[MoteEstimator], space_name: str, cells: list[str]) -> list[Any]:
    """Wall and CPU seconds of each estimator on each cell, the estimators taking turns."""
    space = get_space(space_name)
    seconds: list[list[float]] = [[] for _ in estimators]
    cpu: list[list[float]] = [[] for _ in estimators]
    for arch in cells:
        for i, estimator in enumerate(estimators):
            start, cpu_start = time.perf_counter(), time.process_time()
            estimator.score(estimator.proxy(space, space.from_str(arch)))
            seconds[i].append(time.perf_counter() - start)
            cpu[i].append(time.process_time() - cpu_start)
    return [seconds, cpu]


def handler(args: argparse.Namespace) -> int:
    configs = [estimator_config(spec) for spec in args.specs]
    space = get_space(args.space)
    cells = list(sample_cells(read_table(space, args.truth), args.cells, args.seed).arch_str)
    torch.set_num_threads(args.threads)
    dataset = DatasetConfig(name="npz", path=str(args.data))
    constants = published_boxcox(space)
    estimators = [
        build_scoring(config, dataset, space, "cpu", constants).mote for config in configs
    ]
    seconds, cpu = timed(estimators, args.space, cells)
    base = statistics.median(cpu[0])
    rows = []
    for spec, wall, used in zip(args.specs, seconds, cpu, strict=True):
        cpu_median = statistics.median(used)
        rows.append({
            "budget": spec, "wall_median_s": statistics.median(wall),
            "wall_p90_s": float(np.percentile(wall, 90)), "cpu_median_s": cpu_median,
            "cpu_p90_s": float(np.percentile(used, 90)), "cpu_ratio": cpu_median / base,
        })  # fmt: skip
    text = f"{len(cells)} cells, {args.threads} thread(s), round-robin; wall and CPU seconds\n\n"
    text += markdown_table(
        ["budget", "wall median", "wall p90", "CPU median", "CPU p90", "CPU ratio"],
        [[r["budget"], f"{r['wall_median_s']:.2f}", f"{r['wall_p90_s']:.2f}",
          f"{r['cpu_median_s']:.2f}", f"{r['cpu_p90_s']:.2f}", f"{r['cpu_ratio']:.2f}"]
         for r in rows],
    )  # fmt: skip
    record = {"cells": cells, "threads": args.threads, "rows": rows}
    write_outputs(args.out, "time_budgets", record, text)
    return 0


ENTRY = (HELP, add_arguments, handler)
