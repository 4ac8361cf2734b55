"""``bench zero-cost``: AZ-NAS as published, per term and aggregated, against benchmark accuracy.

Samples N distinct cells of the truth table (seeded, the same sample as ``bench correlation``)
or takes those listed in ``--cells``, computes AZ-NAS's four terms of each full network on
Gaussian noise (``zero_cost.published_az_nas``; no image and no training), and reports Kendall τ
and Spearman ρ of each term and of the authors' rank aggregate against the 200-epoch test
accuracy of each target, the way the authors' notebook measures them: on ranks, with a -inf term
ranked last (not dropped). Each target has its own input: NB201's ImageNet16-120 networks read
16 x 16 images and have 120 classes. Every cell is appended to ``DIR/cells.jsonl`` as soon as it
is scored, so an interrupted run resumes where it stopped; ``DIR/zero_cost.json`` and
``DIR/scores.csv`` hold the result, ``DIR/zero_cost.md`` its table (``render``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats
from tqdm import tqdm

from mote_optuna.bench.correlation import listed_cells, sample_cells
from mote_optuna.bench.correlation.cells import append_record, load_cache
from mote_optuna.bench.manifest import MANIFEST_KEY, manifest
from mote_optuna.bench.output import markdown_table
from mote_optuna.cost import measure
from mote_optuna.errors import UserError
from mote_optuna.estimators.az_nas import rank_aggregate
from mote_optuna.estimators.contract import resolve_device
from mote_optuna.estimators.zero_cost import published_az_nas
from mote_optuna.spaces import get_space
from mote_optuna.spaces.base import truth_of
from mote_optuna.spaces.nb201 import NB201Space

HELP = "Kendall τ / Spearman ρ of AZ-NAS (published recipe) vs NAS-Bench-201 accuracy"
TERMS = ("az_expressivity", "az_progressivity", "az_trainability", "az_complexity")
# AZ-NAS's published numbers are NAS-Bench-201's: its networks per target (resolution, classes)
SPACE = "nb201"
INPUTS = {"cifar10": (32, 10), "cifar100": (32, 100), "imagenet16": (16, 120)}
TARGETS = NB201Space.truth_targets
VERSION = 2  # bump when a term changes: the cache is then refused (2: eigenvalues clamped at 0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--truth", type=Path, required=True, help="NB201 ground-truth CSV")
    parser.add_argument("--n", type=int, default=1000, help="number of distinct cells")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cell sample")
    parser.add_argument(
        "--cells", type=Path, help="score these cells instead: one arch string of --truth a line"
    )
    parser.add_argument(
        "--targets",
        nargs="+",
        choices=sorted(INPUTS),
        default=sorted(INPUTS),
        help="accuracies to rank against (imagenet16 scores a second, 16 x 16 network)",
    )
    parser.add_argument("--estimator-seed", type=int, default=0, help="init, noise and probes")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (and cache)")


def _cells(args: argparse.Namespace) -> pd.DataFrame:
    truth = truth_of(get_space(SPACE)).read_truth(args.truth)
    missing = [TARGETS[t] for t in args.targets if TARGETS[t] not in truth.columns]
    if missing:
        raise UserError(f"--truth {args.truth}: missing columns {missing}")
    if args.cells is None:
        return sample_cells(truth, args.n, args.seed)
    return listed_cells(truth, args.cells)


def score_cell(
    arch_str: str, targets: list[str], seed: int, device: torch.device
) -> dict[str, Any]:
    """The four terms of one cell for each target; targets with the same input resolution share
    the network pass (the classifier is not read) and differ only in complexity."""
    space = get_space(SPACE)
    arch = space.from_str(arch_str)
    start = time.perf_counter()
    record: dict[str, Any] = {"arch": arch_str}
    by_resolution: dict[int, dict[str, float]] = {}
    for target in targets:
        resolution, classes = INPUTS[target]
        if resolution not in by_resolution:
            by_resolution[resolution] = published_az_nas(
                space, arch, seed, resolution, device, num_classes=classes
            )
        net = space.build_full(arch, num_classes=classes)
        record[target] = by_resolution[resolution] | {
            "az_complexity": measure(net, resolution).flops
        }
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    record["seconds"] = time.perf_counter() - start
    return record


def score_all(args: argparse.Namespace, cells: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Every cell's record, from ``DIR/cells.jsonl`` or computed now (and appended there)."""
    args.out.mkdir(parents=True, exist_ok=True)
    cache_path = args.out / "cells.jsonl"
    header = {
        "version": VERSION,
        "estimator_seed": args.estimator_seed,
        "targets": sorted(args.targets),
        "device": str(args.device),
    }
    cache, _ = load_cache(cache_path, header)
    if not cache_path.exists() or cache_path.stat().st_size == 0:
        append_record(cache_path, {"header": header})
    device = resolve_device(args.device)
    todo = [a for a in cells.arch_str if a not in cache]
    for arch in tqdm(todo, desc="cells", initial=len(cells) - len(todo), total=len(cells)):
        record = score_cell(arch, args.targets, args.estimator_seed, device)
        append_record(cache_path, record)
        cache[arch] = record
    return cache


