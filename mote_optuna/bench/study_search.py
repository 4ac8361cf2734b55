"""``bench study-search``: real searches with a study file, several sampler seeds and objectives,
and the true accuracy of each study's top-1 architecture by its objective.

Objectives compared on the same study file, sampler, budget and data:

- ``ensemble``: ``objectives: [ensemble, flops, params]``;
- ``mote``: ``objectives: [mote, flops, params]``;
- ``flops``: the same sampler ranking by the full network's FLOPs (larger first), from a score
  table built from the benchmark (``estimator.kind: table``; nothing is trained);
- ``live_flops`` (spaces with ``live_arch``, NB201): the same by the live FLOPs.

The top-1 is the best objective value, exact ties averaged over the tied architectures
(``bench/top1.py``: the expected accuracy of a random tie-break). ``--workers N`` runs each
study with N trials at once (``run --workers N``). The ground truth is read only after a
study has finished, to look its top-1 up, and the
summary sets each objective's mean beside the space's best and a random search's expected top-1
over as many distinct architectures (exact, from the benchmark's order statistics). Each finished
study is one line of ``DIR/runs.jsonl``; a rerun skips the finished ones; ``DIR/search.json``
holds the summary and the run's manifest, ``DIR/search.md`` its tables (``render``; ``bench
render DIR/search.json`` writes them from the JSON alone).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from math import comb
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from mote_optuna.bench.cells import live_flops
from mote_optuna.bench.manifest import MANIFEST_KEY, manifest
from mote_optuna.bench.top1 import Top1, study_top1
from mote_optuna.config import load_config
from mote_optuna.errors import UserError
from mote_optuna.local_pool import available_cores, thread_env
from mote_optuna.select import select_study
from mote_optuna.spaces import SearchSpace, get_space
from mote_optuna.spaces.base import truth_of
from mote_optuna.storage.factory import make_storage

HELP = "real searches of a study file over sampler seeds and objectives: true top-1 accuracy"
OBJECTIVES = ("ensemble", "mote", "flops", "live_flops")
TABLE_SCORES = {"flops", "live_flops"}  # objectives read from a score table, never trained


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", type=Path, help="the study file (its space, sampler, budget)")
    parser.add_argument("--truth", type=Path, required=True, help="the space's benchmark CSV")
    parser.add_argument("--seeds", default="1,2,3,4,5", help="sampler seeds")
    parser.add_argument("--objectives", default="ensemble,mote,flops", help=", ".join(OBJECTIVES))
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="study overrides, as run"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=available_cores(),
        help="studies run at once, one trial at a time in one thread each (default: one per core)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="trials at once in each study (run --workers)"
    )
    parser.add_argument(
        "--select-k",
        default="",
        help="after the searches, the top-k stage (select, table fidelity) with these K: 5,10,20",
    )
    parser.add_argument(
        "--select-columns",
        default="cifar10_valid_acc_12ep:cifar10_test_acc_200ep",
        help="VALID:TEST pairs, comma-separated: select on the validation column, report the "
        "pick's accuracy in the test column",
    )
    parser.add_argument(
        "--few-query", action="store_true", help="also the few-query mode (ensemble studies)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (studies, runs)")


def expected_random_top1(accuracies: np.ndarray, n: int) -> float:
    """E[max accuracy] of n distinct architectures drawn uniformly without replacement."""
    a = np.sort(np.asarray(accuracies, dtype=float))
    m = len(a)
    n = min(n, m)
    weights = np.array([comb(i, n - 1) for i in range(m)], dtype=float) / comb(m, n)
    return float(weights @ a)


def score_table(space: SearchSpace, truth: pd.DataFrame, objective: str, path: Path) -> None:
    """The score of every benchmark architecture for a table objective, as a CSV."""
    if objective == "flops":
        if "flops" not in truth:
            raise UserError("--objectives flops: the truth table has no FLOPs for this space")
        scores = truth.flops.to_numpy(dtype=float)
    else:
        scores = live_flops(space, list(truth.arch_str))
    pd.DataFrame({"arch_str": truth.arch_str, "mote": scores}).to_csv(path, index=False)


def _sets(objective: str, name: str, out: Path, seed: int) -> list[str]:
    sets = [f"name={name}", f"storage=sqlite:///{out / name}.db", f"sampler.seed={seed}"]
    if objective == "mote":
        sets.append("objectives=[mote,flops,params]")
    elif objective == "ensemble":
        sets.append("objectives=[ensemble,flops,params]")
    else:
        sets += [
            "objectives=[mote,flops,params]",
            "estimator.kind=table",
            f"estimator.table={out / f'{objective}_scores.csv'}",
        ]
    return sets


def _top1(url: str, name: str, objectives: list[str], accuracy: pd.Series) -> Top1:
    study = optuna.load_study(study_name=name, storage=make_storage(url))
    return study_top1(study, objectives, accuracy)


def _jobs(args: argparse.Namespace, done: set[tuple[str, int]]) -> Iterator[tuple[str, int]]:
    for objective in args.objectives.split(","):
        if objective not in OBJECTIVES:
            raise UserError(f"--objectives {objective}: expected one of {', '.join(OBJECTIVES)}")
        for seed in map(int, args.seeds.split(",")):
            if (objective, seed) not in done:
                yield objective, seed


def handler(args: argparse.Namespace) -> int:
    config = load_config(args.study, args.overrides)
    space = get_space(config.space)
    truth = truth_of(space).read_truth(args.truth)
    target = next(iter(truth_of(space).truth_targets.values()))
    accuracy = truth.set_index("arch_str")[target]
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs_path = out / "runs.jsonl"
    runs = (
        [json.loads(line) for line in runs_path.read_text().splitlines()]
        if runs_path.exists()
        else []
    )
    todo = list(_jobs(args, {(r["objective"], r["seed"]) for r in runs}))
    for objective in {o for o, _ in todo} & TABLE_SCORES:
        score_table(space, truth, objective, out / f"{objective}_scores.csv")
    running: list[tuple[str, int, str, subprocess.Popen[bytes], float]] = []
    env = {**os.environ, **thread_env(1)}  # one core per study (local_pool.py has the why)
    while todo or running:
        while todo and len(running) < args.jobs:
            objective, seed = todo.pop(0)
            name = f"{config.name}_{objective}_s{seed}"
            cmd = [sys.executable, "-m", "mote_optuna", "run", str(args.study)]
            for s in [
                f"workers.local={args.workers}",
                *args.overrides,
                *_sets(objective, name, out, seed),
            ]:
                cmd += ["--set", s]
            log = (out / f"{name}.log").open("wb")
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            running.append((objective, seed, name, proc, time.perf_counter()))
        time.sleep(1.0)
        for job in [j for j in running if j[3].poll() is not None]:
            running.remove(job)
            objective, seed, name, proc, start = job
            if proc.returncode != 0:
                raise UserError(
                    f"study {name} failed (exit {proc.returncode}); see {out / name}.log"
                )
            score = "ensemble" if objective == "ensemble" else "mote"  # the study's first
            top1 = _top1(f"sqlite:///{out / name}.db", name, [score, "flops", "params"], accuracy)
            record = {
                "objective": objective,
                "seed": seed,
                "workers": args.workers,
                "seconds": round(time.perf_counter() - start, 1),
                "distinct": top1.distinct,
                "top1": top1.arch,
                "top1_value": top1.value,
                "top1_tied": top1.tied,
                "top1_accuracy": top1.accuracy,
            }
            print(json.dumps(record), flush=True)
            with runs_path.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            runs.append(record)
    summary = {**summarise(runs, accuracy), "target": target}
    if args.select_k:
        summary["select"] = select_all(args, runs, truth, out)
    text = render(summary)
    print(text)
    (out / "search.json").write_text(
        json.dumps({**summary, MANIFEST_KEY: manifest(args.argv)}, indent=1)
    )
    (out / "search.md").write_text(text + "\n")
    print(f"wrote {out / 'runs.jsonl'}, {out / 'search.json'}, {out / 'search.md'}")
    return 0


def render(record: dict[str, Any]) -> str:
    """``search.md`` from ``search.json`` (or the summary before it is written): the top-1
    table, then the top-k stage's when it ran."""
    objectives = {
        name: {**o, "top1_by_seed": _by_seed(o["top1_by_seed"])}
        for name, o in record["objectives"].items()
    }
    text = markdown({**record, "objectives": objectives}, record["target"])
    if record.get("select"):
        select = {
            key: {**row, "by_seed": _by_seed(row["by_seed"]), "queries": _by_seed(row["queries"])}
            for key, row in record["select"].items()
        }
        text += "\n\n" + select_markdown(select)
    return text


