"""``bench busy``: a study's wall time under thread/worker policies, on an idle machine and beside
busy competitor processes (issue 23; local_pool.py has the policy this chose).

Each (policy, competitors) pair runs the study file once, as a user would (``python -m
mote_optuna run``), into a fresh SQLite file, while ``competitors`` processes each spin on one
core (``while True: pass``). The wall time counts from the command's start to its exit; the
per-trial median comes from the stored trials (``trial_seconds``). ``DIR/busy.json`` holds every
run, the ratios to the single-thread idle run and the manifest; ``DIR/busy.md`` is the table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from mote_optuna.bench.output import markdown_table, write_outputs
from mote_optuna.config import load_config
from mote_optuna.errors import UserError
from mote_optuna.keys import MOTE_SECONDS_ATTR, TRIAL_SECONDS_ATTR

HELP = "wall time of a study under thread/worker policies, idle and beside busy processes"

# name -> (what it is, ``run`` arguments, environment)
POLICIES: dict[str, tuple[str, list[str], dict[str, str]]] = {
    "before": (
        "one process, torch threads = cores, OpenMP's default wait (the old default)",
        ["--workers", "1"],
        # empty: libgomp's own default (it says the value is invalid), not this package's PASSIVE
        {"OMP_WAIT_POLICY": ""},
    ),
    "passive": (
        "one process, torch threads = cores, passive OpenMP wait",
        ["--workers", "1"],
        {"OMP_WAIT_POLICY": "PASSIVE"},
    ),
    "single": (
        "one process, one thread (the baseline)",
        ["--workers", "1"],
        {"OMP_NUM_THREADS": "1"},
    ),
    "default": ("one single-thread process per core (the new default)", [], {}),
}
BASELINE = ("single", 0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", type=Path, help="the study file (e.g. studies/quickstart.yaml)")
    parser.add_argument("--trials", type=int, default=8, help="n_trials of each run")
    parser.add_argument(
        "--runs",
        default="before:0,before:1,single:0,single:1,single:2,default:0,default:1,default:2",
        help="POLICY:COMPETITORS pairs; policies: " + ", ".join(POLICIES),
    )
    parser.add_argument("--out", type=Path, required=True, help="folder of busy.json, busy.md")


def _pairs(text: str) -> list[tuple[str, int]]:
    pairs = []
    for item in text.split(","):
        name, _, count = item.strip().partition(":")
        if name not in POLICIES or not count.isdigit():
            raise UserError(
                f"--runs {item!r}: write POLICY:COMPETITORS, e.g. default:1; policies: "
                + ", ".join(POLICIES)
            )
        pairs.append((name, int(count)))
    if BASELINE not in pairs:
        pairs.insert(0, BASELINE)
    return pairs


def _run_once(args: argparse.Namespace, policy: str, competitors: int) -> dict[str, Any]:
    _, extra, env = POLICIES[policy]
    name = f"busy_{policy}_c{competitors}"
    db = args.out / "runs" / f"{name}.db"
    db.unlink(missing_ok=True)
    sets = [
        f"name={name}",
        f"storage=sqlite:///{db}",
        f"n_trials={args.trials}",
        'artifacts="off"',
    ]
    cmd = [sys.executable, "-m", "mote_optuna", "run", str(args.study), *extra]
    for item in sets:
        cmd += ["--set", item]
    spin = [sys.executable, "-c", "while True: pass"]
    busy = [subprocess.Popen(spin) for _ in range(competitors)]
    try:
        log = (args.out / "runs" / f"{name}.log").open("w")
        start = time.perf_counter()
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
        wall = time.perf_counter() - start
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    if done.returncode != 0:
        raise UserError(f"{name}: run exited {done.returncode}; see {log.name}")
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    seconds = [t.user_attrs[TRIAL_SECONDS_ATTR] for t in trials]
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    return {
        "policy": policy,
        "competitors": competitors,
        "wall_s": round(wall, 1),
        "median_trial_s": round(statistics.median(seconds), 2),
        "trials": len(trials),
        # from the first trial's start to the last one's end: the wall without the fixed part
        "trials_span_s": round((max(ends) - min(starts)).total_seconds(), 1),
        # the estimator's own seconds, summed over the trials (what the cores computed)
        "mote_seconds_sum": round(
            sum(t.user_attrs.get(MOTE_SECONDS_ATTR, 0.0) for t in trials), 1
        ),
    }


def table(runs: list[dict[str, Any]]) -> str:
    header = ["policy", "busy competitors", "wall (s)", "× single-thread idle wall",
              "median per trial (s)", "trials' span (s)", "MOTE seconds, summed"]  # fmt: skip
    return markdown_table(header, [
        [f"{run['policy']}: {POLICIES[run['policy']][0]}", run["competitors"],
         f"{run['wall_s']:.1f}", f"{run['ratio']:.2f}", f"{run['median_trial_s']:.2f}",
         f"{run['trials_span_s']:.1f}", f"{run['mote_seconds_sum']:.1f}"]
        for run in runs
    ])  # fmt: skip


def handler(args: argparse.Namespace) -> int:
    pairs = _pairs(args.runs)
    load_config(args.study)  # a bad study file: one line before any run
    (args.out / "runs").mkdir(parents=True, exist_ok=True)
    runs = []
    for policy, competitors in pairs:
        run = _run_once(args, policy, competitors)
        runs.append(run)
        print(f"{policy:>8} with {competitors} busy: wall {run['wall_s']:.1f} s", flush=True)
    base = next(r for r in runs if (r["policy"], r["competitors"]) == BASELINE)["wall_s"]
    for run in runs:
        run["ratio"] = round(run["wall_s"] / base, 2)
    write_outputs(args.out, "busy", {"trials": args.trials, "runs": runs}, table(runs))
    return 0


ENTRY = (HELP, add_arguments, handler)
