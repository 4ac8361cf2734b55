"""Every table of docs/BENCHMARKS.md is generated (``bench docs``): each results block holds its
committed source file verbatim, and no table stands outside a block."""

from __future__ import annotations

from pathlib import Path

import pytest

from mote_optuna.bench.docs import examine
from mote_optuna.cli import main

REPO = Path(__file__).resolve().parents[1]

TABLE = "| score | τ |\n|---|---|\n| mote | 0.676 |\n"


def test_benchmarks_tables_are_generated_and_current() -> None:
    _, found = examine(REPO / "docs/BENCHMARKS.md", REPO)
    assert found.blocks, "no results block in docs/BENCHMARKS.md"
    stale = [f"line {b.line}: {b.source}" for b in found.stale]
    assert not stale, f"stale blocks (run python -m mote_optuna bench docs): {stale}"
    typed = [f"line {t.line} ({t.section})" for t in found.loose]
    assert not typed, f"tables outside a results block: {typed}"


def _doc(tmp_path: Path, body: str) -> Path:
    (tmp_path / "results").mkdir()
    (tmp_path / "results/t.md").write_text(TABLE)
    doc = tmp_path / "DOC.md"
    doc.write_text(f"# Doc\n\n<!-- results: results/t.md -->\n{body}<!-- /results -->\n\nText.\n")
    return doc


def _bench_docs(doc: Path, root: Path, *flags: str) -> int:
    return main(["bench", "docs", "--doc", str(doc), "--root", str(root), *flags])


def test_an_edited_table_is_found_and_restored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _doc(tmp_path, "\n" + TABLE + "\n")
    assert _bench_docs(doc, tmp_path, "--check") == 0
    current = doc.read_text()

    doc.write_text(current.replace("0.676", "0.700"))  # a figure typed over
    assert _bench_docs(doc, tmp_path, "--check") == 1
    assert f"{doc}:3: stale: results/t.md" in capsys.readouterr().out
    assert "0.700" in doc.read_text()  # --check writes nothing

    assert _bench_docs(doc, tmp_path) == 0
    assert f"{doc}:3: updated: results/t.md" in capsys.readouterr().out
    assert doc.read_text() == current
    assert _bench_docs(doc, tmp_path, "--check") == 0


def test_a_table_outside_a_block_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _doc(tmp_path, "")
    doc.write_text(doc.read_text() + "\n## Typed\n\n" + TABLE)
    assert _bench_docs(doc, tmp_path, "--check") == 1
    out = capsys.readouterr().out
    assert f"{doc}:3: stale: results/t.md" in out  # the empty block
    assert f"{doc}:10: table not generated (section: Typed)" in out
    assert out.count("table not generated") == 1  # a table once, not each row


def test_a_missing_source_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _doc(tmp_path, "")
    (tmp_path / "results/t.md").unlink()
    assert _bench_docs(doc, tmp_path, "--check") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "results/t.md: no such file" in err[0]
