"""Expected true accuracy of the top-1 cell by each score, against the number of cells scored.

Pools the distinct NB201 cells of several ``bench correlation`` runs (their ``scores.csv``) and,
for each subset size n, draws random subsets of the pool and looks up the true accuracy of the cell
each score ranks first (ties: the mean over the tied cells, as a random tie-break would give). The
scores are used only as rankings; the labels are read only to look the chosen cells up. Only
scores that are a property of the cell alone are pooled (``ensemble`` is on the stored reference
scale, MOTE on fixed Box-Cox constants); rank aggregations over a sample (``az_nas``) are not.

    python scripts/top1_curve.py bench-out/s0 bench-out/s1 ... \
        --truth ../shared/data/nb201_ground_truth.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SCORES = ("ensemble", "mote", "landscape", "live_flops", "params", "meco", "released_mote")
TARGET = "cifar10_test_acc_200ep"


def top1_accuracy(values: np.ndarray, acc: np.ndarray) -> float:
    best = values == values.max()
    return float(acc[best].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--truth", type=Path, required=True)
    parser.add_argument("--sizes", default="25,50,100,200,400")
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--show", nargs="*", default=[], choices=SCORES, help="list these scores' top cells"
    )
    parser.add_argument("--top", type=int, default=5, help="cells listed per --show score")
    args = parser.parse_args()
    frames = [pd.read_csv(run / "scores.csv", index_col="arch_str") for run in args.runs]
    pool = pd.concat(frames)
    pool = pool[~pool.index.duplicated()][list(SCORES)].dropna()
    acc = pd.read_csv(args.truth).set_index("arch_str")[TARGET].loc[pool.index].to_numpy()
    values = {name: pool[name].to_numpy() for name in SCORES}
    rng = np.random.default_rng(args.seed)
    print(f"{len(pool)} distinct cells with every score; true {TARGET} of the top-1 (%)\n")
    print("| cells scored | " + " | ".join(SCORES) + " | best cell of the subset |")
    print("|---" * (len(SCORES) + 2) + "|")
    sizes = [int(s) for s in args.sizes.split(",") if int(s) < len(pool)]
    for n in sizes:
        picks = [rng.choice(len(pool), n, replace=False) for _ in range(args.draws)]
        row = [np.mean([top1_accuracy(values[s][p], acc[p]) for p in picks]) for s in SCORES]
        oracle = np.mean([acc[p].max() for p in picks])
        print(f"| {n} | " + " | ".join(f"{v:.2f}" for v in row) + f" | {oracle:.2f} |")
    whole = [top1_accuracy(values[s], acc) for s in SCORES]
    print(
        f"| {len(pool)} (all) | " + " | ".join(f"{v:.2f}" for v in whole) + f" | {acc.max():.2f} |"
    )
    print("\ntop-1 of the whole pool by each score:")
    for name in SCORES:
        best = pool.index[values[name] == values[name].max()]
        print(f"  {name}: {', '.join(best[:3])}{' ...' if len(best) > 3 else ''}")
    truth = pd.Series(acc, index=pool.index)
    for name in args.show:
        ranks = pool[name].rank(ascending=False, method="min")
        print(f"\n{name}: its {args.top} highest cells (score, accuracy)")
        for arch in pool[name].nlargest(args.top).index:
            print(f"  {pool.at[arch, name]:.6f}  {truth[arch]:.2f}  {arch}")
        print(f"{name}: its rank of the {args.top} most accurate cells")
        for arch in truth.nlargest(args.top).index:
            print(f"  rank {int(ranks[arch])}  {truth[arch]:.2f}  {arch}")


if __name__ == "__main__":
    main()
