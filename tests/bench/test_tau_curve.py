"""``bench tau-curve``: one row per bench correlation run, fastest budget first."""

from __future__ import annotations

import json
from pathlib import Path

from mote_optuna.cli import main


def _run(folder: Path, epochs: int, median: float, tau: float) -> Path:
    folder.mkdir()
    settings = {"epochs": epochs, "images_per_label": 50, "width": 16, "resolution": 16,
                "landscape_points": 6, "landscape_mode": "train"}  # fmt: skip
    scores = {name: {"kendall_tau": {"cifar10": tau + i / 10, "cifar100": 0.0}}
              for i, name in enumerate(("mote", "landscape"))}  # fmt: skip
    record = {"settings": settings, "n": 60, "scores": scores,
              "seconds_per_arch": {"median": median, "p90": 2 * median}}  # fmt: skip
    (folder / "correlation.json").write_text(json.dumps(record))
    return folder


def test_rows_fastest_first_with_each_scores_tau(tmp_path: Path) -> None:
    slow = _run(tmp_path / "e8", 8, 3.0, 0.6)
    fast = _run(tmp_path / "e2", 2, 1.0, 0.4)
    out = tmp_path / "out"
    argv = ["bench", "tau-curve", str(slow), str(fast), "--scores", "mote,landscape"]
    assert main([*argv, "--out", str(out)]) == 0
    record = json.loads((out / "tau_curve.json").read_text())
    assert [r["budget"] for r in record["rows"]] == [
        "e2 i50 w16 r16 p6 train",
        "e8 i50 w16 r16 p6 train",
    ]
    assert record["rows"][1]["tau"] == {"mote": 0.6, "landscape": 0.7} and "manifest" in record
    assert (
        "| e2 i50 w16 r16 p6 train | 60 | 1.00 | 2.00 | 0.400 | 0.500 |"
        in (out / "tau_curve.md").read_text()
    )
    assert "plotly" in (out / "tau_curve.html").read_text()[:5000].lower()
    assert main([*argv, "--target", "imagenet16", "--out", str(out)]) == 2  # no such τ
