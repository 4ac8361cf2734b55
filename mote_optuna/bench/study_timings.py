"""``bench study-timings STORAGE STUDY``: where a finished study's time went: the warm-up, the
sampled trials' span and the gaps between them, and the median seconds of each part of a trained
sampled trial. Reads only the study's own records (``timings.py`` has the rules, the same as
``report``'s timing line). ``DIR/study_timings.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import optuna

from mote_optuna.bench.output import markdown_table, write_outputs
from mote_optuna.errors import UserError
from mote_optuna.storage.factory import make_storage
from mote_optuna.timings import study_timings

HELP = "where a finished study's time went: warm-up, sampled trials, gaps, parts of a trial"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("storage", help="the study's storage URL (sqlite:///..., journal:...)")
    parser.add_argument("study", help="the study's name")
    parser.add_argument("--out", type=Path, required=True, help="folder of study_timings.json")


def handler(args: argparse.Namespace) -> int:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=args.study, storage=make_storage(args.storage))
    except KeyError:
        raise UserError(f"no study {args.study!r} in {args.storage}") from None
    timings = study_timings(study)
    if timings.span_s is None or timings.gaps_s is None:
        raise UserError(f"study {args.study}: no finished sampled trial")
    medians = {part: statistics.median(values) for part, values in timings.parts.items()}
    lines = [
        f"{timings.warmup} warm-up cells, {timings.sampled} sampled cells "
        f"({timings.cached} cached)",
        f"sampled trials: {timings.span_s:.1f} s from the first start to the last end; "
        f"gaps {timings.gaps_s:.1f} s",
        "",
        markdown_table(
            ["part", "median s", "trained sampled trials"],
            [[part, f"{medians[part]:.2f}", len(v)] for part, v in timings.parts.items()],
        ),
    ]
    record = {
        "study": args.study,
        "states": timings.states,
        "warmup": timings.warmup,
        "sampled": timings.sampled,
        "cached": timings.cached,
        "span_s": timings.span_s,
        "gaps_s": timings.gaps_s,
        "median_s": medians,
        "trained_sampled": {part: len(v) for part, v in timings.parts.items()},
    }
    write_outputs(args.out, "study_timings", record, "\n".join(lines))
    return 0


ENTRY = (HELP, add_arguments, handler)
