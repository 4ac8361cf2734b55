"""Small synthetic NB201 tables for the search, table and evaluate tests (no shared data)."""

from __future__ import annotations

import functools
import zlib
from pathlib import Path

import pandas as pd

from mote_optuna.spaces.nb201 import NB201Space

CHEAP_TOP = ("skip_connect",) * 6  # no convolution, no pooling: the cheapest cell to train


def _jitter(text: str) -> float:
    return (zlib.crc32(text.encode()) % 1000) / 1000.0


@functools.cache
def _frame(cheap_top: bool) -> pd.DataFrame:
    return _build(cheap_top)


def synthetic_frame(*, cheap_top: bool = False, drop: int = 0) -> pd.DataFrame:
    """All 15,625 cells (cached per process; see _build); ``drop`` removes the first rows."""
    frame = _frame(cheap_top)
    return frame.iloc[drop:] if drop else frame


def _build(cheap_top: bool) -> pd.DataFrame:
    """All 15,625 cells: mote, landscape/speed terms, flops, params, truth accuracies.

    ``cheap_top`` gives the conv-free cell CHEAP_TOP the highest MOTE (cheap to train);
    ``drop`` (in synthetic_frame) removes that many rows (a table with missing keys).
    """
    space = NB201Space()
    rows = []
    for arch in space.all_archs():
        text = space.to_str(arch)
        n3 = sum(op == "nor_conv_3x3" for op in arch)
        n1 = sum(op == "nor_conv_1x1" for op in arch)
        nz = sum(op != "none" for op in arch)
        j = _jitter(text)
        mote = 2.0 * n3 + 1.0 * n1 + 0.3 * nz + j
        if cheap_top and arch == CHEAP_TOP:
            mote = 100.0
        acc = 60.0 + 4.0 * n3 + 2.0 * n1 + 1.0 * nz + 3.0 * j
        rows.append({
            "arch_str": text, "mote": mote, "landscape_term": mote / 2, "speed_term": mote / 2,
            "proxy_train_time_s": 5.0 + n3, "flops": 8.0 + 35.0 * n3 + 4.0 * n1,
            "params": 0.1 + 0.2 * n3 + 0.03 * n1,
            **{f"{d}_test_acc_200ep": acc - off for d, off in
               (("cifar10", 0.0), ("cifar100", 20.0), ("imagenet16", 40.0))},
            **{f"{d}_test_acc_12ep": acc - 5.0 - off + 2.0 * _jitter(text[::-1]) for d, off in
               (("cifar10", 0.0), ("cifar100", 20.0), ("imagenet16", 40.0))},
        })  # fmt: skip
    frame = pd.DataFrame(rows)
    for d in ("cifar10", "cifar100", "imagenet16"):
        frame[f"flops_M_{d}"] = frame["flops"]
        frame[f"params_M_{d}"] = frame["params"]
    return frame


def write_tables(folder: Path, **kwargs: bool | int) -> tuple[Path, Path]:
    """(truth CSV, scores CSV) in ``folder``."""
    frame = synthetic_frame(**kwargs)  # type: ignore[arg-type]
    truth, scores = folder / "truth.csv", folder / "scores.csv"
    frame.drop(columns=["mote", "landscape_term", "speed_term", "proxy_train_time_s"]).to_csv(
        truth, index=False
    )
    frame[["arch_str", "mote", "landscape_term", "speed_term", "proxy_train_time_s", "flops",
           "params"]].to_csv(scores, index=False)  # fmt: skip
    return truth, scores
