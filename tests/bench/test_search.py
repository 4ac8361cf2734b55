"""`bench search`: seeded studies through the real sampler + Objective, and the report shape."""

from __future__ import annotations

import json
from pathlib import Path

from nb201_synthetic import write_tables

from mote_optuna.cli import main


def test_bench_search_writes_table_json_and_plot(tmp_path: Path) -> None:
    truth, scores = write_tables(tmp_path)
    out = tmp_path / "out"
    code = main([
        "bench", "search", "--truth", str(truth), "--scores", str(scores),
        "--samplers", "random,motenas", "--budgets", "10,30", "--seeds", "2", "--topk", "5",
        "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    result = json.loads((out / "search.json").read_text())
    assert result.pop("manifest")["command"].startswith("python -m mote_optuna bench search")
    assert set(result) == {"random", "motenas"}
    for sampler in result.values():
        for budget in ("10", "30"):
            entry = sampler[budget]
            assert entry["seeds"] == 2 and entry["reached"] == 2
            assert set(entry["top1_mean"]) == {"cifar10", "cifar100", "imagenet16"}
            assert set(entry["top1_sd"]) == set(entry["top1_mean"])
            assert set(entry["topk_mean"]) == {"5"}
            assert 0.0 <= entry["hv_fraction"] <= 1.0 + 1e-9
        assert sampler["30"]["top1_mean"]["cifar10"] >= sampler["10"]["top1_mean"]["cifar10"] - 5
    # MOTE-NAS climbs the synthetic MOTE (conv-heavy cells): its pick beats random's on average
    assert (
        result["motenas"]["30"]["top1_mean"]["cifar10"]
        > result["random"]["30"]["top1_mean"]["cifar10"]
    )
    runs = json.loads((out / "runs.json").read_text())
    assert len(runs) == 4 and all(len(r["cells"]) == 30 for r in runs)
    assert all(len(set(r["cells"])) == 30 for r in runs)
    assert (out / "hv_vs_evaluations.html").stat().st_size > 1000
    assert "| motenas | 30 |" in (out / "search.md").read_text()
    # the same numbers again from the stored runs, without running
    again = tmp_path / "again"
    assert main([
        "bench", "search", "--truth", str(truth), "--scores", str(scores),
        "--samplers", "random,motenas", "--budgets", "10,30", "--seeds", "2", "--topk", "5",
        "--out", str(again), "--from-runs", str(out / "runs.json"),
    ]) == 0  # fmt: skip
    recomputed = json.loads((again / "search.json").read_text())
    assert "--from-runs" in recomputed.pop("manifest")["command"]
    assert recomputed == result