def _by_seed(values: dict[Any, Any]) -> dict[int, Any]:
    """Seed keys as numbers (JSON turns them into strings)."""
    return {int(seed): value for seed, value in values.items()}


def select_all(
    args: argparse.Namespace, runs: list[dict[str, Any]], truth: pd.DataFrame, out: Path
) -> dict[str, Any]:
    """The top-k stage on every finished study: per mode, K and column pair, the pick's test
    accuracy by seed (values are stored in each study, so a rerun queries nothing again)."""
    pairs = [tuple(p.split(":")) for p in args.select_columns.split(",")]
    table = truth.set_index("arch_str")
    rows: dict[str, dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: (r["objective"], r["seed"])):
        modes = ["top-k"] + (
            ["reweight"] if args.few_query and run["objective"] == "ensemble" else []
        )
        name = f"{load_config(args.study, args.overrides).name}_{run['objective']}_s{run['seed']}"
        sets = [*args.overrides, *_sets(run["objective"], name, out, run["seed"])]
        for k in map(int, args.select_k.split(",")):
            for valid, test in pairs:
                for mode in modes:
                    select_sets = [f"select.top_k={k}", "select.fidelity=table",
                                   f"select.truth={args.truth}", f"select.truth_column={valid}",
                                   f"select.mode={mode}"]  # fmt: skip
                    config = load_config(args.study, [*sets, *select_sets])
                    study = optuna.load_study(
                        study_name=name, storage=make_storage(config.storage_url)
                    )
                    record = select_study(study, config, out=lambda _: None)
                    key = f"{run['objective']} {mode} k={k} {valid}"
                    row = rows.setdefault(
                        key, {"test": test, "by_seed": {}, "queries": {}, "best_queried": {}}
                    )
                    row["by_seed"][run["seed"]] = float(table.loc[record["pick"]["arch"], test])
                    row["queries"][run["seed"]] = record["queries"]
                    # what a perfect fidelity would have picked among the same queries
                    queried = [c["arch"] for c in record["candidates"]]
                    row["best_queried"][run["seed"]] = float(table.loc[queried, test].max())
    for row in rows.values():
        row["mean"] = float(np.mean(list(row["by_seed"].values())))
        row["best_queried_mean"] = float(np.mean(list(row["best_queried"].values())))
    return rows


