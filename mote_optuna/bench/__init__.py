"""Measurements against benchmark ground truth: ``python -m mote_optuna bench NAME``.

Each benchmark module registers ``(help, add_arguments, handler)`` in BENCHES.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

BenchEntry = tuple[
    str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]
]


def _entries() -> dict[str, BenchEntry]:
    entries: dict[str, BenchEntry] = {}
    try:
        from mote_optuna.bench import correlation

        entries["correlation"] = correlation.ENTRY
    except ImportError:
        pass
    try:
        from mote_optuna.bench import search

        entries["search"] = search.ENTRY
    except ImportError:
        pass
    try:
        from mote_optuna.bench import latency

        entries["latency"] = latency.ENTRY
    except ImportError:
        pass
    return entries


def add_bench_args(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", required=True)
    for name, (help_text, add_args, handler) in _entries().items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        add_args(command)
        command.set_defaults(handler=handler)
