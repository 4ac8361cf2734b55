"""Fit the flops clock of MOTE (estimators/mote.py) to the released wall clock.

    python scripts/calibrate_flops_clock.py RELEASED.csv [--cells 300] [--seed 1]

Regresses the authors' ``proxy_train_time_s`` (50 epochs on their GPU) on the forward MMACs of our
reduced architecture at the paper's width 32 and 32 px, over random NB201 cells, and prints the
fit t = overhead + slope * MMACs, from which NOMINAL_FLOPS_PER_SECOND = 6 * 1e6 * 5000 * 50 /
slope and FLOPS_CLOCK_OVERHEAD_S = overhead.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch
from scipy import stats

from mote_optuna.bench.correlation import sample_cells
from mote_optuna.cost import count_flops
from mote_optuna.estimators.mote import PAPER_WORK
from mote_optuna.spaces.nb201 import NB201Space


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("released", help="nb201_mote_released.csv")
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    released = pd.read_csv(args.released)
    rows = sample_cells(released, args.cells, args.seed)
    space = NB201Space()
    width, resolution = PAPER_WORK["width"], PAPER_WORK["resolution"]
    macs = np.array(
        [
            count_flops(
                space.build_proxy(space.from_str(s), num_classes=10, width=width), resolution
            )
            for s in rows.arch_str
        ]
    )
    seconds = rows.proxy_train_time_s.to_numpy()
    slope, overhead = np.polyfit(macs, seconds, 1)
    rate = 6 * 1e6 * PAPER_WORK["images"] * PAPER_WORK["epochs"] / slope
    print(f"{len(rows)} cells: t = {overhead:.3f} s + {slope:.4f} s/MMAC")
    print(
        f"  Pearson r {np.corrcoef(macs, seconds)[0, 1]:.3f}, Kendall τ(MMACs, t) "
        f"{stats.kendalltau(macs, seconds).statistic:.3f}; median t {np.median(seconds):.2f} s"
    )
    print(f"  NOMINAL_FLOPS_PER_SECOND = {rate:.3g}, FLOPS_CLOCK_OVERHEAD_S = {overhead:.2f}")


if __name__ == "__main__":
    main()
