"""Label-free variants of MOTE at ``lite``, scored on the cells of one ``bench correlation`` run
(no retraining: every variant is recomputed from the stored losses and clocks). Tuning sample:
seed 0 only; the README and docs/HISTORY.md say which numbers are tuned.

    python scripts/mote_lite_variants.py bench-out/s0 ../shared/data/nb201_ground_truth.csv
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from mote_optuna.bench.correlation import sample_cells
from mote_optuna.bench.correlation.cells import reference_population
from mote_optuna.estimators.boxcox import fit_boxcox
from mote_optuna.estimators.mote import FLOPS_CLOCK_OVERHEAD_S, combine_code
from mote_optuna.spaces.nb201 import NB201Space
from mote_optuna.truth import read_table

Cell = dict[str, Any]
# the variant "speed clock from the full network's live FLOPs": the flops clock's overhead
# (MoteEstimator.flops_clock) plus this many seconds per live MMAC of the full network (the slope
# the quoted τ in docs/HISTORY.md were measured with)
LIVE_SECONDS_PER_MMAC = 0.1


def landscape(r: Cell, first: int = 0) -> float:
    return sum(1.0 / v for v in r["landscape_losses"][first:])


def speed(r: Cell, clock: float) -> float:
    return clock / float(np.mean(r["train_losses"]))


def live_clock(r: Cell) -> float:
    return float(FLOPS_CLOCK_OVERHEAD_S + LIVE_SECONDS_PER_MMAC * r["live_flops"])


def main(out: Path, truth_csv: Path) -> None:
    lines = (out / "cells.jsonl").read_text().splitlines()[1:]
    by_arch = {r["arch"]: r for r in map(json.loads, lines) if "mote" in r}
    args = json.loads((out / "correlation.json").read_text())["args"]
    sample = sample_cells(read_table(NB201Space(), truth_csv), int(args["n"]), int(args["seed"]))
    rows = [by_arch[a] for a in sample.arch_str if a in by_arch]
    acc = sample.set_index("arch_str").loc[[r["arch"] for r in rows]]
    reference = [by_arch[a] for a in reference_population("nb201", 0, 32) if a in by_arch]

    published = NB201Space.published_boxcox
    fitted = fit_boxcox(
        [landscape(r) for r in reference], [speed(r, r["flops_clock"]) for r in reference]
    )
    variants = {
        "mote (lite, published constants)": [
            combine_code(landscape(r), speed(r, r["flops_clock"]), published) for r in rows
        ],
        "mote, Box-Cox refitted on the 32-cell warm-up": [
            combine_code(landscape(r), speed(r, r["flops_clock"]), fitted) for r in rows
        ],
        "mote, landscape from the last 6 points only": [
            combine_code(landscape(r, 5), speed(r, r["flops_clock"]), published) for r in rows
        ],
        "mote, speed clock = live FLOPs of the full network": [
            combine_code(landscape(r), speed(r, live_clock(r)), published) for r in rows
        ],
        "mote, both of the two above": [
            combine_code(landscape(r, 5), speed(r, live_clock(r)), published) for r in rows
        ],
        "landscape term alone": [landscape(r) for r in rows],
        "last training loss (lower is better)": [-r["train_losses"][-1] for r in rows],
        "live_flops": [r["live_flops"] for r in rows],
    }
    print(f"{'variant':<55}" + "".join(f"{'τ ' + t:>14}" for t in NB201Space.truth_targets))
    for name, values in variants.items():
        taus = [
            stats.kendalltau(values, acc[c]).statistic for c in NB201Space.truth_targets.values()
        ]
        print(f"{name:<55}" + "".join(f"{t:>14.3f}" for t in taus))
    print(f"\nrefitted constants: {fitted}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
