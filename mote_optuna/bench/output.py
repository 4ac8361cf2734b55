"""What the newer benches write: a markdown table, and ``<stem>.json`` (with the run's
manifest) beside ``<stem>.md``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mote_optuna.bench.manifest import MANIFEST_KEY, manifest

__all__ = ["markdown_table", "write_outputs"]


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """``| a | b |`` lines: the header, its rule, one line per row (cells as given)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_outputs(out: Path, stem: str, record: dict[str, Any], text: str) -> None:
    """``out/<stem>.json`` (``record`` and the manifest) and ``out/<stem>.md`` (``text``);
    ``text`` is printed."""
    out.mkdir(parents=True, exist_ok=True)
    record = {**record, MANIFEST_KEY: manifest(sys.argv[1:])}
    (out / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / f"{stem}.md").write_text(text + "\n")
    print(text)
