"""``bench render FILE.json ...``: the markdown of a bench's JSON output, from the JSON alone.

For outputs kept from runs whose bench wrote no markdown yet (``study-search`` and ``zero-cost``
write it themselves now): each file's ``<stem>.md`` is written beside it and printed, by the
same ``render`` function the bench uses, so that every table the docs quote is printed by a
command (``bench docs`` copies it into docs/BENCHMARKS.md). The bench is the one named in the
JSON's manifest command (or, in older outputs, its recorded ``args``).
"""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mote_optuna.bench.manifest import MANIFEST_KEY
from mote_optuna.bench.study_search import render as render_search
from mote_optuna.bench.zero_cost import render as render_zero_cost
from mote_optuna.errors import UserError

HELP = "write the markdown of a bench's JSON output beside it (study-search, zero-cost)"
RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "study-search": render_search,
    "zero-cost": render_zero_cost,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", type=Path, nargs="+", help="JSON written by a bench")


def bench_of(record: dict[str, Any]) -> str | None:
    """The bench that wrote ``record``: the word after ``bench`` in its manifest's command, or
    the ``bench`` of its recorded arguments."""
    command = (record.get(MANIFEST_KEY) or {}).get("command")
    if command:
        words = shlex.split(command)
        if "bench" in words[:-1]:
            return words[words.index("bench") + 1]
    name = (record.get("args") or {}).get("bench")
    return str(name) if name else None


def handler(args: argparse.Namespace) -> int:
    for path in args.files:
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        record = json.loads(path.read_text())
        bench = bench_of(record)
        if bench not in RENDERERS:
            raise UserError(
                f"{path}: written by bench {bench}; rendered here: {', '.join(RENDERERS)}"
            )
        text = RENDERERS[bench](record)
        path.with_suffix(".md").write_text(text + "\n")
        print(text)
        print(f"wrote {path.with_suffix('.md')}")
    return 0


ENTRY = (HELP, add_arguments, handler)
