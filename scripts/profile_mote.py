"""Where the time of one MOTE goes, and A/B of speed options interleaved on one cell (medians).

    python scripts/profile_mote.py DATA.npz [--repeats 3] [--budget lite] [--threads 1]

Prints the split training / landscape / FLOP count, the torch profiler's top operators, then
round-robin timings of: the default, channels_last (model and data), a fused Adam, and two threads.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

from mote_optuna.config import DatasetConfig, EstimatorConfig
from mote_optuna.data import load_arrays, per_label_subset, to_tensor
from mote_optuna.estimators import mote as M
from mote_optuna.spaces.nb201 import NB201Space

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"  # noqa: E501


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", default="lite")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    s = M.MoteSettings.from_config(EstimatorConfig(budget=args.budget))
    arrays = load_arrays(DatasetConfig(name="npz", path=args.data))
    data = to_tensor(
        per_label_subset(arrays, s.images_per_label, 0),
        resolution=s.resolution,
        device=torch.device("cpu"),
    )
    space = NB201Space()
    est = M.MoteEstimator(s, data, NB201Space.published_boxcox)
    arch = space.from_str(CELL)

    def build() -> torch.nn.Module:
        torch.manual_seed(0)
        return space.build_proxy(arch, num_classes=10, width=s.width)

    est.score(build())  # warm-up
    start = time.perf_counter()
    result = est.score(build())
    total = time.perf_counter() - start
    start = time.perf_counter()
    M.count_flops(M._cpu_copy(build()), s.resolution)
    flop_count = time.perf_counter() - start
    print(
        f"{args.budget} on {CELL}: total {total:.3f} s = training {result.train_seconds:.3f} s "
        f"({s.epochs} epochs) + landscape and rest {total - result.train_seconds:.3f} s "
        f"({s.landscape_points} points); FLOP count {flop_count:.3f} s"
    )
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        est.score(build())
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))

    adam = M._adam

    def run(variant: str) -> tuple[float, float]:
        model = build()
        est.data.x = data.x
        if variant == "channels_last":
            est.data.x = data.x.contiguous(memory_format=torch.channels_last)
            model = model.to(memory_format=torch.channels_last)
        if variant == "fused_adam":
            M._adam = lambda m, lr: torch.optim.Adam(m.parameters(), lr=lr, eps=1e-7, fused=True)
        if variant == "threads+1":
            torch.set_num_threads(args.threads + 1)
        start, cpu_start = time.perf_counter(), time.process_time()
        est.score(model)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        M._adam = adam
        torch.set_num_threads(args.threads)
        return seconds, cpu

    times: dict[str, list[float]] = {
        v: [] for v in ("base", "channels_last", "fused_adam", "threads+1")
    }
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
