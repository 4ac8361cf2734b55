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
    out_dir = args.out or report_dir(config)
    paths = write_report(study, config, out_dir, truth=args.truth, truth_column=args.truth_column)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    from mote_optuna.dashboard import push_figures

    print(f"dashboard figures refreshed: {', '.join(push_figures(study, config)) or 'none'}")
    return 0


def _add_report_args(parser: argparse.ArgumentParser) -> None:
    _add_study_args(parser)
    parser.add_argument("--out", type=Path, help="output folder (default: beside the database)")
    parser.add_argument(
        "--truth", type=Path, help="ground-truth CSV keyed by arch_str: adds column true_acc"
    )
    parser.add_argument(
        "--truth-column", help="accuracy column of --truth (default: cifar10_test_acc_200ep)"
    )


def cmd_dashboard(args: argparse.Namespace) -> int:
    from mote_optuna.dashboard import serve

    try:
        serve(_load(args), host=args.host, port=args.port, out=lambda s: print(s, flush=True))
    except KeyboardInterrupt:
        print("\ndashboard stopped", file=sys.stderr)
    return 0


def _add_dashboard_args(parser: argparse.ArgumentParser) -> None:
    _add_study_args(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")


def cmd_export(args: argparse.Namespace) -> int:
    from mote_optuna.export import export_trial, find_trial, parse_pick, pick_trial
    from mote_optuna.study import load_existing_study

    config = _load(args)
    rule = parse_pick(args.pick) if args.pick is not None else None
    study = load_existing_study(config)
    if rule is not None:
        trial = pick_trial(study, config.objectives, rule)
    else:
        trial = find_trial(study, args.trial)
    result = export_trial(
        study, config, trial, fmt=args.format, out=args.out, seed=args.seed,
        num_classes=args.num_classes,
    )  # fmt: skip
    values = ", ".join(
        f"{name} {value:.4g}"
        for name, value in zip(config.objectives, trial.values or [], strict=False)
    )
    how = f"picked by {rule}" if rule is not None else "chosen by number"
    print(f"trial {result.trial} ({how}): {result.arch}  {values}".rstrip())
    for kind, path in result.paths.items():
        print(f"{kind}: {path}")
    print(f"check: {result.check}")
    print(f"train it: python {result.paths['train']} --help")
    return 0


def _add_export_args(parser: argparse.ArgumentParser) -> None:
    from mote_optuna.export import FORMATS

    _add_study_args(parser)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=int, metavar="N", help="export trial number N")
    which.add_argument(
        "--pick",
        metavar="RULE",
        help="choose from the feasible Pareto front, e.g. 'max-mote flops<=100' "
        "(goal max-/min-METRIC, then METRIC OP NUMBER conditions; see mote_optuna/export.py)",
    )
    parser.add_argument("--format", choices=FORMATS, default="pytorch")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the untrained weights")
    parser.add_argument("--num-classes", type=int, help="classifier size (default: the space's)")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mote_optuna.evaluate import handler

    return handler(args, _load(args))


def _add_evaluate_args(parser: argparse.ArgumentParser) -> None:
    from mote_optuna.evaluate import add_arguments

    _add_study_args(parser)
    add_arguments(parser)


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
    "evaluate": ("train the top-k by MOTE or the Pareto set", _add_evaluate_args, cmd_evaluate),
    "dashboard": ("serve optuna-dashboard for the study", _add_dashboard_args, cmd_dashboard),
    "export": ("write a trial's network and a training script", _add_export_args, cmd_export),
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
