"""``bench zero-cost`` end to end on a small truth CSV written here: JSON, scores and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mote_optuna.cli import main
from mote_optuna.estimators.az_nas import rank_aggregate

CELLS = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",
    "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|skip_connect~1|none~2|",
    "|nor_conv_1x1~0|+|avg_pool_3x3~0|none~1|+|nor_conv_3x3~0|none~1|avg_pool_3x3~2|",
)


@pytest.fixture(autouse=True)
def _restore_threads():
    """The bench sets torch's thread count (--threads 1); give the next tests theirs back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _run(truth: Path, out: Path, n: int) -> int:
    argv = ["bench", "zero-cost", "--truth", str(truth), "--n", str(n), "--out", str(out)]
    return main([*argv, "--targets", "cifar10", "imagenet16", "--threads", "1"])


def test_end_to_end_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = tmp_path / "truth.csv"
    pd.DataFrame(
        {
            "arch_str": CELLS,
            "cifar10_test_acc_200ep": [94.0, 10.0, 85.0, 88.0],
            "imagenet16_test_acc_200ep": [46.0, 1.0, 25.0, 30.0],
        }
    ).to_csv(truth, index=False)
    out = tmp_path / "out"
    assert _run(truth, out, 3) == 0
    result = json.loads((out / "zero_cost.json").read_text())
    assert result["n"] == 3 and set(result["targets"]) == {"cifar10", "imagenet16"}
    names = {"az_expressivity", "az_progressivity", "az_trainability", "az_complexity", "az_nas"}
    assert set(result["targets"]["cifar10"]) == names
    assert "τ cifar10" in capsys.readouterr().out
    written = (out / "zero_cost.md").read_text()
    assert written.startswith("| score | τ cifar10 | ρ cifar10 | τ imagenet16 |")
    (out / "zero_cost.md").unlink()
    assert main(["bench", "render", str(out / "zero_cost.json")]) == 0  # from the JSON alone
    assert (out / "zero_cost.md").read_text() == written
    scores = pd.read_csv(out / "scores.csv", index_col="arch_str")
    terms = [f"cifar10/{t}" for t in sorted(names - {"az_nas"})]
    np.testing.assert_allclose(
        scores["cifar10/az_nas"], rank_aggregate([scores[t].to_numpy() for t in terms])
    )
    # the identity cell (in the seed-0 sample of 3): trainability -inf, ranked, not dropped
    assert scores.loc[CELLS[1], "cifar10/az_trainability"] == -np.inf
    assert (scores["imagenet16/az_complexity"] < scores["cifar10/az_complexity"]).all()

    before = (out / "cells.jsonl").read_text().splitlines()
    assert _run(truth, out, 4) == 0
    after = (out / "cells.jsonl").read_text().splitlines()
    assert after[: len(before)] == before and len(after) == len(before) + 1  # resumed
    assert json.loads((out / "zero_cost.json").read_text())["n"] == 4
