"""Published device latency (latency/published.py) and the fitted model (latency/fitted.py), on
HW-NAS-Bench/HELP's NB201 columns and Accel-NASBench's FPGA latency (tests/data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import write_study
from optuna.trial import TrialState
from scipy import stats

from mote_optuna.cli import main
from mote_optuna.config import load_config
from mote_optuna.cost import count_flops
from mote_optuna.errors import ConfigError, UserError
from mote_optuna.latency.fitted import INTERCEPT, AdditiveLatencyModel, latency_features
from mote_optuna.latency.published import PublishedLatency, device_columns
from mote_optuna.spaces import get_space
from mote_optuna.study import run_study

DATA = Path(__file__).resolve().parents[1] / "data"
NB201 = DATA / "nb201_device_latency.csv.gz"
ANB = DATA / "anb_imagenet.csv.gz"


def test_device_names_come_from_the_columns() -> None:
    columns = ["arch_str", "hwnb_cifar10_pixel3_latency_ms", "help_2080ti_1_latency_ms",
               "latency_zcu102_mean", "throughput_a100_mean", "val_top1"]  # fmt: skip
    assert device_columns(columns) == {
        "pixel3": "hwnb_cifar10_pixel3_latency_ms",
        "2080ti_1": "help_2080ti_1_latency_ms",
        "zcu102": "latency_zcu102_mean",
    }


def test_fit_recovers_additive_costs_and_never_a_negative_one() -> None:
    counts = [{"a": 1}, {"a": 2}, {"b": 1}, {"a": 1, "b": 2}]
    latency = [1 + 2 * c.get("a", 0) + 3 * c.get("b", 0) for c in counts]
    model = AdditiveLatencyModel.fit(counts, latency)
    assert model.weights == pytest.approx({"a": 2.0, "b": 3.0, INTERCEPT: 1.0})
    assert model.predict({"a": 3, "b": 1}) == pytest.approx(10.0)
    # a unit that makes networks faster in the data is held at 0, not negative
    model = AdditiveLatencyModel.fit([{"a": 1}, {"a": 2}, {"a": 3}], [3.0, 2.0, 1.0])
    assert model.weights["a"] == 0.0 and model.fitted_on == 3
    with pytest.raises(UserError, match="at least 2 measured networks"):
        AdditiveLatencyModel.fit([{"a": 1}, {"a": 2}], [1.0, float("nan")])


def test_nb201_value_is_the_published_row_and_unknown_devices_are_listed() -> None:
    space = get_space("nb201")
    latency = PublishedLatency(space, NB201, "pixel3")
    table = pd.read_csv(NB201)
    for row in table.sample(5, random_state=0).itertuples():
        assert latency(space.from_str(row.arch_str)) == row.hwnb_cifar10_pixel3_latency_ms
    described = latency.describe()
    assert described["device"] == "pixel3" and described["runtime"] == "published"
    assert "model" not in described and len(described["file_sha256"]) == 12
    with pytest.raises(UserError, match="has 2080ti_1, eyeriss, pixel2, pixel3") as info:
        PublishedLatency(space, NB201, "pixel9")
    assert "\n" not in str(info.value)


def test_anb_value_is_a_model_fitted_on_the_measured_networks() -> None:
    space = get_space("anb")
    latency = PublishedLatency(space, ANB, "zcu102")
    truth = space.read_truth(ANB).dropna(subset=["latency_zcu102_mean"])
    assert latency.describe()["model"]["fitted_on"] == len(truth) > 5000  # those measured
    truth = truth.sample(300, random_state=0)
    predicted = [latency(space.from_str(a)) for a in truth.arch_str]
    assert stats.kendalltau(predicted, truth.latency_zcu102_mean).statistic > 0.9
    # an architecture the table never measured still gets a value
    assert np.isfinite(latency(space.sample(np.random.default_rng(1))))


def test_features_without_the_space_method_are_the_built_networks_layer_work() -> None:
    space = get_space("nb-macro")
    arch = space.sample(np.random.default_rng(0))
    work = latency_features(space, arch)
    assert all(v > 0 for v in work.values()) and len(work) < 20
    # convolution MACs in millions: the network's FLOPs counter agrees on the total
    flops = count_flops(space.build_full(arch), space.full_net.resolution)
    macs = work["conv:macs"] + work.get("dw:macs", 0.0) + work.get("linear:macs", 0.0)
    assert macs == pytest.approx(flops, rel=0.02)


def _pixel3_study(tmp_path: Path, budget_ms: float) -> Path:
    """A 4-trial MOTE study on published Pixel 3 latency, with a latency budget."""
    return write_study(
        tmp_path / "s.yaml",
        n_trials=4,
        objectives=["mote", "latency"],
        latency={"runtime": "published", "device": "pixel3", "file": str(NB201)},
        constraints={"max_latency_ms": budget_ms},
    )


def test_constrained_study_on_published_pixel3_latency(tmp_path: Path) -> None:
    path = _pixel3_study(tmp_path, 12.0)
    study = run_study(load_config(path), out=lambda s: None)
    space = get_space("nb201")
    rows = pd.read_csv(NB201).set_index("arch_str").hwnb_cifar10_pixel3_latency_ms
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        assert trial.values[1] == rows[space.to_str(space.from_str(trial.user_attrs["arch"]))]
        assert trial.values[1] <= 12.0
    for trial in study.get_trials(states=(TrialState.PRUNED,)):
        assert "over budget: latency" in trial.user_attrs["fail_reason"]
    meta = study.user_attrs["mote_optuna"]["latency"]
    assert meta["device"] == "pixel3" and meta["mode"] == "published"


def test_published_runtime_needs_device_and_file(tmp_path: Path) -> None:
    path = write_study(tmp_path / "s.yaml", objectives=["mote", "latency"],
                       latency={"runtime": "published"})  # fmt: skip
    with pytest.raises(ConfigError, match="runtime 'published' goes with device and file"):
        load_config(path)


def test_bench_latency_on_published_rows(tmp_path: Path) -> None:
    out = tmp_path / "lat"
    args = ["bench", "latency", "--published", str(NB201), "--space", "nb201"]
    assert main([*args, "--fit", "100", "--seed", "0", "--out", str(out)]) == 0
    record = json.loads((out / "latency.json").read_text())
    assert set(record["manifest"]) >= {"commit", "versions", "cpu", "cores", "threads", "date"}
    devices = record["devices"]
    assert set(devices) == set(device_columns(list(pd.read_csv(NB201, nrows=0).columns)).values())
    eyeriss = devices["hwnb_cifar10_eyeriss_latency_ms"]
    assert eyeriss["n_fit"] == 100 and eyeriss["n_test"] == 15_525
    assert eyeriss["kendall_tau"] > eyeriss["flops_kendall_tau"] + 0.1
    assert eyeriss["mean_relative_error"] < 0.1
    assert devices["help_pixel2_latency_ms"]["whole_ms"]
    assert not devices["hwnb_cifar10_pixel3_latency_ms"]["whole_ms"]


def test_latency_table_over_seeds_judges_the_goals(tmp_path: Path) -> None:
    runs = []
    for seed in (0, 1):
        out = tmp_path / f"s{seed}"
        args = ["bench", "latency", "--published", str(NB201), "--space", "nb201", "--fit", "100"]
        assert main([*args, "--seed", str(seed), "--out", str(out)]) == 0
        runs.append(str(out))
    assert main(["bench", "latency-table", *runs, "--out", str(tmp_path / "t")]) == 0
    rows = {
        r["device"]: r for r in json.loads((tmp_path / "t" / "table.json").read_text())["rows"]
    }
    per_seed = [json.loads(Path(r, "latency.json").read_text())["devices"] for r in runs]
    column = "hwnb_cifar10_eyeriss_latency_ms"
    assert rows["eyeriss"]["kendall_tau"] == pytest.approx(
        np.mean([d[column]["kendall_tau"] for d in per_seed])
    )
    assert rows["eyeriss"]["goal_met"] is True and rows["pixel2"]["goal_met"] is None
    assert "| nb201 | eyeriss | 100 |" in (tmp_path / "t" / "table.md").read_text()
    # fitted on 20 networks, against the runs fitted on 100
    few = tmp_path / "few"
    args = ["bench", "latency", "--published", str(NB201), "--space", "nb201", "--fit", "20"]
    assert main([*args, "--seed", "0", "--out", str(few)]) == 0
    out = tmp_path / "t20"
    assert main(["bench", "latency-table", str(few), "--reference", *runs, "--out", str(out)]) == 0
    row = {r["device"]: r for r in json.loads((out / "table.json").read_text())["rows"]}["eyeriss"]
    assert row["n_fit"] == 20 and row["reference_n_fit"] == 100
    assert row["reference_kendall_tau"] == pytest.approx(rows["eyeriss"]["kendall_tau"])
    delta = row["kendall_tau"] - row["reference_kendall_tau"]
    assert (
        f"| {row['reference_kendall_tau']:.3f} (100) | {delta:+.3f} |"
        in (out / "table.md").read_text()
    )


def test_latency_search_keeps_the_budget_and_scores_the_front(tmp_path: Path) -> None:
    path = _pixel3_study(tmp_path, 10.0)
    truth = DATA / "nb201_test_acc.csv.gz"
    args = ["bench", "latency-search", str(path), "--truth", str(truth), "--seeds", "1"]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    record = json.loads((tmp_path / "out" / "search.json").read_text())
    (run,) = record["runs"]
    assert run["complete"] == 4 and run["within_budget"] and run["max_latency_ms"] <= 10.0
    assert 0.0 < run["hypervolume_ratio"] < 1.0
    assert 0.0 <= run["hypervolume_ratio_median_ref"] <= run["hypervolume_ratio"]
    assert record["best_in_budget_accuracy"] >= run["best_accuracy"]
