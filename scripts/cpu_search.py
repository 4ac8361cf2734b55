"""Run ``studies/nb201_cpu_search.yaml`` for several sampler seeds and objectives, and report the
true CIFAR-10 accuracy (200 epochs) of each study's top-1 cell by its objective.

Objectives compared on the same sampler, budget and data:
  ensemble    the study file as it is;
  mote        --set objectives=[mote, flops, params] (MOTE at lite);
  live_flops  the same sampler ranking by the live FLOPs (a score table built here, no training).

    python scripts/cpu_search.py --data PATH/cifar100_rd10_train.npz \
        --truth PATH/nb201_ground_truth.csv --seeds 1,2,3,4,5 --out bench-out/cpu_search

With ``--workers 2`` each study runs two worker processes (one per core) on a journal file.
The ground truth is read only after a study has finished, to look its top-1 cell up.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd

from mote_optuna.spaces.nb201 import NB201Space
from mote_optuna.storage.factory import make_storage

STUDY = Path(__file__).resolve().parents[1] / "studies" / "nb201_cpu_search.yaml"
TRUTH = "cifar10_test_acc_200ep"


def live_flops_table(path: Path) -> None:
    """Every NB201 cell's live FLOPs: the cost with the dead edges (``live_arch``) removed."""
    space = NB201Space()
    rows = [
        {"arch_str": space.to_str(a), "live_flops": space.analytic_cost(space.live_arch(a)).flops}
        for a in space.all_archs()
    ]
    pd.DataFrame(rows).to_csv(path, index=False)


def storage_url(out: Path, name: str, workers: int) -> str:
    """SQLite for one process; a journal file when several workers share the study."""
    return f"sqlite:///{out / name}.db" if workers == 1 else f"journal:{out / name}.log"


def overrides(objective: str, out: Path, data: Path, seed: int, workers: int) -> list[str]:
    name = f"cpu_search_{objective}_s{seed}"
    sets = [
        f"name={name}",
        f"storage={storage_url(out, name, workers)}",
        f"sampler.seed={seed}",
        f"dataset.path={data}",
    ]
    if objective == "mote":
        sets.append("objectives=[mote,flops,params]")
    elif objective == "live_flops":
        sets += [
            "objectives=[mote,flops,params]",
            "estimator.kind=table",
            f"estimator.table={out / 'nb201_live_flops.csv'}",
            "estimator.table_columns={mote: live_flops}",
        ]
    return [arg for s in sets for arg in ("--set", s)]


def top1(storage: str, name: str) -> tuple[str, float, int]:
    study = optuna.load_study(study_name=name, storage=make_storage(storage))
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    best = max(done, key=lambda t: (t.values[0], -t.number))
    return best.user_attrs["arch"], best.values[0], len({t.user_attrs["arch_key"] for t in done})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--truth", type=Path, required=True)
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--objectives", default="ensemble,mote,live_flops")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes per study (>1: journal storage)"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not (args.out / "nb201_live_flops.csv").exists():
        live_flops_table(args.out / "nb201_live_flops.csv")
    results_path = args.out / "runs.jsonl"
    for objective in args.objectives.split(","):
        for seed in map(int, args.seeds.split(",")):
            cmd = [sys.executable, "-m", "mote_optuna", "run", str(STUDY)]
            cmd += ["--workers", str(args.workers)]
            cmd += overrides(
                objective, args.out.resolve(), args.data.resolve(), seed, args.workers
            )
            start = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            seconds = time.perf_counter() - start
            name = f"cpu_search_{objective}_s{seed}"
            url = storage_url(args.out.resolve(), name, args.workers)
            arch, value, distinct = top1(url, name)
            truth = pd.read_csv(args.truth).set_index("arch_str")[TRUTH]
            record = {
                "objective": objective,
                "seed": seed,
                "workers": args.workers,
                "seconds": round(seconds, 1),
                "distinct_cells": distinct,
                "top1": arch,
                "top1_value": value,
                "top1_cifar10_test_acc": float(truth[arch]),
            }
            print(json.dumps(record), flush=True)
            with results_path.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
    runs = pd.read_json(results_path, lines=True)
    summary = runs.groupby("objective").agg(
        mean_top1_acc=("top1_cifar10_test_acc", "mean"),
        seeds=("seed", "count"),
        median_seconds=("seconds", "median"),
        max_seconds=("seconds", "max"),
    )
    print(summary.to_string())


if __name__ == "__main__":
    main()
