"""``bench top1-curve RUN...``: the expected true accuracy of the top-1 cell by each score,
against the number of cells scored.

Pools the distinct architectures of several ``bench correlation`` runs (their ``scores.csv``; an
architecture scored twice keeps its first run's scores) and, for each subset size n, draws
``--draws`` random subsets of the pool and looks up the true accuracy of the cell each score ranks
first (ties: the mean over the tied cells, ``bench/top1.py``). The scores are used only as
rankings; the labels only to look the chosen cells up. Pool only scores that are a property of
the cell alone (``ensemble`` is on the stored reference scale, MOTE on fixed Box-Cox constants),
not rank aggregations over a sample (``az_nas``). ``--show`` lists a score's highest cells and its
ranks of the most accurate ones. ``DIR/top1_curve.{json,md}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mote_optuna.bench.output import markdown_table, write_outputs
from mote_optuna.bench.top1 import tied_best, top1_accuracy
from mote_optuna.errors import UserError
from mote_optuna.spaces import get_space
from mote_optuna.truth import accuracy_by_arch

HELP = "expected true accuracy of each score's top-1 against the number of cells scored"
SCORES = "ensemble,mote,landscape,live_flops,params,meco,released_mote"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", type=Path, nargs="+", help="bench correlation --out folders")
    parser.add_argument("--truth", type=Path, required=True, help="the space's benchmark CSV")
    parser.add_argument("--truth-column", help="accuracy column (default: the space's main one)")
    parser.add_argument("--space", default="nb201", help="the runs' space")
    parser.add_argument("--scores", default=SCORES, help="scores compared, comma-separated")
    parser.add_argument("--sizes", default="25,50,100,200,400", help="subset sizes")
    parser.add_argument("--draws", type=int, default=2000, help="random subsets per size")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subsets")
    parser.add_argument("--show", default="", help="scores whose top cells are listed")
    parser.add_argument("--top", type=int, default=5, help="cells listed per --show score")
    parser.add_argument("--out", type=Path, required=True, help="folder of top1_curve.json, .md")


def pool_of(runs: list[Path], scores: list[str]) -> pd.DataFrame:
    """The distinct architectures of the runs that have every score, in the runs' order."""
    frames = []
    for run in runs:
        if not (run / "scores.csv").is_file():
            raise UserError(f"{run}: not a bench correlation output (no scores.csv)")
        frame = pd.read_csv(run / "scores.csv", index_col="arch_str")
        missing = [s for s in scores if s not in frame.columns]
        if missing:
            raise UserError(f"{run}/scores.csv: no score {', '.join(missing)}")
        frames.append(frame)
    pool = pd.concat(frames)
    return pool[~pool.index.duplicated()][scores].dropna()


def curve(
    values: dict[str, np.ndarray], acc: np.ndarray, sizes: list[int], draws: int, seed: int
) -> list[dict[str, Any]]:
    """Per subset size: each score's mean top-1 accuracy over the draws, and the subsets' best."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        picks = [rng.choice(len(acc), n, replace=False) for _ in range(draws)]
        row: dict[str, Any] = {"cells": n}
        for name, v in values.items():
            row[name] = float(np.mean([top1_accuracy(v[p], acc[p]) for p in picks]))
        row["best"] = float(np.mean([acc[p].max() for p in picks]))
        rows.append(row)
    whole = {name: top1_accuracy(v, acc) for name, v in values.items()}
    rows.append({"cells": len(acc), "all": True, **whole, "best": float(acc.max())})
    return rows


def shown(pool: pd.DataFrame, truth: pd.Series, name: str, top: int) -> list[str]:
    """A score's ``top`` highest cells, and its ranks of the ``top`` most accurate cells."""
    ranks = pool[name].rank(ascending=False, method="min")
    lines = [f"{name}: its {top} highest cells (score, accuracy)"]
    highest = pool[name].nlargest(top)
    for arch, score in zip(map(str, highest.index), highest.to_numpy(float), strict=True):
        lines.append(f"  {score:.6f}  {truth[arch]:.2f}  {arch}")
    lines.append(f"{name}: its rank of the {top} most accurate cells")
    for arch in truth.nlargest(top).index:
        lines.append(f"  rank {int(ranks[arch])}  {truth[arch]:.2f}  {arch}")
    return lines


def handler(args: argparse.Namespace) -> int:
    scores = [s.strip() for s in args.scores.split(",") if s.strip()]
    show = [s.strip() for s in args.show.split(",") if s.strip()]
    if unknown := [s for s in show if s not in scores]:
        raise UserError(f"--show {', '.join(unknown)}: not among --scores")
    pool = pool_of(args.runs, scores)
    accuracy, column = accuracy_by_arch(get_space(args.space), args.truth, args.truth_column)
    if missing := [a for a in pool.index if a not in accuracy.index]:
        raise UserError(f"--truth {args.truth}: {len(missing)} pooled cells are not in it")
    acc = accuracy.loc[pool.index].to_numpy()
    values = {name: pool[name].to_numpy(dtype=float) for name in scores}
    sizes = [int(s) for s in args.sizes.split(",") if 0 < int(s) < len(pool)]
    rows = curve(values, acc, sizes, args.draws, args.seed)
    table = markdown_table(
        ["cells scored", *scores, "best cell of the subset"],
        [
            [f"{r['cells']} (all)" if r.get("all") else r["cells"],
             *(f"{r[s]:.2f}" for s in scores), f"{r['best']:.2f}"]
            for r in rows
        ],
    )  # fmt: skip
    lines = [f"{len(pool)} distinct cells with every score; true {column} of the top-1 (%)", ""]
    lines += [table, "", "top-1 of the whole pool by each score:"]
    for name in scores:
        best = pool.index[tied_best(values[name])]
        lines.append(f"  {name}: {', '.join(best[:3])}{' ...' if len(best) > 3 else ''}")
    truth = pd.Series(acc, index=pool.index)
    for name in show:
        lines += ["", *shown(pool, truth, name, args.top)]
    record = {"pool": len(pool), "column": column, "draws": args.draws, "seed": args.seed,
              "rows": rows}  # fmt: skip
    write_outputs(args.out, "top1_curve", record, "\n".join(lines))
    return 0


ENTRY = (HELP, add_arguments, handler)
