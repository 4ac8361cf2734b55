"""Ground truth by architecture: the one loader of a benchmark's accuracy table, for ``report
--truth`` and ``evaluate --truth`` (``bench correlation`` reads the space's table directly).

A table with an ``arch_str`` column is keyed by it (the space's ``to_str``, e.g.
``nb201_ground_truth.csv`` or a study's ``trials.csv``); any other table is read by the space
(``spaces.base.HasTruth.read_truth``: NAS-Bench-101's adjacency columns, NAS-Bench-Macro's codes,
Accel-NASBench's digit columns). The accuracy column is the one named, else the space's main
target, else the first of ``DEFAULT_COLUMNS`` the table has.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mote_optuna.errors import UserError
from mote_optuna.spaces import SearchSpace
from mote_optuna.spaces.base import HasTruth

ARCH_COLUMN = "arch_str"
DEFAULT_COLUMNS = ("cifar10_test_acc_200ep", "cifar100_test_acc_200ep", "test_acc", "accuracy")


def read_table(space: SearchSpace, path: Path) -> pd.DataFrame:
    """The table at ``path`` with an ``arch_str`` column, one row per architecture string."""
    try:
        head = pd.read_csv(path, nrows=0)
    except (OSError, ValueError) as exc:
        raise UserError(f"--truth {path}: cannot read it as CSV: {exc}") from None
    if ARCH_COLUMN in head.columns:
        return pd.read_csv(path).drop_duplicates(ARCH_COLUMN)
    if isinstance(space, HasTruth):
        return space.read_truth(path)
    raise UserError(
        f"--truth {path}: needs a column {ARCH_COLUMN!r} (the architecture string); space "
        f"{space.name!r} reads no other table"
    )


def accuracy_by_arch(
    space: SearchSpace, path: Path, column: str | None = None
) -> tuple[pd.Series, str]:
    """The true accuracy by architecture string, and the column it came from."""
    table = read_table(space, path)
    if column is None:
        targets = list(space.truth_targets.values()) if isinstance(space, HasTruth) else []
        column = next((c for c in [*targets, *DEFAULT_COLUMNS] if c in table.columns), None)
        if column is None:
            raise UserError(
                f"--truth {path}: none of {', '.join([*targets, *DEFAULT_COLUMNS])} is a column; "
                "name one with --truth-column"
            )
    elif column not in table.columns:
        accs = [c for c in table.columns if "acc" in c]
        raise UserError(
            f"--truth-column {column}: not a column of {path}; accuracy columns: "
            + (", ".join(accs) or "none")
        )
    return table.set_index(ARCH_COLUMN)[column].astype(float), column
