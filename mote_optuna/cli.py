"""``python -m mote_optuna COMMAND``: every subcommand is one entry of COMMANDS."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from mote_optuna.errors import UserError


def _add_study_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", type=Path, help="study file (YAML), e.g. studies/quickstart.yaml")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a study-file field, e.g. --set estimator.epochs=5 (repeatable)",
    )


def _load(args: argparse.Namespace):
    from mote_optuna.config import load_config

    return load_config(args.study, args.overrides)


def cmd_run(args: argparse.Namespace) -> int:
    from mote_optuna.report import pareto_frame
    from mote_optuna.study import run_study

    config = _load(args)
    study = run_study(config)
    front = pareto_frame(study, config.objectives)
    print(f"\nPareto front of {config.name!r} ({len(front)} trials):")
    print(front.to_string(index=False) if len(front) else "(no completed trials yet)")
    again = " ".join(f"--set {item}" for item in args.overrides)
    print(f"\nreport: python -m mote_optuna report {args.study} {again}".rstrip())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from mote_optuna.report import pareto_frame, report_dir, write_report
    from mote_optuna.study import load_existing_study

    config = _load(args)
    study = load_existing_study(config)
    front = pareto_frame(study, config.objectives)
    print(f"Pareto front of {config.name!r} ({len(front)} trials):")
    print(front.to_string(index=False) if len(front) else "(no completed trials yet)")
    for kind, path in write_report(study, config, args.out or report_dir(config)).items():
        print(f"{kind}: {path}")
    return 0


def _add_report_args(parser: argparse.ArgumentParser) -> None:
    _add_study_args(parser)
    parser.add_argument("--out", type=Path, help="output folder (default: beside the database)")


def _add_bench_args(parser: argparse.ArgumentParser) -> None:
    from mote_optuna.bench import add_bench_args

    add_bench_args(parser)


# name -> (help, add arguments, handler)
COMMANDS: dict[
    str,
    tuple[
        str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int] | None
    ],
] = {
    "run": ("create or resume a study and run it to n_trials", _add_study_args, cmd_run),
    "report": ("print the Pareto front, write CSV and HTML", _add_report_args, cmd_report),
    "bench": ("measure MOTE and the samplers against ground truth", _add_bench_args, None),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mote_optuna",
        description="Multi-objective NAS with Optuna: MOTE + FLOPs + params.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_args, handler) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        add_args(command)
        if handler is not None:  # groups such as bench set their own handlers
            command.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.captureWarnings(False)
    try:
        return args.handler(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished trials are stored; run the same command again to continue",
            file=sys.stderr,
        )
        return 130
