"""``bench time-budgets``: budgets timed round-robin on the first cells of correlation's sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPO_ROOT

from mote_optuna.bench.correlation import sample_cells
from mote_optuna.bench.time_budgets import estimator_config
from mote_optuna.cli import main
from mote_optuna.errors import UserError

TRUTH = REPO_ROOT / "tests" / "data" / "nb201_test_acc.csv.gz"


def test_specs_are_budgets_with_changed_fields() -> None:
    config = estimator_config("lite:epochs=4,landscape_mode=eval,lr=0.01")
    assert (config.budget, config.epochs, config.landscape_mode, config.lr) == (
        "lite", 4, "eval", 0.01,
    )  # fmt: skip
    with pytest.raises(UserError, match="FIELD=VALUE"):
        estimator_config("lite:epoch=4")


def test_two_budgets_on_the_same_cells(tmp_path: Path, one_thread: None) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "images.npz"
    x = rng.integers(0, 255, (40, 16, 16, 3), dtype=np.uint8)
    np.savez(data, x=x, y=np.repeat(np.arange(4), 10))
    out = tmp_path / "out"
    argv = ["bench", "time-budgets", "tiny", "tiny:epochs=1,landscape_points=2", "--truth"]
    argv += [str(TRUTH), "--data", str(data), "--cells", "2", "--seed", "3", "--out", str(out)]
    assert main(argv) == 0
    record = json.loads((out / "time_budgets.json").read_text())
    assert record["cells"] == list(sample_cells(pd.read_csv(TRUTH), 2, 3).arch_str)
    first, second = record["rows"]
    assert first["budget"] == "tiny" and first["cpu_ratio"] == 1.0
    assert second["cpu_median_s"] > 0 and "manifest" in record
    assert "| tiny:epochs=1,landscape_points=2 |" in (out / "time_budgets.md").read_text()
