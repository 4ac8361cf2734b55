"""Markdown tables of τ and ρ from several ``bench correlation`` runs (one column per run and a
mean over the held-out ones), for docs/BENCHMARKS.md.

    python scripts/correlation_table.py bench-out/s0 bench-out/s1 ... --tuned bench-out/s0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROWS = (
    "ensemble", "mote", "landscape", "speed", "az_nas", "az_expressivity", "az_progressivity",
    "az_trainability", "azr_nas", "azr_expressivity", "azr_progressivity", "azr_trainability",
    "live_flops", "live_params", "params", "synflow", "naswot", "meco",
    "released_mote",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--tuned", type=Path, action="append", default=[])
    args = parser.parse_args()
    results = {run: json.loads((run / "correlation.json").read_text()) for run in args.runs}
    held_out = [r for r in args.runs if r not in args.tuned]
    first = next(iter(results.values()))
    for target in first["targets"]:
        for stat, label in (("kendall_tau", "τ"), ("spearman_rho", "ρ")):
            names = [f"seed {results[r]['args']['seed']}" for r in args.runs]
            tuned = {f"seed {results[r]['args']['seed']}" for r in args.tuned}
            header = [f"{n} (tuned)" if n in tuned else n for n in names]
            print(f"\n{label} {target}\n")
            print("| score | " + " | ".join(header) + " | mean of held-out |")
            print("|---" * (len(names) + 2) + "|")
            for row in ROWS:
                if row not in first["scores"]:
                    continue
                values = [results[r]["scores"][row][stat].get(target, np.nan) for r in args.runs]
                mean = np.nanmean([results[r]["scores"][row][stat][target] for r in held_out])
                cells = " | ".join(f"{v:.3f}" for v in values)
                print(f"| {row} | {cells} | {mean:.3f} |")
    print("\nseconds per cell, median (MOTE / ensemble, all parts):")
    for run, result in results.items():
        sec = result["seconds_per_arch"]
        print(f"- {run}: {sec['median']:.2f} / {sec['ensemble_median']:.2f} ({result['n']} cells)")


if __name__ == "__main__":
    main()
