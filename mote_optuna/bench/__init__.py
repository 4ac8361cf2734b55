"""Measurements against benchmark ground truth: ``python -m mote_optuna bench NAME``.

Each benchmark module defines its ``ENTRY`` (help, add_arguments, handler); BENCHES names them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from mote_optuna.bench import (
    busy,
    cells,
    compare,
    correlation,
    docs,
    ensemble_rule,
    latency,
    latency_noise,
    latency_search,
    latency_table,
    render,
    search,
    study_search,
    study_timings,
    table,
    tau_curve,
    time_budgets,
    top1_curve,
    workers,
    zero_cost,
)

BenchEntry = tuple[
    str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]
]

BENCHES: dict[str, BenchEntry] = {
    "correlation": correlation.ENTRY,
    "search": search.ENTRY,
    "latency": latency.ENTRY,
    "table": table.ENTRY,
    "study-search": study_search.ENTRY,
    "zero-cost": zero_cost.ENTRY,
    "ensemble-rule": ensemble_rule.ENTRY,
    "busy": busy.ENTRY,
    "latency-table": latency_table.ENTRY,
    "latency-search": latency_search.ENTRY,
    "compare": compare.ENTRY,
    "latency-noise": latency_noise.ENTRY,
    "top1-curve": top1_curve.ENTRY,
    "tau-curve": tau_curve.ENTRY,
    "largest-cells": cells.ENTRY,
    "time-budgets": time_budgets.ENTRY,
    "study-timings": study_timings.ENTRY,
    "workers": workers.ENTRY,
    "render": render.ENTRY,
    "docs": docs.ENTRY,
}


def add_bench_args(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", required=True)
    for name, (help_text, add_args, handler) in BENCHES.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        add_args(command)
        command.set_defaults(handler=handler)
