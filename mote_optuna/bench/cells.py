"""``bench largest-cells``: the architectures with the largest live FLOPs, one arch string per
line, for ``bench correlation --cells`` (the region a search for accurate cells spends its trials
in); and ``live_flops``, the live FLOPs of a space's architectures (``bench study-search``'s
``live_flops`` objective).

The K largest, plus every architecture tied with the K-th (FLOPs come in few distinct values,
compared at 0.001 M), so the list does not depend on an order among equals: largest first, equal
FLOPs by arch string. No label is read. ``DIR/largest_cells.txt`` is the list;
``DIR/largest_cells.{json,md}`` record the cut and the run's manifest.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from mote_optuna.bench.output import write_outputs
from mote_optuna.errors import UserError
from mote_optuna.spaces import SearchSpace, get_space

HELP = "the architectures with the largest live FLOPs, for bench correlation --cells"


def live_flops(space: SearchSpace, archs: list[str]) -> np.ndarray:
    """MMACs of each architecture with its dead edges removed (the space's ``live_arch``)."""
    live_arch = getattr(space, "live_arch", None)
    cost = getattr(space, "analytic_cost", None)
    if live_arch is None or cost is None:
        raise UserError(f"live FLOPs: space {space.name} has no live_arch and analytic_cost")
    return np.array([cost(live_arch(space.from_str(a))).flops for a in archs], dtype=float)


def largest(space: SearchSpace, k: int) -> tuple[pd.DataFrame, float]:
    """The space's architectures with live FLOPs at or above the K-th largest, and that cut."""
    all_archs = getattr(space, "all_archs", None)
    if all_archs is None:
        raise UserError(f"bench largest-cells: space {space.name} cannot list its architectures")
    archs = [space.to_str(a) for a in all_archs()]
    if not 1 <= k <= len(archs):
        raise UserError(f"--k {k}: between 1 and the space's {len(archs)} architectures")
    cells = pd.DataFrame({"arch_str": archs, "live_flops": live_flops(space, archs)})
    flops = cells.live_flops.round(3)
    cut = float(flops.sort_values(ascending=False).iloc[k - 1])
    chosen = cells[flops >= cut].sort_values(["live_flops", "arch_str"], ascending=[False, True])
    return chosen.reset_index(drop=True), cut


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--k", type=int, default=200, help="how many (more with ties at the K-th)")
    parser.add_argument("--space", default="nb201", help="a space with live_arch (nb201)")
    parser.add_argument("--out", type=Path, required=True, help="folder of largest_cells.txt")


def handler(args: argparse.Namespace) -> int:
    chosen, cut = largest(get_space(args.space), args.k)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "largest_cells.txt").write_text("\n".join(chosen.arch_str) + "\n")
    text = (
        f"{len(chosen)} architectures with live FLOPs >= {cut} M (--k {args.k}) in "
        f"{args.out / 'largest_cells.txt'}"
    )
    record = {"space": args.space, "k": args.k, "cut_mflops": cut, "cells": list(chosen.arch_str)}
    write_outputs(args.out, "largest_cells", record, text)
    return 0


ENTRY = (HELP, add_arguments, handler)
