"""Write the NB201 cells with the largest live FLOPs, one arch string per line, for
``bench correlation --cells``: the region a search for accurate cells spends its trials in.

The K largest, plus every cell tied with the K-th (FLOPs come in few distinct values), so the list
does not depend on an order among equals. No label is read.

    python scripts/largest_cells.py --k 200 --out bench-out/largest_cells.txt
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd
from cpu_search import live_flops_table  # scripts/ is on sys.path when run as a script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        live_flops_table(Path(tmp) / "live.csv")
        cells = pd.read_csv(Path(tmp) / "live.csv")
    flops = cells.live_flops.round(3)
    cut = flops.sort_values(ascending=False).iloc[args.k - 1]
    chosen = cells[flops >= cut].sort_values(["live_flops", "arch_str"], ascending=[False, True])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(chosen.arch_str) + "\n")
    print(f"wrote {len(chosen)} cells with live FLOPs >= {cut} M to {args.out}")


if __name__ == "__main__":
    main()
