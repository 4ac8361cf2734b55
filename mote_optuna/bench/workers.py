"""``bench workers``: throughput of 1, 2, 4 workers on one study, and the storage's cost per
trial (issue 6).

Every throughput run is a real ``python -m mote_optuna run STUDY --workers N`` on a fresh NB201
study (random sampler) scored by the table estimator on ``--table`` (no training: what is
measured is Optuna, the storage and mote_optuna's own bookkeeping). Throughput = COMPLETE trials
per minute between the first trial's start and the last one's end; wall includes the workers'
start-up. The per-trial cost is measured in this process, one worker: the median trial cycle
(one trial's start to the next one's) minus the estimator's and the cost model's own time, which
are timed afterwards on the same architectures (medians: the first cost call builds networks).
``--storage`` (default ``$MOTE_OPTUNA_TEST_PG``) and, with ``--journal``, a journal file.
``DIR/workers.{json,md}``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from mote_optuna.bench.output import markdown_table, write_outputs
from mote_optuna.config import load_config
from mote_optuna.errors import UserError
from mote_optuna.estimators.registry import make_estimator
from mote_optuna.keys import ARCH_ATTR
from mote_optuna.objective import Objective
from mote_optuna.spaces import get_space
from mote_optuna.storage import make_storage, mask_url
from mote_optuna.storage.url import POSTGRESQL, storage_kind
from mote_optuna.study import run_study

HELP = "trials per minute of 1, 2, 4 workers on one study, and the storage's cost per trial"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", default=os.environ.get("MOTE_OPTUNA_TEST_PG", ""),
                        help="a shared storage URL (default: $MOTE_OPTUNA_TEST_PG)")  # fmt: skip
    parser.add_argument("--table", type=Path, required=True, help="score table with arch_str")
    parser.add_argument("--journal", action="store_true", help="also a journal: storage")
    parser.add_argument("--trials", type=int, default=200, help="n_trials of each run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="N of each run")
    parser.add_argument("--overhead-only", action="store_true", help="skip the throughput runs")
    parser.add_argument(
        "--overhead-trials", type=int, help="trials of the cost run (default: trials/2, >= 50)"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder of workers.json, .md")


def write_study(folder: Path, name: str, storage: str, table: Path, trials: int) -> Path:
    path = folder / f"{name}.yaml"
    study: dict[str, Any] = {
        "name": name, "storage": storage, "artifacts": str(folder / "artifacts"),
        "space": "nb201", "sampler": {"name": "random", "seed": 0}, "n_trials": trials,
        "estimator": {"kind": "table", "table": str(table.resolve()), "table_missing": "skip"},
        "device": "cpu", "workers": {"local": 1},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(study))
    return path


def _finished(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    """The study's trials; a PostgreSQL study is deleted after reading (the database is shared)."""
    study = optuna.load_study(study_name=name, storage=make_storage(storage))
    trials = study.get_trials(deepcopy=False)
    if storage_kind(storage) == POSTGRESQL:
        optuna.delete_study(study_name=name, storage=make_storage(storage))
    return trials


def throughput(
    storage: str, table: Path, trials: int, workers: int, folder: Path
) -> dict[str, Any]:
    name = f"bench-w{workers}-{uuid.uuid4().hex[:6]}"
    path = write_study(folder, name, storage, table, trials)
    cmd = [sys.executable, "-m", "mote_optuna", "run", str(path), "--workers", str(workers)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise UserError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    every = _finished(storage, name)
    complete = [t for t in every if t.state == TrialState.COMPLETE]
    starts = [t.datetime_start for t in every if t.datetime_start]
    ends = [t.datetime_complete for t in every if t.datetime_complete]
    window = (max(ends) - min(starts)).total_seconds()
    return {
        "workers": workers, "complete": len(complete), "other": len(every) - len(complete),
        "window_s": window, "wall_s": wall, "per_min": 60 * len(complete) / window,
    }  # fmt: skip


def overhead(storage: str, table: Path, trials: int, folder: Path) -> dict[str, Any]:
    """One worker in this process: the trial cycle against the objective's own compute."""
    name = f"bench-ovh-{uuid.uuid4().hex[:6]}"
    config = load_config(write_study(folder, name, storage, table, trials))
    run_study(config, out=lambda _: None)
    done = [t for t in _finished(storage, name) if t.datetime_complete and t.datetime_start]
    starts = sorted(t.datetime_start for t in done if t.datetime_start)
    cycle = statistics.median((b - a).total_seconds() for a, b in itertools.pairwise(starts))
    inside = statistics.median(
        (t.datetime_complete - t.datetime_start).total_seconds()  # type: ignore[operator]
        for t in done
    )
    space = get_space(config.space)
    estimator = make_estimator(config, space)
    objective = Objective(config, space, estimator)  # a fresh cost cache, as the study had
    spent: dict[str, list[float]] = {"evaluate": [], "cost": []}
    for trial in (t for t in done if t.state == TrialState.COMPLETE):
        arch = space.from_str(trial.user_attrs[ARCH_ATTR])
        start = time.perf_counter()
        estimator.evaluate(space, arch)
        middle = time.perf_counter()
        objective.cost(arch)
        spent["evaluate"].append(middle - start)
        spent["cost"].append(time.perf_counter() - middle)
    compute = sum(statistics.median(v) for v in spent.values())
    return {"cycle_ms": 1000 * cycle, "inside_ms": 1000 * inside, "compute_ms": 1000 * compute,
            "overhead_ms": 1000 * (cycle - compute)}  # fmt: skip


def handler(args: argparse.Namespace) -> int:
    if not args.storage and not args.journal:
        raise UserError("give --storage postgresql://... (or source .ci/pg.env), or --journal")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    load_before = os.getloadavg()
    runs, costs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        storages = [args.storage] if args.storage else []
        storages += [f"journal:{folder / 'bench.log'}"] if args.journal else []
        for storage in storages:
            kind = storage.split(":", 1)[0]
            for workers in [] if args.overhead_only else args.workers:
                run = throughput(storage, args.table, args.trials, workers, folder)
                runs.append({"storage": kind, **run})
                print(f"{kind}, {workers} workers: {run['per_min']:.0f} trials/min", flush=True)
            trials = args.overhead_trials or max(50, args.trials // 2)
            cost = overhead(storage, args.table, trials, folder)
            costs.append({"storage": kind, **cost})
    text = f"load average before {load_before}, after {os.getloadavg()}\n\n"
    text += markdown_table(
        ["storage", "workers", "completed", "other trials", "trials/min", "window s", "wall s"],
        [[r["storage"], r["workers"], r["complete"], r["other"], f"{r['per_min']:.0f}",
          f"{r['window_s']:.1f}", f"{r['wall_s']:.1f}"] for r in runs],
    ) + "\n\n" + markdown_table(
        ["storage", "trial cycle ms", "ask..tell ms", "estimator + cost ms", "overhead ms"],
        [[c["storage"], f"{c['cycle_ms']:.1f}", f"{c['inside_ms']:.1f}",
          f"{c['compute_ms']:.2f}", f"{c['overhead_ms']:.1f}"] for c in costs],
    )  # fmt: skip
    record = {"storage": mask_url(args.storage) if args.storage else None,
              "trials": args.trials, "runs": runs, "overhead": costs,
              "load_before": load_before, "load_after": os.getloadavg()}  # fmt: skip
    write_outputs(args.out, "workers", record, text)
    return 0


ENTRY = (HELP, add_arguments, handler)
