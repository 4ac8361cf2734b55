"""Latency: the table (build, reuse, invalidation), the constraint, the objective end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from helpers import write_study
from optuna.trial import TrialState

from mote_optuna.cli import main
from mote_optuna.config import load_config
from mote_optuna.errors import ConfigError, UserError
from mote_optuna.export import export_trial
from mote_optuna.latency import LatencyMeter, build_table, get_runtime, load_table
from mote_optuna.latency.table import LatencyTable, default_path
from mote_optuna.latency.units import full_network, input_shape, units
from mote_optuna.objective import Objective
from mote_optuna.report import write_report
from mote_optuna.spaces import get_space
from mote_optuna.spaces.base import FullNetSpec
from mote_optuna.spaces.nb201 import NB201Space, TinyNetwork
from mote_optuna.study import run_study

TORCH = get_runtime("torch", threads=1)


class TinySpace(NB201Space):
    """NB201 cells in a 4-channel, 1-cell-per-stage network at 8x8: a table in a second."""

    name = "tiny201"
    full_net = FullNetSpec(resolution=8, num_classes=3)

    def build_full(self, arch, *, num_classes=None):  # type: ignore[override]
        return TinyNetwork(arch, num_classes=3, channels=4, cells=1)


def _tiny_table(**kwargs: object) -> LatencyTable:
    return build_table(TinySpace(), TORCH, warmup=1, runs=3, calibration_archs=2, **kwargs)


def test_table_build_predicts_the_sum_of_its_entries(tmp_path: Path) -> None:
    space = TinySpace()
    table = _tiny_table()
    # one entry per (operation, input shape): every op of the cell at each stage's shape
    assert any(k.startswith("ReLUConvBN(relu conv3x3/s1 8>8 bn) @ 1x8x4x4") for k in table.entries)
    assert all(v >= 0 for v in table.entries.values()) and len(table.calibration) == 2
    arch = space.sample(np.random.default_rng(3))
    keys = [u.key for u in units(full_network(space, arch), input_shape(space))]
    assert table.predict(space, arch) == pytest.approx(
        sum(table.entries[k] for k in keys) + table.overhead_ms
    )
    assert table.predict(space, arch) == table.predict(space, arch)  # a pure lookup
    path = tmp_path / "t.json"
    table.save(path)
    again = load_table(space, TORCH, path)
    assert again.digest == table.digest and again.predict(space, arch) == table.predict(
        space, arch
    )


def test_table_is_reused_and_rebuilt_when_its_key_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    space = TinySpace()
    meter = LatencyMeter(space, TORCH, warmup=1, runs=3, out=lambda s: None)
    path = default_path(space, TORCH)
    assert meter.table_path == path and path.is_file()
    assert str(tmp_path / "cache" / "mote_optuna" / "latency" / "torch-") in str(path)
    built = path.stat().st_mtime_ns
    reused = LatencyMeter(space, TORCH, warmup=1, runs=3, out=pytest.fail)  # no rebuild
    assert path.stat().st_mtime_ns == built and reused.table.digest == meter.table.digest
    # another key (threads, runtime, versions, machine) is another cache file
    two = get_runtime("torch", threads=2, clock="wall")
    assert default_path(space, two) != path
    # a table whose key differs from this machine's is refused, with how to rebuild it
    raw = json.loads(path.read_text())
    raw["key"]["machine"]["cpu"] = "Some Other CPU"
    raw["key"]["versions"]["torch"] = "0.0.1"
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps(raw))
    with pytest.raises(UserError, match=r"another setup.*Some Other CPU.*latency build"):
        load_table(space, TORCH, foreign)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"objectives": ["mote", "latency"]}, "objectives: latency needs a latency: section"),
        ({"constraints": {"max_latency_ms": 5}}, "max_latency_ms needs a latency: section"),
        ({"latency": {"runtime": "tflite"}}, "latency.runtime: expected one of"),
    ],
)
def test_bad_latency_settings_are_one_line_errors(
    tmp_path: Path, fields: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write_study(tmp_path / "s.yaml", **fields))


def test_cli_refuses_missing_onnxruntime_and_foreign_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    assert main(["latency", "build", "--space", "nb201", "--runtime", "onnxruntime"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "needs the onnxruntime package" in err
    assert main(["latency", "build", "--space", "nb201", "--runtime", "tpu"]) == 2
    assert "runtime 'tpu' is unknown" in capsys.readouterr().err
    table = _tiny_table()
    table.space = "nb201"
    table.key = {**table.key, "runtime": "onnxruntime"}
    path = tmp_path / "t.json"
    table.save(path)
    assert main(["latency", "build", "--space", "nb201", "--table", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "another setup: runtime onnxruntime (here torch)" in err
    assert "rebuild it here: python -m mote_optuna latency build" in err


def _nb201_table(path: Path) -> Path:
    """A real NB201 table on torch, timed briefly (the values only need to be consistent)."""
    build_table(get_space("nb201"), TORCH, warmup=1, runs=3, calibration_archs=1).save(path)
    return path


def test_latency_constraint_rejects_before_training(tmp_path: Path) -> None:
    table = _nb201_table(tmp_path / "table.json")
    latency = {"runtime": "torch", "table": str(table)}
    config = load_config(
        write_study(tmp_path / "s.yaml", latency=latency, constraints={"max_latency_ms": 1e-3})
    )
    space = get_space("nb201")

    class NeverTrains:
        def describe(self) -> dict:
            return {}

        def evaluate(self, space: object, arch: object) -> object:
            pytest.fail("a candidate over the latency budget was trained")

    objective = Objective(config, space, NeverTrains())  # type: ignore[arg-type]
    objective.latency = LatencyMeter.from_config(config.latency, space)
    study = optuna.create_study(directions=config.directions)
    study.optimize(objective, n_trials=2)
    for trial in study.trials:
        assert trial.state == TrialState.PRUNED
        assert trial.user_attrs["fail_reason"].startswith("over budget: latency_ms")
        assert trial.constraints["max_latency_ms"] == pytest.approx(
            trial.user_attrs["latency"] - 1e-3
        )


def test_latency_objective_end_to_end_at_tiny_budget(tmp_path: Path) -> None:
    table = _nb201_table(tmp_path / "table.json")
    latency = {"runtime": "torch", "table": str(table)}
    path = write_study(
        tmp_path / "s.yaml", n_trials=2, objectives=["mote", "latency"], latency=latency
    )
    config = load_config(path)
    study = run_study(config, out=lambda s: None)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 2
    space = get_space("nb201")
    stored = LatencyTable.load(table)
    for trial in done:
        arch = space.from_str(trial.user_attrs["arch"])
        assert trial.values[1] == trial.user_attrs["latency"] == stored.predict(space, arch)
    meta = study.user_attrs["mote_optuna"]["latency"]
    assert meta["mode"] == "table" and meta["runtime"] == "torch"
    assert meta["table"]["digest"] == stored.digest
    from optuna_dashboard import get_note

    assert f"table {stored.digest}" in get_note(study)
    # the report shows latency like the other objectives, and another study's front beside it
    other = load_config(path)
    paths = write_report(study, config, tmp_path / "report", compare=[(other, study)])
    page = paths["html"].read_text()
    assert "Latency in milliseconds" in page and "Fronts compared" in page
    assert "latency" in paths["pareto"].read_text().splitlines()[0]
    exported = export_trial(study, config, done[0], fmt="pytorch", out=tmp_path / "export")
    record = json.loads(exported.paths["arch"].read_text())
    assert record["values"]["latency"] == record["latency"]["ms"] == done[0].values[1]
    assert record["latency"]["table"]["digest"] == stored.digest
    # a study stays with one mode: resuming with measured latency is refused
    measured = load_config(path)
    measured.latency.mode, measured.latency.table = "measured", None
    with pytest.raises(UserError, match=r"latency\.mode: stored 'table', now 'measured'"):
        run_study(measured, out=lambda s: None)


def test_bench_latency_compares_table_and_flops_with_measurements(tmp_path: Path) -> None:
    from mote_optuna.bench.latency import bench_space

    space = TinySpace()
    _tiny_table().save(tmp_path / "t.json")
    meter = LatencyMeter(space, TORCH, table=tmp_path / "t.json", build_missing=False)
    out = bench_space(space, meter, n=5, seed=0, warmup=1, runs=2, passes=2)
    summary, frame = out["summary"], out["frame"]
    assert summary["n"] == len(frame) == 5
    for result in (summary, summary["drift_corrected"]):
        assert -1 <= result["table"]["kendall_tau"] <= 1
        assert result["table"]["mean_relative_error"] >= 0
        assert -1 <= result["flops"]["kendall_tau"] <= 1
        assert -1 <= result["pass_kendall_tau"] <= 1
    assert (frame["measured_ms"] > 0).all() and (frame["lookup_us"] > 0).all()
