"""``bench docs [--check]``: every table of docs/BENCHMARKS.md, generated from committed outputs.

A generated table is a block of the doc::

    <!-- results: docs/results/DIR/FILE.md -->
    (the file, verbatim, between two blank lines)
    <!-- /results -->

where FILE.md is the markdown a bench wrote (``bench render`` writes it from a bench's JSON where
the bench wrote none). Without ``--check`` each block is rewritten from its file and the changed
ones are named. With ``--check`` nothing is written; each stale block is printed (doc line, source
file), and so is each table outside any block (a line starting with ``|``: typed, not generated),
and the exit status is 1 when there is any. A missing source file is a UserError (exit 2).
Source paths are relative to ``--root`` (the repository).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

from mote_optuna.errors import UserError

HELP = "regenerate (or --check) the tables of docs/BENCHMARKS.md from docs/results"
OPEN = re.compile(r"^<!-- results: (\S+) -->$")
CLOSE = "<!-- /results -->"


@dataclass(frozen=True)
class Block:
    """A generated block: ``line`` is its opening marker's (1-based); its content is
    ``lines[line:end]`` of the doc, ``end`` the index of the closing marker."""

    line: int
    source: str
    end: int


@dataclass(frozen=True)
class Loose:
    """A table outside any block: its first line (1-based) and the ``## `` section it is in."""

    line: int
    section: str


@dataclass(frozen=True)
class Findings:
    blocks: list[Block]
    stale: list[Block]
    loose: list[Loose]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    parser.add_argument("--doc", type=Path, default=Path("docs/BENCHMARKS.md"))
    parser.add_argument(
        "--root", type=Path, default=Path("."), help="where source paths start (the repository)"
    )


def parse(lines: list[str], doc: Path) -> tuple[list[Block], list[Loose]]:
    """The doc's blocks, and its tables outside them (fenced code is skipped)."""
    blocks: list[Block] = []
    loose: list[Loose] = []
    section, opened, fenced, in_table = "", None, False, False
    for index, text in enumerate(lines):
        if text.startswith("```"):
            fenced = not fenced
        if fenced:
            continue
        match = OPEN.match(text)
        if match or text == CLOSE:
            if (match is not None) == (opened is not None):
                raise UserError(f"{doc}:{index + 1}: unbalanced results marker")
            if match:
                opened = (index + 1, match.group(1))
            else:
                assert opened is not None
                blocks.append(Block(line=opened[0], source=opened[1], end=index))
                opened = None
        if text.startswith("## "):
            section = text[3:].strip()
        table = text.startswith("|")
        if table and not in_table and opened is None:
            loose.append(Loose(line=index + 1, section=section))
        in_table = table
    if opened is not None:
        raise UserError(f"{doc}:{opened[0]}: results block not closed by {CLOSE}")
    return blocks, loose


def content(root: Path, block: Block, doc: Path) -> list[str]:
    """What the block should hold: its source file between two blank lines."""
    path = root / block.source
    if not path.is_file():
        raise UserError(f"{doc}:{block.line}: {block.source}: no such file")
    return ["", *path.read_text().rstrip("\n").split("\n"), ""]


def examine(doc: Path, root: Path) -> tuple[list[str], Findings]:
    """The doc with every block regenerated, and what differs from the doc as it is."""
    if not doc.is_file():
        raise UserError(f"{doc}: no such file")
    lines = doc.read_text().split("\n")
    blocks, loose = parse(lines, doc)
    new: list[str] = []
    stale: list[Block] = []
    start = 0
    for block in blocks:
        fresh = content(root, block, doc)
        if lines[block.line : block.end] != fresh:
            stale.append(block)
        new += lines[start : block.line] + fresh
        start = block.end
    new += lines[start:]
    return new, Findings(blocks=blocks, stale=stale, loose=loose)


def handler(args: argparse.Namespace) -> int:
    new, found = examine(args.doc, args.root)
    for block in found.stale:
        state = "stale" if args.check else "updated"
        print(f"{args.doc}:{block.line}: {state}: {block.source}")
    for table in found.loose:
        print(f"{args.doc}:{table.line}: table not generated (section: {table.section})")
    if not args.check:
        if found.stale:
            args.doc.write_text("\n".join(new))
        print(f"{args.doc}: {len(found.blocks)} blocks, {len(found.stale)} updated")
        return 0
    print(
        f"{args.doc}: {len(found.blocks)} blocks, {len(found.stale)} stale, "
        f"{len(found.loose)} tables not generated"
    )
    return 1 if found.stale or found.loose else 0


ENTRY = (HELP, add_arguments, handler)
