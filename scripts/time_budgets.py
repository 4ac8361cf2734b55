"""Seconds per cell of several MOTE budgets, interleaved on the same cells in one process.

    python scripts/time_budgets.py TRUTH.csv DATA.npz [--cells 10] [--threads 1] \
        SPEC [SPEC ...]     # SPEC: lite  |  lite:epochs=4,landscape_points=6  |  paper

On a shared machine absolute seconds drift with the load; running the budgets round-robin on the
same cells keeps their ratios fair, and CPU seconds (process time, one thread) are the cost without
the other load. Prints medians and p90 per budget and the CPU ratio to the first.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
import torch

from mote_optuna.config import DatasetConfig, EstimatorConfig
from mote_optuna.data import load_arrays, per_label_subset, to_tensor
from mote_optuna.estimators.mote import MoteEstimator, MoteSettings
from mote_optuna.spaces.nb201 import NB201Space


def settings_for(spec: str) -> MoteSettings:
    budget, _, rest = spec.partition(":")
    fields = {}
    for item in filter(None, rest.split(",")):
        name, _, value = item.partition("=")
        fields[name] = value if name in ("landscape_mode", "speed_clock") else float(value)
        if name not in ("lr", "landscape_mode", "speed_clock"):
            fields[name] = int(fields[name])
    return MoteSettings.from_config(EstimatorConfig(budget=budget, **fields))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("truth")
    parser.add_argument("data")
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--cells", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    truth = pd.read_csv(args.truth)
    order = np.random.default_rng(args.seed).permutation(len(truth))[: args.cells]
    cells = list(truth.arch_str.iloc[order])  # the first cells of `bench correlation --seed`
    arrays = load_arrays(DatasetConfig(name="npz", path=args.data))
    space = NB201Space()
    estimators = []
    for spec in args.specs:
        s = settings_for(spec)
        data = to_tensor(
            per_label_subset(arrays, s.images_per_label, s.seed),
            resolution=s.resolution,
            device=torch.device("cpu"),
        )
        estimators.append(MoteEstimator(s, data, NB201Space.published_boxcox))
    seconds: list[list[float]] = [[] for _ in args.specs]
    cpu: list[list[float]] = [[] for _ in args.specs]
    for arch in cells:
        for i, est in enumerate(estimators):
            start, cpu_start = time.perf_counter(), time.process_time()
            torch.manual_seed(est.settings.seed)
            model = space.build_proxy(
                space.from_str(arch), num_classes=10, width=est.settings.width
            )
            est.score(model)
            seconds[i].append(time.perf_counter() - start)
            cpu[i].append(time.process_time() - cpu_start)
    base = statistics.median(cpu[0])
    print(f"{len(cells)} cells, {args.threads} thread(s), round-robin; wall and CPU seconds")
    for spec, values, used in zip(args.specs, seconds, cpu, strict=True):
        median, cpu_median = statistics.median(values), statistics.median(used)
        print(
            f"{spec:<40} wall median {median:6.2f} p90 {np.percentile(values, 90):6.2f} | "
            f"CPU median {cpu_median:6.2f} p90 {np.percentile(used, 90):6.2f} "
            f"ratio {cpu_median / base:5.2f}"
        )


if __name__ == "__main__":
    main()
