"""``python -m mote_optuna latency build``: fill this machine's lookup table (``--mode table``) or
fit its model on whole networks timed in fresh processes (``--mode fitted``), with a progress bar.

Either from a study file (its ``space`` and ``latency:`` section) or from ``--space`` and the
runtime flags. The file goes to the cache folder (``table.default_path``,
``machine_model.default_model_path``) or to ``--table``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mote_optuna.config import LatencyConfig, load_config
from mote_optuna.errors import UserError
from mote_optuna.latency import build_table, get_runtime, load_table, tqdm_progress
from mote_optuna.latency.machine_model import build_model, default_model_path, load_model
from mote_optuna.latency.runtimes import Runtime
from mote_optuna.latency.table import default_path
from mote_optuna.spaces import SPACE_NAMES, SearchSpace, get_space


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="latency_command", required=True)
    build = sub.add_parser("build", help="measure this machine's latency lookup table")
    build.add_argument("study", nargs="?", type=Path, help="study file with a latency: section")
    build.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="FIELD=VALUE", help="override a study-file field")  # fmt: skip
    build.add_argument("--space", help="space name (without a study file)")
    build.add_argument("--runtime", help="torch, onnxruntime or cuda (default: torch)")
    build.add_argument("--threads", type=int)
    build.add_argument("--batch-size", type=int)
    build.add_argument("--clock", help="auto, cpu or wall")
    build.add_argument("--warmup", type=int)
    build.add_argument("--runs", type=int)
    build.add_argument("--mode", choices=("table", "fitted"), help="default: table")
    build.add_argument("--networks", type=int, help="fitted: whole networks timed (100)")
    build.add_argument("--sessions", type=int, help="fitted: fresh processes per network (3)")
    build.add_argument("--table", type=Path, help="output file (default: the cache folder)")
    build.add_argument("--force", action="store_true", help="rebuild an existing table")
    build.set_defaults(handler=cmd_build)


def cmd_build(args: argparse.Namespace) -> int:
    if args.study is not None:
        config = load_config(args.study, args.overrides)
        space_name, settings = config.space, config.latency or LatencyConfig()
    else:
        if args.space not in SPACE_NAMES:
            raise UserError(
                f"latency build: give a study file or --space ({', '.join(SPACE_NAMES)})"
            )
        space_name, settings = args.space, LatencyConfig()
    names = ("runtime", "threads", "batch_size", "clock", "warmup", "runs", "table", "mode")
    for name in (*names, "networks", "sessions"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    space = get_space(space_name)
    runtime = get_runtime(
        settings.runtime, threads=settings.threads, batch_size=settings.batch_size,
        clock=settings.clock,
    )  # fmt: skip
    if settings.mode == "fitted":
        return build_fitted(space, runtime, settings, force=args.force)
    if settings.mode != "table":
        raise UserError(f"latency build: mode {settings.mode!r} has nothing to build")
    path = Path(settings.table).expanduser() if settings.table else default_path(space, runtime)
    if path.exists() and not args.force:
        table = load_table(space, runtime, path)  # refuses a foreign table
        print(f"latency table {path} exists ({len(table.entries)} entries); --force rebuilds it")
        return 0
    table = build_table(
        space, runtime, warmup=settings.warmup, runs=settings.runs, progress=tqdm_progress
    )
    table.save(path)
    print(
        f"latency table {path}: {len(table.entries)} entries, overhead "
        f"{table.overhead_ms:.3f} ms, built in {table.build_seconds:.0f} s "
        f"({runtime.name}, {runtime.threads} thread(s), {runtime.clock_used} clock)"
    )
    return 0


def build_fitted(
    space: SearchSpace, runtime: Runtime, settings: LatencyConfig, *, force: bool
) -> int:
    path = (
        Path(settings.table).expanduser() if settings.table else default_model_path(space, runtime)
    )
    if path.exists() and not force:
        model = load_model(space, runtime, path)  # refuses a foreign model
        print(f"latency model {path} exists ({len(model.archs)} networks); --force refits it")
        return 0
    model = build_model(
        space, runtime, networks=settings.networks, sessions=settings.sessions,
        warmup=settings.warmup, runs=settings.runs, progress=tqdm_progress,
    )  # fmt: skip
    model.save(path)
    print(
        f"latency model {path}: fitted on {len(model.archs)} networks x {model.sessions} fresh "
        f"processes in {model.build_seconds:.0f} s ({runtime.name}, {runtime.threads} "
        f"thread(s), {runtime.clock_used} clock)"
    )
    return 0
