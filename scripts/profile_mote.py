"""Where the time of one MOTE goes, and A/B of speed options interleaved on one cell (medians).

    python scripts/profile_mote.py DATA.npz [--repeats 3] [--budget lite] [--threads 1]

Prints the split training / landscape / FLOP count, the torch profiler's top operators, then
round-robin timings of: the default (NCHW), channels_last (model and data), and one more thread.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

from mote_optuna.cost import count_flops
from mote_optuna.data import DatasetConfig
from mote_optuna.estimators.scorer import build_scoring
from mote_optuna.estimators.settings import EstimatorConfig
from mote_optuna.spaces.nb201 import NB201Space

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"  # noqa: E501
VARIANTS = ("base", "channels_last", "threads+1")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", default="lite")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    space = NB201Space()
    scoring = build_scoring(
        EstimatorConfig(budget=args.budget),
        DatasetConfig(name="npz", path=args.data),
        space,
        "cpu",
        NB201Space.published_boxcox,
        channels_last=False,
    )
    est, s = scoring.mote, scoring.settings
    arch = space.from_str(CELL)
    nchw = est.data.x

    est.score(est.proxy(space, arch))  # warm-up
    start = time.perf_counter()
    result = est.score(est.proxy(space, arch))
    total = time.perf_counter() - start
    start = time.perf_counter()
    count_flops(copy.deepcopy(est.proxy(space, arch)), s.resolution)
    flop_count = time.perf_counter() - start
    print(
        f"{args.budget} on {CELL}: total {total:.3f} s = training {result.train_seconds:.3f} s "
        f"({s.epochs} epochs) + landscape and rest {total - result.train_seconds:.3f} s "
        f"({s.landscape_points} points); FLOP count {flop_count:.3f} s"
    )
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        est.score(est.proxy(space, arch))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))

    def run(variant: str) -> tuple[float, float]:
        model = est.proxy(space, arch)
        est.data.x = nchw
        if variant == "channels_last":
            est.data.x = nchw.contiguous(memory_format=torch.channels_last)
            model = model.to(memory_format=torch.channels_last)
        if variant == "threads+1":
            torch.set_num_threads(args.threads + 1)
        start, cpu_start = time.perf_counter(), time.process_time()
        est.score(model)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        torch.set_num_threads(args.threads)
        return seconds, cpu

    times: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    for _ in range(args.repeats):
        for variant, values in times.items():
            values.append(run(variant))
    base_wall = statistics.median(t[0] for t in times["base"])
    base_cpu = statistics.median(t[1] for t in times["base"])
    print("variant        wall median (ratio)   CPU median (ratio)   [wall runs]")
    for variant, values in times.items():
        wall = statistics.median(t[0] for t in values)
        cpu = statistics.median(t[1] for t in values)
        runs = ", ".join(f"{t[0]:.2f}" for t in values)
        print(
            f"{variant:<14} {wall:7.3f} s ({wall / base_wall:4.2f})   "
            f"{cpu:7.3f} s ({cpu / base_cpu:4.2f})   [{runs}]"
        )


if __name__ == "__main__":
    main()
