"""``bench compare DIR...``: ``bench correlation`` runs of the same architectures under other
settings (a budget, a width, a resolution), side by side.

Each run is labelled by the settings in which it differs from the first. Per score: Kendall τ
against the main target and its 95 % bootstrap interval over the architectures (how much of a
difference the sample size alone makes), and the median seconds per architecture. The runs must
have scored the same architectures (their ``scores.csv``). ``DIR/compare.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mote_optuna.bench.output import markdown_table, write_outputs
from mote_optuna.errors import UserError
from mote_optuna.spaces import get_space
from mote_optuna.spaces.base import truth_of

HELP = "bench correlation runs of the same architectures under other settings, side by side"
BOOTSTRAP = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, help="bench correlation --out folders")
    parser.add_argument("--truth", type=Path, required=True, help="the space's benchmark CSV")
    parser.add_argument("--scores", default="mote,landscape,speed,params", help="scores compared")
    parser.add_argument("--out", type=Path, required=True, help="folder of compare.json, .md")


def bootstrap_tau(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95 % interval of Kendall τ over architectures resampled with replacement."""
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(BOOTSTRAP):
        i = rng.integers(len(x), size=len(x))
        taus.append(stats.kendalltau(x[i], y[i]).statistic)
    low, high = np.nanpercentile(taus, [2.5, 97.5])
    return float(low), float(high)


def _label(settings: dict[str, Any], first: dict[str, Any]) -> str:
    changed = [f"{k} {v}" for k, v in settings.items() if first.get(k) != v]
    return ", ".join(changed) or "as the first run"


def handler(args: argparse.Namespace) -> int:
    runs = []
    for path in args.runs:
        if not (path / "correlation.json").is_file() or not (path / "scores.csv").is_file():
            raise UserError(
                f"{path}: not a bench correlation output (correlation.json, scores.csv)"
            )
        runs.append((json.loads((path / "correlation.json").read_text()),
                     pd.read_csv(path / "scores.csv")))  # fmt: skip
    cells = list(runs[0][1].arch_str)
    for path, (_, frame) in zip(args.runs, runs, strict=True):
        if list(frame.arch_str) != cells:
            raise UserError(f"{path}: scored other architectures than {args.runs[0]}")
    names = [s.strip() for s in args.scores.split(",") if s.strip()]
    space = get_space(runs[0][0]["space"])
    column = next(iter(runs[0][0]["targets"].values()))
    table = truth_of(space).read_truth(args.truth).set_index("arch_str")[column]
    missing = [a for a in cells if a not in table.index]
    if missing:
        raise UserError(f"--truth {args.truth}: {len(missing)} scored architectures are not in it")
    truth = table.loc[cells].to_numpy(dtype=float)
    rows = []
    for path, (record, frame) in zip(args.runs, runs, strict=True):
        row: dict[str, Any] = {
            "run": str(path), "label": _label(record["settings"], runs[0][0]["settings"]),
            "n": len(frame), "seconds_median": record["seconds_per_arch"]["median"],
        }  # fmt: skip
        for name in names:
            if name not in frame:
                raise UserError(f"{path}: no score {name!r} in scores.csv")
            x = frame[name].to_numpy(dtype=float)
            row[name] = {
                "kendall_tau": float(stats.kendalltau(x, truth).statistic),
                "interval": bootstrap_tau(x, truth),
            }
        rows.append(row)
    header = ["run", "n", "s per arch", *(f"{n} τ [95 %]" for n in names)]
    text = markdown_table(header, [
        [r["label"], r["n"], f"{r['seconds_median']:.1f}",
         *(f"{r[n]['kendall_tau']:.3f} [{r[n]['interval'][0]:.2f}, {r[n]['interval'][1]:.2f}]"
           for n in names)]
        for r in rows
    ])  # fmt: skip
    write_outputs(args.out, "compare", {"rows": rows}, text)
    return 0


ENTRY = (HELP, add_arguments, handler)
