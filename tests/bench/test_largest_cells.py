"""``bench largest-cells``: the NB201 cells with the largest live FLOPs, ties at the K-th kept."""

from __future__ import annotations

import json
from pathlib import Path

from mote_optuna.bench.cells import live_flops
from mote_optuna.cli import main
from mote_optuna.spaces.nb201 import NB201Space

ALL_3X3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"  # noqa: E501


def test_the_largest_and_every_cell_tied_with_the_kth(tmp_path: Path) -> None:
    assert main(["bench", "largest-cells", "--k", "2", "--out", str(tmp_path)]) == 0
    cells = (tmp_path / "largest_cells.txt").read_text().split()
    assert cells[0] == ALL_3X3  # the one cell with six live 3x3 convolutions
    # one 3x3 swapped for a 1x1: six such cells share the second largest FLOPs, all kept
    assert len(cells) == 7 and all(c.count("nor_conv_1x1") == 1 for c in cells[1:])
    assert cells[1:] == sorted(cells[1:])
    flops = live_flops(NB201Space(), cells)
    assert flops[0] > flops[1] and len(set(flops[1:].round(3))) == 1
    record = json.loads((tmp_path / "largest_cells.json").read_text())
    assert record["cells"] == cells and record["cut_mflops"] == round(flops[1], 3)
    assert "manifest" in record
    assert main(["bench", "largest-cells", "--k", "0", "--out", str(tmp_path)]) == 2
