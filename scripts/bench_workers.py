"""Throughput of 1, 2, 4 workers on one study, and the storage's cost per trial (issue 6).

    .ci/postgres.sh start >/dev/null && source .ci/pg.env
    T=../shared/data/nb201_mote_released.csv   # the shared data folder's released scores
    .venv/bin/python scripts/bench_workers.py --table $T --journal
    .venv/bin/python scripts/bench_workers.py --table $T --trials 300 --workers 1 2 4 8

Every run is a real ``python -m mote_optuna run STUDY --workers N`` on a fresh study scored by the
table estimator (no training: what is measured is Optuna, the storage and mote_optuna's own
bookkeeping). Throughput = completed trials / minute between the first trial's start and the
last one's end (worker start-up excluded; it is printed separately). The per-trial storage cost
is measured in this process, one worker: wall time of a trial minus the estimator's and the cost
model's own time. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mote_optuna.config import load_config  # noqa: E402
from mote_optuna.storage import make_storage, mask_url  # noqa: E402
from mote_optuna.storage.url import POSTGRESQL, storage_kind  # noqa: E402


def write_study(folder: Path, name: str, storage: str, table: Path, trials: int) -> Path:
    path = folder / f"{name}.yaml"
    study: dict[str, Any] = {
        "name": name,
        "storage": storage,
        "artifacts": str(folder / "artifacts"),
        "space": "nb201",
        "sampler": {"name": "random", "seed": 0},
        "n_trials": trials,
        "estimator": {"kind": "table", "table": str(table), "table_missing": "skip"},
        "device": "cpu",
    }
    path.write_text(yaml.safe_dump(study))
    return path


def throughput(storage: str, table: Path, trials: int, workers: int, folder: Path) -> dict:
    name = f"bench-w{workers}-{uuid.uuid4().hex[:6]}"
    path = write_study(folder, name, storage, table, trials)
    cmd = [sys.executable, "-m", "mote_optuna", "run", str(path), "--workers", str(workers)]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    study = optuna.load_study(study_name=name, storage=make_storage(storage))
    try:
        complete = study.get_trials(states=(TrialState.COMPLETE,))
        starts = [t.datetime_start for t in study.trials if t.datetime_start]
        ends = [t.datetime_complete for t in study.trials if t.datetime_complete]
        window = (max(ends) - min(starts)).total_seconds()
        others = len(study.trials) - len(complete)
        return {
            "workers": workers,
            "complete": len(complete),
            "other": others,
            "window_s": window,
            "wall_s": wall,
            "per_min": 60 * len(complete) / window,
        }
    finally:
        if storage_kind(storage) == POSTGRESQL:
            optuna.delete_study(study_name=name, storage=make_storage(storage))


def overhead(storage: str, table: Path, trials: int, folder: Path) -> dict:
    """One worker in this process: per-trial wall time vs the objective's own compute."""
    from mote_optuna.estimators.table import TableEstimator
    from mote_optuna.objective import Objective
    from mote_optuna.study import run_study

    spent: dict[str, list[float]] = {"evaluate": [], "cost": []}

    def timed(fn: Any, what: str) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[what].append(time.perf_counter() - t0)

        return wrapper

    evaluate, cost = TableEstimator.evaluate, Objective.cost
    TableEstimator.evaluate = timed(evaluate, "evaluate")  # type: ignore[method-assign]
    Objective.cost = timed(cost, "cost")  # type: ignore[method-assign]
    name = f"bench-ovh-{uuid.uuid4().hex[:6]}"
    config = load_config(write_study(folder, name, storage, table, trials))
    run_study(config, out=lambda s: None)
    study = optuna.load_study(study_name=name, storage=make_storage(storage))
    try:
        trials_ = [t for t in study.trials if t.datetime_complete and t.datetime_start]
        per_trial = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials_]
        starts = sorted(t.datetime_start for t in trials_)
        # start to next start: ask + objective + tell + callbacks
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
        cycle = statistics.median(gaps)
        # medians: the first cost call measures three networks once (NB201 op-count constants)
        compute = sum(statistics.median(v) for v in spent.values() if v)
        return {
            "cycle_ms": 1000 * cycle,
            "inside_ms": 1000 * statistics.median(per_trial),
            "compute_ms": 1000 * compute,
            "overhead_ms": 1000 * (cycle - compute),
        }
    finally:
        TableEstimator.evaluate, Objective.cost = evaluate, cost  # type: ignore[method-assign]
        if storage_kind(storage) == POSTGRESQL:
            optuna.delete_study(study_name=name, storage=make_storage(storage))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default=os.environ.get("MOTE_OPTUNA_TEST_PG", ""))
    parser.add_argument(
        "--table",
        type=Path,
        required=True,
        help="a score table with arch_str (the shared data's nb201_mote_released.csv)",
    )
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--journal", action="store_true", help="also measure journal: storage")
    parser.add_argument("--overhead-only", action="store_true", help="skip the throughput runs")
    args = parser.parse_args()
    if not args.storage:
        raise SystemExit("give --storage postgresql://... or source .ci/pg.env")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        storages = [args.storage] + ([f"journal:{folder / 'bench.log'}"] if args.journal else [])
        print(f"machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}")
        print(f"load average before: {os.getloadavg()}")
        print(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}, {args.trials} trials a run\n")
        print("| storage | workers | completed | other trials | trials/min | window s | wall s |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for storage in storages:
            kind = storage.split(":", 1)[0]
            for workers in [] if args.overhead_only else args.workers:
                r = throughput(storage, args.table, args.trials, workers, folder)
                print(
                    f"| {kind} | {workers} | {r['complete']} | {r['other']} | "
                    f"{r['per_min']:.0f} | {r['window_s']:.1f} | {r['wall_s']:.1f} |",
                    flush=True,
                )
        print("\n| storage | trial cycle ms | ask..tell ms | estimator + cost ms | overhead ms |")
        print("|---|---:|---:|---:|---:|")
        for storage in storages:
            r = overhead(storage, args.table, max(50, args.trials // 2), folder)
            print(
                f"| {storage.split(':', 1)[0]} | {r['cycle_ms']:.1f} | {r['inside_ms']:.1f} | "
                f"{r['compute_ms']:.2f} | {r['overhead_ms']:.1f} |",
                flush=True,
            )
        print(f"\nload average after: {os.getloadavg()}; storage {mask_url(args.storage)}")


if __name__ == "__main__":
    main()