def ranked_correlation(score: np.ndarray, accuracy: np.ndarray) -> tuple[float, float]:
    """Kendall τ and Spearman ρ of the ranks (-inf ranks last), as the authors' notebook."""
    x, y = stats.rankdata(score), stats.rankdata(accuracy)
    return float(stats.kendalltau(x, y).statistic), float(stats.spearmanr(x, y).statistic)


def summarise(
    args: argparse.Namespace, cells: pd.DataFrame, cache: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """τ and ρ of each term and of the aggregate per target; each cell's scores (no label)."""
    records = [cache[a] for a in cells.arch_str]
    seconds = [r["seconds"] for r in records]
    result: dict[str, Any] = {
        "n": len(records),
        "seconds_per_cell": {"median": float(np.median(seconds)), "mean": float(np.mean(seconds))},
        "targets": {},
    }
    table: dict[str, np.ndarray] = {}
    for target in args.targets:
        accuracy = cells[TARGETS[target]].to_numpy(dtype=float)
        scores = {t: np.array([r[target][t] for r in records], dtype=float) for t in TERMS}
        scores["az_nas"] = rank_aggregate([scores[t] for t in TERMS])
        entry: dict[str, Any] = {}
        for name, values in scores.items():
            tau, rho = ranked_correlation(values, accuracy)
            entry[name] = {"kendall_tau": tau, "spearman_rho": rho}
            entry[name]["minus_inf"] = int(np.isneginf(values).sum())
            table[f"{target}/{name}"] = values
        result["targets"][target] = entry
    frame = pd.DataFrame(table, index=pd.Index(cells.arch_str, name="arch_str"))
    return result, frame


def render(result: dict[str, Any]) -> str:
    """``zero_cost.md`` from ``zero_cost.json`` (or the result before it is written): τ and ρ of
    every term and of the aggregate per target, and the seconds per cell."""
    targets = result["targets"]
    header = ["score"] + [f"{c} {t}" for t in targets for c in ("τ", "ρ")]
    keys = ("kendall_tau", "spearman_rho")
    rows = [
        [name] + [f"{e[name][key]:.3f}" for e in targets.values() for key in keys]
        for name in (*TERMS, "az_nas")
    ]
    sec = result["seconds_per_cell"]
    return (
        markdown_table(header, rows)
        + f"\n\n{result['n']} cells; seconds per cell (all targets): median "
        f"{sec['median']:.2f}, mean {sec['mean']:.2f}"
    )


def handler(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    cells = _cells(args)
    cache = score_all(args, cells)
    result, frame = summarise(args, cells, cache)
    result.update(
        {
            "args": {k: str(v) for k, v in vars(args).items() if k != "handler"},
            MANIFEST_KEY: manifest(args.argv),
        }
    )
    text = render(result)
    print(text)
    (args.out / "zero_cost.json").write_text(json.dumps(result, indent=1))
    (args.out / "zero_cost.md").write_text(text + "\n")
    frame.to_csv(args.out / "scores.csv")
    print(f"\nwrote {args.out / 'zero_cost.json'}, zero_cost.md, scores.csv")
    return 0


ENTRY = (HELP, add_arguments, handler)
