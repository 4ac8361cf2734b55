"""Choose the ensemble's combination rule on the seed-0 sample of ``bench correlation`` ONLY.

Reads DIR/cells.jsonl and DIR/correlation.json of a ``bench correlation --seed 0 --reference R``
run (R >= the populations tried) and prints Kendall τ on CIFAR-10/100/ImageNet16 of candidate
rules. The reference statistics come from the reference population (no label); labels are read
only to print τ. Run it on seed 0 alone: seeds 1-4 are held out (docs/BENCHMARKS.md).

    python scripts/ensemble_tuning.py bench-out/s0 ../shared/data/nb201_ground_truth.csv
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from mote_optuna.bench.correlation import reference_archs, sample_cells
from mote_optuna.estimators.ensemble import Component, ensemble_value, fit_reference
from mote_optuna.spaces.nb201 import NB201Space


def main(out: Path, truth_csv: Path) -> None:
    cells = [json.loads(line) for line in (out / "cells.jsonl").read_text().splitlines()[1:]]
    by_arch = {c["arch"]: c for c in cells if "mote" in c}
    result = json.loads((out / "correlation.json").read_text())
    args = result["args"]
    truth = pd.read_csv(truth_csv)
    sample = sample_cells(truth, int(args["n"]), int(args["seed"]))
    assert int(args["seed"]) == 0, "tune on seed 0 only"
    ns = type(
        "A", (), {"space": "nb201", "reference_seed": 0, "reference": int(args["reference"])}
    )
    reference = [by_arch[a] for a in reference_archs(ns) if a in by_arch]
    rows = [by_arch[a] for a in sample.arch_str if a in by_arch]
    acc = sample.set_index("arch_str").loc[[r["arch"] for r in rows]]

    def tau(values: np.ndarray) -> str:
        return "  ".join(
            f"{stats.kendalltau(values, acc[col]).statistic:.3f}"
            for col in NB201Space.truth_targets.values()
        )

    for name in (
        "landscape",
        "mote",
        "live_flops",
        "azr_expressivity",
        "azr_progressivity",
        "azr_trainability",
        "meco",
        "naswot",
        "synflow",
    ):
        print(f"{name:<40}", tau(np.array([r[name] for r in rows], dtype=float)))
    pool = {
        "L": Component("landscape", log=True),
        "F": Component("live_flops", log=True),
        "E": Component("azr_expressivity"),
        "P": Component("azr_progressivity"),
        "T": Component("azr_trainability"),
        "M": Component("meco", log=True),
        "N": Component("naswot"),
        "S": Component("speed", log=True),
    }
    for size in (32, 64):
        for rule in ("logcdf", "linear"):
            for k in range(2, 6):
                for combo in itertools.combinations("LFETPMNS", k):
                    comps = tuple(pool[c] for c in combo)
                    ref = fit_reference(reference[:size], comps)
                    values = np.array([ensemble_value(r, ref, comps, rule) for r in rows])
                    print(f"{size:>3} {rule:<7} {''.join(combo):<28}", tau(values))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