def select_markdown(rows: dict[str, Any]) -> str:
    seeds = sorted({s for r in rows.values() for s in r["by_seed"]})
    lines = [
        f"| top-k stage (selected on) | reported | {' | '.join(f'seed {s}' for s in seeds)} "
        "| mean | best queried, mean | queries |",
        "|---" * (len(seeds) + 5) + "|",
    ]
    for key, r in rows.items():
        cells = " | ".join(f"{r['by_seed'][s]:.2f}" if s in r["by_seed"] else "–" for s in seeds)
        queries = max(r["queries"].values())
        lines.append(
            f"| {key} | {r['test']} | {cells} | {r['mean']:.2f} | "
            f"{r['best_queried_mean']:.2f} | ≤ {queries} |"
        )
    return "\n".join(lines)


def summarise(runs: list[dict[str, Any]], accuracy: pd.Series) -> dict[str, Any]:
    frame = pd.DataFrame(runs)
    by: dict[str, Any] = {}
    for objective, rows in frame.groupby("objective", sort=False):
        by[str(objective)] = {
            "seeds": sorted(int(s) for s in rows.seed),
            "top1_by_seed": {
                int(s): float(a) for s, a in zip(rows.seed, rows.top1_accuracy, strict=True)
            },
            "mean_top1": float(rows.top1_accuracy.mean()),
            "median_seconds": float(rows.seconds.median()),
            "median_distinct": float(rows.distinct.median()),
        }
    distinct = int(frame.distinct.median())
    return {
        "objectives": by,
        "space_best": float(accuracy.max()),
        "random_expected_top1": expected_random_top1(accuracy.to_numpy(), distinct),
        "random_n": distinct,
    }


def markdown(summary: dict[str, Any], target: str) -> str:
    seeds = sorted({s for o in summary["objectives"].values() for s in o["seeds"]})
    lines = [
        f"| objective | {' | '.join(f'seed {s}' for s in seeds)} | mean | median s per study |",
        "|---" * (len(seeds) + 3) + "|",
    ]
    for name, o in summary["objectives"].items():
        cells = " | ".join(
            f"{o['top1_by_seed'][s]:.2f}" if s in o["top1_by_seed"] else "–" for s in seeds
        )
        lines.append(f"| {name} | {cells} | {o['mean_top1']:.2f} | {o['median_seconds']:.0f} |")
    lines.append(
        f"\n{target}: the space's best {summary['space_best']:.2f}; a random search's expected "
        f"top-1 over {summary['random_n']} distinct architectures "
        f"{summary['random_expected_top1']:.2f}"
    )
    return "\n".join(lines)


ENTRY = (HELP, add_arguments, handler)
