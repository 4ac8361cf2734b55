"""Search quality of the samplers on tabulated scores: ``python -m mote_optuna bench search``.

Every run is a real study: ``study.open_study`` on in-memory storage, the sampler from
``samplers.make_sampler`` and ``objective.Objective`` with a ``TableEstimator`` over the score
table (FLOPs and params from the ground truth). A run stops after ``max(budgets)`` distinct MOTE
evaluations (trials that were not answered from the study's cache of equivalent cells), or after
``--trial-cap`` x that many trials. No sampler here is told the budget (the MOTE-NAS schedule is
fixed per generation), so the 50- and 100-evaluation results are read as prefixes of the same
run: the pool after the first N distinct evaluations.

Per run and budget N:

- top-1: the 200-epoch test accuracy on each dataset of the pool's highest-MOTE cell
  (evaluation-free, "EF"); an exact tie is averaged over the tied cells (bench/top1.py's rule);
- top-k: the pool's k highest-MOTE cells re-ranked by their recorded 12-epoch test accuracy
  (MOTE_SPEC §7.1), per dataset; cost = MOTE seconds (the released ``proxy_train_time_s`` of the
  N evaluated cells) + the 12-epoch training seconds of the k cells. NB201's per-cell 12-epoch
  train time is not in the ground truth: it is modelled as FLOPs-proportional, scaled so that
  the mean over the space is NB201's mean ``train_time_12`` (MOTE_SPEC §8.4);
- hv_fraction: the pool's Pareto front by (MOTE max, FLOPs min), scored by (true CIFAR-10
  accuracy, FLOPs) with the reference point (85 %, 1.01 x the largest FLOPs), as a fraction of the
  true front over all cells (Optuna's hypervolume).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from mote_optuna.bench.manifest import MANIFEST_KEY, manifest
from mote_optuna.bench.top1 import top1_accuracy
from mote_optuna.compat import hypervolume as hypervolume_of
from mote_optuna.compat import is_pareto_front
from mote_optuna.config import config_from_dict
from mote_optuna.errors import UserError
from mote_optuna.estimators.table import TableEstimator
from mote_optuna.keys import ARCH_ATTR, CACHED_FROM_ATTR
from mote_optuna.objective import Objective
from mote_optuna.sampler_names import SAMPLER_NAMES
from mote_optuna.samplers import make_sampler
from mote_optuna.spaces import get_space
from mote_optuna.study import open_study, study_metadata
from mote_optuna.truth import ARCH_COLUMN, read_table

DATASETS = ("cifar10", "cifar100", "imagenet16")
SAMPLERS = SAMPLER_NAMES  # every registered sampler (samplers.py), in the registry's order
# Variants of the MOTE-NAS sampler: the released code's parent rule (top 1 %, up to 2 edges
# changed) and parents taken from the Pareto front instead of the top of MOTE.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "motenas-code": ("motenas", {"parent_fraction": 0.01, "max_changes": 2}),
    "motenas-front": ("motenas", {"parents": "front"}),
    "motenas-rank": ("motenas", {"parent_order": "rank"}),
}
# Mean NB201 ``train_time_12`` over the space, seconds (MOTE_SPEC §8.4, from the NB201 tables).
MEAN_TRAIN_12_S = {"cifar10": 219.4, "cifar100": 219.4, "imagenet16": 665.5}
HV_REF_ACC = 85.0
HV_REF_FLOPS_FACTOR = 1.01
CHECKPOINT_STEP = 10  # evaluations between points of the HV-vs-evaluations plot
# The size tie-break (docs/HISTORY.md): among the TIEBREAK_TOP highest-MOTE cells of the pool,
# pick the one with the most FLOPs (earliest evaluated on equal FLOPs). Chosen on seeds 0-19,
# validated on seeds 100-119.
TIEBREAK_TOP = 5


@dataclass
class Tables:
    """Ground truth joined with the scores, one row per cell with a score."""

    cells: pd.DataFrame  # index arch_str
    truth: pd.DataFrame  # all cells of the space, index arch_str
    scores_path: str


def load_tables(truth_path: Path, scores_path: Path) -> Tables:
    for path in (truth_path, scores_path):
        if not path.is_file():
            raise UserError(f"bench search: file {path} not found")
    truth = read_table(get_space("nb201"), truth_path).set_index(ARCH_COLUMN)
    needed = [f"{d}_test_acc_200ep" for d in DATASETS] + [f"{d}_test_acc_12ep" for d in DATASETS]
    needed += [f"flops_M_{d}" for d in DATASETS] + ["params_M_cifar10"]
    missing = [c for c in needed if c not in truth.columns]
    if missing:
        raise UserError(f"bench search: {truth_path} lacks columns {', '.join(missing)}")
    scores = pd.read_csv(scores_path, usecols=lambda c: not c.endswith("_losses"))
    if "arch_str" not in scores.columns or "mote" not in scores.columns:
        raise UserError(f"bench search: {scores_path} needs columns arch_str and mote")
    scores = scores.set_index("arch_str").drop(columns=["nb201_index"], errors="ignore")
    cells = truth[needed].join(scores, how="inner")
    if "proxy_train_time_s" not in cells.columns:
        cells["proxy_train_time_s"] = math.nan
    for d in DATASETS:
        mean_flops = truth[f"flops_M_{d}"].mean()
        cells[f"train12_s_{d}"] = MEAN_TRAIN_12_S[d] * cells[f"flops_M_{d}"] / mean_flops
    return Tables(cells=cells, truth=truth, scores_path=str(scores_path))


# ------------------------------------------------------------------------------------------------
# one seeded study


def run_one(
    sampler: str, seed: int, max_evals: int, trial_cap: int, objectives: Sequence[str],
    tables: Tables,
) -> dict[str, Any]:  # fmt: skip
    """One study; returns the distinct evaluated cells in order, trials used and seconds."""
    name, options = VARIANTS.get(sampler, (sampler, {}))
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    config = config_from_dict(
        {
            "name": f"bench-{sampler}-{seed}",
            "space": "nb201",
            "sampler": {"name": name, "seed": seed, "options": options},
            "n_trials": max_evals,
            "objectives": list(objectives),
            "estimator": {"kind": "table", "table": tables.scores_path, "table_missing": "skip"},
            "artifacts": "off",  # in-memory studies: no pictures for the dashboard
        },
        "<bench search>",
    )
    space = get_space("nb201")
    frame = tables.cells.reset_index()
    estimator = TableEstimator(
        frame,
        space=space,
        columns={"flops": "flops_M_cifar10", "params": "params_M_cifar10"},
        missing="skip",
        name=Path(tables.scores_path).name,
    )
    study = open_study(
        config,
        storage=optuna.storages.InMemoryStorage(),
        sampler=make_sampler(config.sampler, where="bench search"),
        metadata=study_metadata(config, space, estimator.describe()),
    )
    evaluated: list[str] = []

    def stop(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        done = trial.state == optuna.trial.TrialState.COMPLETE
        if done and CACHED_FROM_ATTR not in trial.user_attrs:
            evaluated.append(trial.user_attrs[ARCH_ATTR])
        if len(evaluated) >= max_evals or trial.number + 1 >= trial_cap:
            study.stop()

    start = time.process_time()
    study.optimize(Objective(config, space, estimator), callbacks=[stop])
    return {
        "sampler": sampler,
        "seed": seed,
        "cells": evaluated,
        "trials": len(study.trials),
        "cpu_s": round(time.process_time() - start, 2),
    }


# ------------------------------------------------------------------------------------------------
# metrics


def hypervolume(acc: np.ndarray, flops: np.ndarray, ref_flops: float) -> float:
    """HV of points (maximise accuracy, minimise FLOPs) above (HV_REF_ACC, ref_flops)."""
    keep = (acc > HV_REF_ACC) & (flops < ref_flops)
    if not keep.any():
        return 0.0
    points = np.stack([-acc[keep], flops[keep]], axis=1)
    return hypervolume_of(points, np.array([-HV_REF_ACC, ref_flops]))


def mote_front(mote: np.ndarray, flops: np.ndarray) -> np.ndarray:
    """Indices of the Pareto front by (MOTE max, FLOPs min)."""
    return np.flatnonzero(is_pareto_front(np.stack([-mote, flops], axis=1)))


@dataclass
class Reference:
    ref_flops: float
    true_hv: float
    ceiling_hv: float


def reference(tables: Tables) -> Reference:
    truth, cells = tables.truth, tables.cells
    ref_flops = HV_REF_FLOPS_FACTOR * float(truth["flops_M_cifar10"].max())
    true_hv = hypervolume(
        truth["cifar10_test_acc_200ep"].to_numpy(), truth["flops_M_cifar10"].to_numpy(), ref_flops
    )
    front = cells.iloc[mote_front(cells["mote"].to_numpy(), cells["flops_M_cifar10"].to_numpy())]
    ceiling = hypervolume(
        front["cifar10_test_acc_200ep"].to_numpy(), front["flops_M_cifar10"].to_numpy(), ref_flops
    )
    return Reference(ref_flops=ref_flops, true_hv=true_hv, ceiling_hv=ceiling)


def pool_metrics(
    pool: pd.DataFrame, ks: Sequence[int], ref: Reference
) -> dict[str, Any]:  # fmt: skip
    """Metrics of one pool (rows in evaluation order)."""
    order = np.argsort(-pool["mote"].to_numpy(), kind="stable")
    ranked = pool.iloc[order]
    head = ranked.iloc[:TIEBREAK_TOP]
    size_pick = head.iloc[int(np.argmax(head["flops_M_cifar10"].to_numpy()))]
    mote = pool["mote"].to_numpy()
    out: dict[str, Any] = {
        "top1": {d: top1_accuracy(mote, pool[f"{d}_test_acc_200ep"].to_numpy()) for d in DATASETS},
        "top1_arch": str(ranked.index[0]),
        "top1_tiebreak": {d: float(size_pick[f"{d}_test_acc_200ep"]) for d in DATASETS},
        "mote_seconds": float(pool["proxy_train_time_s"].sum()),
        "topk": {},
        "topk_cost_s": {},
    }
    for k in ks:
        head = ranked.iloc[:k]
        out["topk"][str(k)] = {}
        out["topk_cost_s"][str(k)] = {}
        for d in DATASETS:
            pick = head.iloc[int(np.argmax(head[f"{d}_test_acc_12ep"].to_numpy()))]
            out["topk"][str(k)][d] = float(pick[f"{d}_test_acc_200ep"])
            out["topk_cost_s"][str(k)][d] = out["mote_seconds"] + float(
                head[f"train12_s_{d}"].sum()
            )
    front = pool.iloc[mote_front(pool["mote"].to_numpy(), pool["flops_M_cifar10"].to_numpy())]
    hv = hypervolume(
        front["cifar10_test_acc_200ep"].to_numpy(),
        front["flops_M_cifar10"].to_numpy(),
        ref.ref_flops,
    )
    out["hv_fraction"] = hv / ref.true_hv
    out["hv_fraction_of_ceiling"] = hv / ref.ceiling_hv
    return out


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(
    runs: list[dict[str, Any]], tables: Tables, budgets: Sequence[int], ks: Sequence[int],
    ref: Reference,
) -> dict[str, Any]:  # fmt: skip
    """search.json: per sampler and budget, means and sds over the seeds."""
    result: dict[str, Any] = {}
    for run in runs:
        cells = tables.cells.loc[run["cells"]]
        run["metrics"] = {
            str(b): pool_metrics(cells.iloc[:b], ks, ref) for b in budgets if len(cells) >= 1
        }
        run["reached"] = {str(b): len(cells) >= b for b in budgets}
        checkpoints = range(CHECKPOINT_STEP, len(cells) + 1, CHECKPOINT_STEP)
        run["hv_curve"] = {
            str(n): pool_metrics(cells.iloc[:n], (), ref)["hv_fraction"] for n in checkpoints
        }
    for sampler in dict.fromkeys(r["sampler"] for r in runs):
        mine = [r for r in runs if r["sampler"] == sampler]
        result[sampler] = {}
        for b in budgets:
            ms = [r["metrics"][str(b)] for r in mine]
            entry: dict[str, Any] = {
                "seeds": len(ms),
                "reached": sum(r["reached"][str(b)] for r in mine),
                "top1_mean": {}, "top1_sd": {}, "topk_mean": {}, "topk_sd": {},
                "top1_tiebreak_mean": {}, "top1_tiebreak_sd": {},
                "topk_cost_s": {}, "ef_cost_s": _mean_sd([m["mote_seconds"] for m in ms])[0],
            }  # fmt: skip
            for d in DATASETS:
                entry["top1_mean"][d], entry["top1_sd"][d] = _mean_sd([m["top1"][d] for m in ms])
                entry["top1_tiebreak_mean"][d], entry["top1_tiebreak_sd"][d] = _mean_sd(
                    [m["top1_tiebreak"][d] for m in ms]
                )
            for k in ks:
                kk = str(k)
                entry["topk_mean"][kk], entry["topk_sd"][kk], entry["topk_cost_s"][kk] = {}, {}, {}
                for d in DATASETS:
                    mean, sd = _mean_sd([m["topk"][kk][d] for m in ms])
                    entry["topk_mean"][kk][d], entry["topk_sd"][kk][d] = mean, sd
                    entry["topk_cost_s"][kk][d] = statistics.fmean(
                        m["topk_cost_s"][kk][d] for m in ms
                    )
            entry["hv_fraction"], entry["hv_fraction_sd"] = _mean_sd(
                [m["hv_fraction"] for m in ms]
            )
            entry["hv_fraction_of_ceiling"] = statistics.fmean(
                m["hv_fraction_of_ceiling"] for m in ms
            )
            entry["trials_mean"] = statistics.fmean(r["trials"] for r in mine)
            entry["cpu_s_mean"] = statistics.fmean(r["cpu_s"] for r in mine)
            result[sampler][str(b)] = entry
        curve: dict[str, list[float]] = {}
        for r in mine:
            for n, v in r["hv_curve"].items():
                curve.setdefault(n, []).append(v)
        result[sampler]["hv_curve"] = {n: statistics.fmean(v) for n, v in curve.items()}
    return result


def ceilings(tables: Tables, ks: Sequence[int], ref: Reference) -> dict[str, Any]:
    """What the scores allow at all: the whole table as the pool (MOTE_SPEC §13)."""
    every = pool_metrics(tables.cells, ks, ref)
    return {
        "top1": every["top1"],
        "top1_arch": every["top1_arch"],
        "top1_tiebreak": every["top1_tiebreak"],
        "topk": every["topk"],
        "hv_fraction": ref.ceiling_hv / ref.true_hv,
        "true_front_hv": ref.true_hv,
        "reference_point": [HV_REF_ACC, ref.ref_flops],
        "best": {d: float(tables.truth[f"{d}_test_acc_200ep"].max()) for d in DATASETS},
    }


# ------------------------------------------------------------------------------------------------
# output


def markdown(result: dict[str, Any], ceiling: dict[str, Any], ks: Sequence[int]) -> str:
    lines = []
    for d in DATASETS:
        lines.append(f"\n### {d} (200-epoch test accuracy %, mean ± sd over seeds)\n")
        head = "| sampler | evals | EF top-1 | EF top-1, size tie-break | "
        head += " | ".join(f"k={k} re-rank" for k in ks)
        head += " | EF cost s | " + " | ".join(f"k={k} cost s" for k in ks) + " |"
        lines += [head, "|" + "---|" * (5 + 2 * len(ks))]
        for sampler, by_budget in result.items():
            for b, e in by_budget.items():
                if b == "hv_curve":
                    continue
                cells = [
                    sampler, b, f"{e['top1_mean'][d]:.2f} ± {e['top1_sd'][d]:.2f}",
                    f"{e['top1_tiebreak_mean'][d]:.2f} ± {e['top1_tiebreak_sd'][d]:.2f}",
                    *(f"{e['topk_mean'][str(k)][d]:.2f} ± {e['topk_sd'][str(k)][d]:.2f}"
                      for k in ks),
                    f"{e['ef_cost_s']:.0f}",
                    *(f"{e['topk_cost_s'][str(k)][d]:.0f}" for k in ks),
                ]  # fmt: skip
                lines.append("| " + " | ".join(cells) + " |")
        cells = [
            "ceiling: all cells", "15,614", f"{ceiling['top1'][d]:.2f}",
            f"{ceiling['top1_tiebreak'][d]:.2f}",
            *(f"{ceiling['topk'][str(k)][d]:.2f}" for k in ks), "", *([""] * len(ks)),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("\n### Hypervolume fraction (CIFAR-10 acc vs FLOPs, ref (85 %, 1.01 x max))\n")
    lines += [
        "| sampler | evals | HV / true front | HV / ceiling | trials used | runs reaching N |",
        "|---|---|---|---|---|---|",
    ]
    for sampler, by_budget in result.items():
        for b, e in by_budget.items():
            if b == "hv_curve":
                continue
            lines.append(
                f"| {sampler} | {b} | {e['hv_fraction']:.3f} ± {e['hv_fraction_sd']:.3f} | "
                f"{e['hv_fraction_of_ceiling']:.3f} | {e['trials_mean']:.0f} | "
                f"{e['reached']}/{e['seeds']} |"
            )
    lines.append(
        f"| ceiling: MOTE-vs-FLOPs front of all cells | | {ceiling['hv_fraction']:.3f} | 1.000 "
        "| | |"
    )
    return "\n".join(lines) + "\n"


def write_plot(result: dict[str, Any], path: Path) -> None:
    import plotly.graph_objects as go

    figure = go.Figure()
    for sampler, by_budget in result.items():
        curve = by_budget["hv_curve"]
        xs = sorted(int(n) for n in curve)
        figure.add_trace(
            go.Scatter(x=xs, y=[curve[str(n)] for n in xs], mode="lines+markers", name=sampler)
        )
    figure.update_layout(
        title="Hypervolume of the found front (fraction of the true front) vs MOTE evaluations",
        xaxis_title="distinct MOTE evaluations",
        yaxis_title="HV fraction (CIFAR-10 acc vs FLOPs)",
    )
    figure.write_html(path, include_plotlyjs=True)


# ------------------------------------------------------------------------------------------------
# CLI


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--truth", type=Path, required=True, help="nb201_ground_truth.csv")
    parser.add_argument("--scores", type=Path, required=True, help="score table (arch_str, mote)")
    parser.add_argument("--samplers", default=",".join(SAMPLERS), help="comma-separated names")
    parser.add_argument("--budgets", type=_ints, default=[50, 100, 200], help="e.g. 50,100,200")
    parser.add_argument("--seeds", type=int, default=20, help="seeded repeats per sampler")
    parser.add_argument("--seed-offset", type=int, default=0, help="first seed")
    parser.add_argument("--topk", type=_ints, default=[5, 10, 20], help="re-ranked top-k sizes")
    parser.add_argument("--objectives", default="mote,flops", help="the studies' objectives")
    parser.add_argument("--trial-cap", type=int, default=5, help="max trials = CAP x max budget")
    parser.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--from-runs",
        type=lambda t: [Path(p) for p in t.split(",")],
        help="summarise earlier runs (runs.json / runs.jsonl, comma-separated) instead of running",
    )


def handler(args: argparse.Namespace) -> int:
    samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    for s in samplers:
        if s not in SAMPLERS and s not in VARIANTS:
            allowed = ", ".join((*SAMPLERS, *VARIANTS))
            raise UserError(f"--samplers: unknown {s!r}; allowed: {allowed}")
    objectives = [o.strip() for o in args.objectives.split(",")]
    if objectives[0] != "mote" or any(o not in ("flops", "params") for o in objectives[1:]):
        raise UserError("--objectives: start with mote, then any of flops, params")
    tables = load_tables(args.truth, args.scores)
    ref = reference(tables)
    max_evals = max(args.budgets)
    seeds = range(args.seed_offset, args.seed_offset + args.seeds)
    jobs = [(s, seed) for s in samplers for seed in seeds]
    start = time.time()
    if args.from_runs:
        read = [r for path in args.from_runs for r in _read_runs(path)]
        read = [r for r in read if r["sampler"] in samplers and r["seed"] in seeds]
        return _write(args, read, tables, ref, objectives, list(seeds), start)
    runs: list[dict[str, Any]] = []
    common = (max_evals, args.trial_cap * max_evals, objectives, tables)
    args.out.mkdir(parents=True, exist_ok=True)
    partial = (args.out / "runs.jsonl").open("w")  # each run as it ends: survives a kill

    def done(run: dict[str, Any]) -> None:
        runs.append(run)
        partial.write(json.dumps(run) + "\n")
        partial.flush()
        _progress(run, len(runs), len(jobs))

    with partial:
        if args.jobs > 1:
            with ProcessPoolExecutor(args.jobs) as pool:
                for future in [pool.submit(run_one, s, seed, *common) for s, seed in jobs]:
                    done(future.result())
        else:
            for s, seed in jobs:
                done(run_one(s, seed, *common))
    return _write(args, runs, tables, ref, objectives, list(seeds), start)


def _read_runs(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return list(json.loads(text))


def _write(
    args: argparse.Namespace, runs: list[dict[str, Any]], tables: Tables, ref: Reference,
    objectives: list[str], seeds: list[int], start: float,
) -> int:  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    result = summarise(runs, tables, args.budgets, args.topk, ref)
    ceiling = ceilings(tables, args.topk, ref)
    recorded = {**result, MANIFEST_KEY: manifest(args.argv)}  # by sampler, and the run's manifest
    (args.out / "search.json").write_text(json.dumps(recorded, indent=1))
    meta = {
        "ceilings": ceiling,
        "objectives": objectives,
        "budgets": args.budgets,
        "seeds": seeds,
        "wall_s": round(time.time() - start, 1),
        "cpu_count": os.cpu_count(),
        "train12_model": f"FLOPs-proportional, mean over the space {MEAN_TRAIN_12_S}",
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=1))
    keep = ("sampler", "seed", "cells", "trials", "cpu_s")
    (args.out / "runs.json").write_text(json.dumps([{k: r[k] for k in keep} for r in runs]))
    table = markdown(result, ceiling, args.topk)
    (args.out / "search.md").write_text(table)
    write_plot(result, args.out / "hv_vs_evaluations.html")
    print(table)
    print(f"wrote {args.out}/search.json, search.md, meta.json, runs.json, hv_vs_evaluations.html")
    return 0


def _progress(run: dict[str, Any], done: int, total: int) -> None:
    print(
        f"[{done}/{total}] {run['sampler']} seed {run['seed']}: {len(run['cells'])} evaluations "
        f"in {run['trials']} trials, {run['cpu_s']:.1f} CPU s",
        flush=True,
    )


ENTRY = ("search quality of the samplers on a score table", add_arguments, handler)
