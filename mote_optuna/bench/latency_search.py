"""``bench latency-search STUDY --truth CSV``: a latency-constrained search on published device
latency (``latency: {runtime: published, ...}`` and ``constraints.max_latency_ms`` in the study
file), run for several sampler seeds, against the true front of the table.

For each seed the study runs as ``run`` would (a fresh SQLite file in ``--out``). Then, read
only after it finished: every COMPLETE trial's latency must be within the budget (it is the
published value itself on NB201), and its front in (true accuracy, latency) is compared with the
true front of every architecture of the table within the budget: hypervolume ratio, with the
reference point (the lowest true accuracy within the budget, the budget), and again with the
median accuracy within the budget as the reference (the front's upper half only, a harder
comparison: the lowest accuracies are untrainable cells that any front dominates).
``DIR/search.json`` holds each seed's row and the manifest.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import TrialState

from mote_optuna.bench.output import markdown_table, write_outputs
from mote_optuna.compat import hypervolume
from mote_optuna.config import load_config
from mote_optuna.errors import UserError
from mote_optuna.estimators.contract import resolve_device
from mote_optuna.keys import ARCH_ATTR, LATENCY_ATTR
from mote_optuna.latency.published import PublishedLatency
from mote_optuna.local_pool import resolve_local
from mote_optuna.spaces import get_space
from mote_optuna.study import run_study
from mote_optuna.truth import accuracy_by_arch

HELP = "latency-constrained searches on published device latency: budget kept, hypervolume ratio"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", type=Path, help="a study file with latency runtime: published")
    parser.add_argument("--truth", type=Path, required=True, help="the space's accuracy table")
    parser.add_argument("--seeds", default="1,2,3", help="sampler seeds")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="study overrides, as run"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder of studies, search.json")


def front_hypervolume(
    accuracy: np.ndarray, latency: np.ndarray, reference: tuple[float, float]
) -> float:
    """Hypervolume of (accuracy up, latency down) points up to ``reference`` (acc, ms)."""
    keep = (accuracy > reference[0]) & (latency < reference[1])
    if not keep.any():
        return 0.0
    points = np.column_stack([-accuracy[keep], latency[keep]])
    return hypervolume(points, np.array([-reference[0], reference[1]]))


def handler(args: argparse.Namespace) -> int:
    base = load_config(args.study, args.overrides)
    lat, budget = base.latency, base.constraints.max_latency_ms
    if lat is None or lat.runtime != "published" or budget is None:
        raise UserError(
            f"{args.study}: needs latency: {{runtime: published, device, file}} and "
            "constraints.max_latency_ms"
        )
    assert lat.file is not None and lat.device is not None
    space = get_space(base.space)
    accuracy, column = accuracy_by_arch(space, args.truth)
    published = PublishedLatency(space, lat.file, lat.device)
    table_latency = np.array([published(space.from_str(a)) for a in accuracy.index])
    within = table_latency <= budget
    table_acc = accuracy.to_numpy(dtype=float)
    references = {
        "lowest": (float(table_acc[within].min()), float(budget)),
        "median": (float(np.median(table_acc[within])), float(budget)),
    }
    true_hv = {
        name: front_hypervolume(table_acc[within], table_latency[within], ref)
        for name, ref in references.items()
    }
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        name = f"{base.name}_s{seed}"
        sets = [f"name={name}", f"storage=sqlite:///{args.out / name}.db", f"sampler.seed={seed}"]
        config = load_config(args.study, [*args.overrides, *sets, 'artifacts="off"'])
        local = resolve_local(config.workers.local, resolve_device(config.device))
        study = run_study(config, local=local, out=print)
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        archs = [t.user_attrs[ARCH_ATTR] for t in done]
        lat_ms = np.array([t.user_attrs[LATENCY_ATTR] for t in done])
        acc = np.array([accuracy[a] for a in archs])
        ratio = {
            name: front_hypervolume(acc, lat_ms, ref) / true_hv[name]
            for name, ref in references.items()
        }
        rows.append({
            "seed": seed, "complete": len(done), "max_latency_ms": float(lat_ms.max()),
            "within_budget": bool((lat_ms <= budget).all()),
            "hypervolume_ratio": ratio["lowest"], "hypervolume_ratio_median_ref": ratio["median"],
            "best_accuracy": float(acc.max()),
        })  # fmt: skip
        print(f"seed {seed}: {len(done)} complete, max latency {lat_ms.max():.2f} ms "
              f"(budget {budget}), hypervolume ratio {ratio['lowest']:.3f} "
              f"({ratio['median']:.3f} from the median)", flush=True)  # fmt: skip
    record: dict[str, Any] = {
        "device": lat.device, "budget_ms": budget, "truth_column": column,
        "true_front_hypervolume": true_hv, "references": references, "runs": rows,
        "mean_hypervolume_ratio": float(np.mean([r["hypervolume_ratio"] for r in rows])),
        "mean_hypervolume_ratio_median_ref": float(
            np.mean([r["hypervolume_ratio_median_ref"] for r in rows])
        ),
        "best_in_budget_accuracy": float(table_acc[within].max()),
    }  # fmt: skip
    write_outputs(args.out, "search", record, markdown(record))
    print(
        f"mean hypervolume ratio {record['mean_hypervolume_ratio']:.3f} "
        f"({record['mean_hypervolume_ratio_median_ref']:.3f} from the median) over "
        f"{len(rows)} seeds"
    )
    return 0


def markdown(record: dict[str, Any]) -> str:
    header = ["seed", "complete", "max latency (ms)", "within budget",
              "HV ratio (reference: lowest accuracy)", "HV ratio (reference: median accuracy)",
              "best true accuracy"]  # fmt: skip
    lines = [markdown_table(header, [
        [r["seed"], r["complete"], f"{r['max_latency_ms']:.2f}",
         "yes" if r["within_budget"] else "NO", f"{r['hypervolume_ratio']:.3f}",
         f"{r['hypervolume_ratio_median_ref']:.3f}", f"{r['best_accuracy']:.2f}"]
        for r in record["runs"]
    ])]  # fmt: skip
    lines.append(
        f"\nMean {record['mean_hypervolume_ratio']:.3f} "
        f"({record['mean_hypervolume_ratio_median_ref']:.3f} from the median); the best "
        f"architecture within {record['budget_ms']:g} ms reaches "
        f"{record['best_in_budget_accuracy']:.2f}."
    )
    return "\n".join(lines)


ENTRY = (HELP, add_arguments, handler)
