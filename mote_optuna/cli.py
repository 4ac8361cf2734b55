"""``python -m mote_optuna COMMAND``: every subcommand is one entry of COMMANDS."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from mote_optuna import evaluate, select
from mote_optuna.bench import add_bench_args
from mote_optuna.budget import done_in
from mote_optuna.config import StudyConfig, load_config
from mote_optuna.dashboard import push_figures, serve
from mote_optuna.errors import UserError
from mote_optuna.estimators.contract import resolve_device
from mote_optuna.existing_study import load_existing_study
from mote_optuna.export import FORMATS, export_trial, find_trial, parse_pick, pick_trial
from mote_optuna.latency import cli as latency_cli
from mote_optuna.local_pool import resolve_local
from mote_optuna.report import (
    pareto_frame,
    report_dir,
    selection_frame,
    selection_summary,
    timing_summary,
    write_report,
)
from mote_optuna.storage.secrets import install_secret_filter, known_secrets, mask_secrets
from mote_optuna.storage.url import is_sqlite, storage_url_from_env
from mote_optuna.study import run_study
from mote_optuna.worker import run_local_workers, run_worker


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


def _load(args: argparse.Namespace) -> StudyConfig:
    config = load_config(args.study, args.overrides)
    config.storage = storage_url_from_env(config.storage_url)  # $MOTE_OPTUNA_STORAGE wins
    _filter_secrets(config.storage_url)
    return config


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args)
    code = 0
    local = args.workers or resolve_local(config.workers.local, resolve_device(config.device))
    config.workers.local = local  # as run: the study note records it
    if local > 1 and not is_sqlite(config.storage_url):
        code = run_local_workers(config, args.study, args.overrides, local)
        try:
            study = load_existing_study(config)
        except UserError:
            return code or 1  # no worker got as far as creating the study
    else:  # SQLite has one writer: this process, with a pool scoring the trials (local_pool.py)
        study = run_study(config, local=local)
    front = pareto_frame(study, config.objectives)
    print(f"\nPareto front of {config.name!r} ({len(front)} trials):")
    print(front.to_string(index=False) if len(front) else "(no completed trials yet)")
    if config.select.top_k is not None and done_in(study, config.count) >= config.n_trials:
        print()  # the study file's select: section, once the search is done
        select.handler(args, config)
    again = " ".join(f"--set {item}" for item in args.overrides)
    again = mask_secrets(again, known_secrets(config.storage_url))
    print(f"\nreport: python -m mote_optuna report {args.study} {again}".rstrip())
    return code


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _add_run_args(parser: argparse.ArgumentParser) -> None:
    _add_study_args(parser)
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="N trials at once, each in a process of workers.threads threads (default: the "
        "study's workers.local, 'auto' = one per core on a CPU, 1 on a GPU). SQLite: this "
        "process drives them; journal: or postgresql://: N worker processes share the storage",
    )


def cmd_worker(args: argparse.Namespace) -> int:
    run_worker(_load(args), local_workers=args.local_workers)
    return 0


def _add_worker_args(parser: argparse.ArgumentParser) -> None:
    _add_study_args(parser)
    parser.add_argument(
        "--local-workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help="worker processes sharing this host's cores (threads = cores // N; default 1)",
    )


def cmd_report(args: argparse.Namespace) -> int:
    config = _load(args)
    study = load_existing_study(config)
    front = pareto_frame(study, config.objectives)
    print(f"Pareto front of {config.name!r} ({len(front)} trials):")
    print(front.to_string(index=False) if len(front) else "(no completed trials yet)")
    print(timing_summary(study))
    selected = selection_frame(study)
    if selected is not None:
        print(f"\n{selection_summary(study)}:")
        print(selected.to_string(index=False))
    out_dir = args.out or report_dir(config)
    compare = []
    for other in args.compare:
        other_config = load_config(other, args.overrides)
        compare.append((other_config, load_existing_study(other_config)))
    paths = write_report(
        study, config, out_dir, truth=args.truth, truth_column=args.truth_column, compare=compare
    )
    for kind, path in paths.items():
        print(f"{kind}: {path}")

    print(f"dashboard figures refreshed: {', '.join(push_figures(study, config)) or 'none'}")
    return 0


def _add_report_args(parser: argparse.ArgumentParser) -> None:
    _add_study_args(parser)
    parser.add_argument("--out", type=Path, help="output folder (default: beside the database)")
    parser.add_argument(
        "--truth", type=Path, help="ground-truth CSV keyed by arch_str: adds column true_acc"
    )
    parser.add_argument(
        "--truth-column", help="accuracy column of --truth (default: the space's main target)"
    )
    parser.add_argument(
        "--compare", type=Path, action="append", default=[], metavar="STUDY",
        help="another study file: its feasible front is shown beside this one (repeatable)",
    )  # fmt: skip


def cmd_dashboard(args: argparse.Namespace) -> int:
    # Ctrl-C and SIGTERM stop the server, even when started from a shell that ignores SIGINT
    # (background jobs of non-interactive shells inherit SIG_IGN).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
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
    return evaluate.handler(args, _load(args))


def _add_evaluate_args(parser: argparse.ArgumentParser) -> None:
    _add_study_args(parser)
    evaluate.add_arguments(parser)


def cmd_select(args: argparse.Namespace) -> int:
    return select.handler(args, _load(args))


def _add_select_args(parser: argparse.ArgumentParser) -> None:
    _add_study_args(parser)
    select.add_arguments(parser)


def _add_bench_args(parser: argparse.ArgumentParser) -> None:
    add_bench_args(parser)


def _add_latency_args(parser: argparse.ArgumentParser) -> None:
    latency_cli.add_arguments(parser)


# name -> (help, add arguments, handler)
COMMANDS: dict[
    str,
    tuple[
        str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int] | None
    ],
] = {
    "run": ("create or resume a study and run it to n_trials", _add_run_args, cmd_run),
    "worker": (
        "one of many workers of a study on a shared storage (journal: or postgresql://)",
        _add_worker_args,
        cmd_worker,
    ),
    "report": ("print the Pareto front, write CSV and HTML", _add_report_args, cmd_report),
    "bench": ("measure MOTE and the samplers against ground truth", _add_bench_args, None),
    "evaluate": ("train the top-k by MOTE or the Pareto set", _add_evaluate_args, cmd_evaluate),
    "select": (
        "the top-k stage: the best K by the score get a higher-fidelity value; the pick",
        _add_select_args,
        cmd_select,
    ),
    "dashboard": ("serve optuna-dashboard for the study", _add_dashboard_args, cmd_dashboard),
    "export": ("write a trial's network and a training script", _add_export_args, cmd_export),
    "latency": ("build this machine's latency lookup table", _add_latency_args, None),
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


_FILTERED: set[tuple[str, ...]] = set()


def _filter_secrets(url: str | None = None) -> None:
    """Mask storage passwords in every log line (once per set of known secrets)."""
    secrets = tuple(known_secrets(url))
    if secrets not in _FILTERED:
        _FILTERED.add(secrets)
        install_secret_filter(secrets)


def _mask_secrets_everywhere() -> None:
    """Storage passwords never reach a log line, a warning or a traceback (storage/secrets.py)."""
    _filter_secrets()  # URL passwords always; $MOTE_OPTUNA_DB_PASSWORD, $PGPASSWORD
    if getattr(warnings.formatwarning, "masks_secrets", False):
        return
    show = warnings.formatwarning

    def formatwarning(*args: Any, **kwargs: Any) -> str:
        return mask_secrets(show(*args, **kwargs), known_secrets())

    formatwarning.masks_secrets = True  # type: ignore[attr-defined]
    warnings.formatwarning = formatwarning

    def excepthook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        text = "".join(traceback.format_exception(kind, value, tb))
        sys.stderr.write(mask_secrets(text, known_secrets()))

    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = excepthook


def _quiet_interrupts(record: logging.LogRecord) -> bool:
    """Drop Optuna's traceback of a Ctrl-C'd trial: the trial keeps its fail_reason instead."""
    if record.exc_info and record.exc_info[0] is KeyboardInterrupt:
        return False
    return "failed with value None" not in record.getMessage()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by bench manifests
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for handler in logging.getLogger("optuna").handlers:  # filters on the logger miss children
        handler.addFilter(_quiet_interrupts)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.captureWarnings(False)
    _mask_secrets_everywhere()
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
