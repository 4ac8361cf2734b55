"""This machine's fitted latency model: whole networks timed in fresh processes, then fitted;
``latency build --mode fitted``; a study records the model and refuses to resume with another."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import write_study
from optuna.trial import TrialState

from mote_optuna.cli import main
from mote_optuna.config import load_config
from mote_optuna.errors import UserError
from mote_optuna.latency import get_runtime
from mote_optuna.latency.fitted import AdditiveLatencyModel, latency_features
from mote_optuna.latency.machine_model import (
    MachineModel,
    build_model,
    load_model,
    time_in_fresh_processes,
)
from mote_optuna.spaces import get_space
from mote_optuna.study import run_study

TORCH = get_runtime("torch", threads=1)


def test_sessions_are_fresh_processes_that_time_every_network() -> None:
    space = get_space("nb201")
    archs = [space.sample(np.random.default_rng(s)) for s in range(3)]
    timings = time_in_fresh_processes(space, TORCH, archs, sessions=2, warmup=1, runs=2)
    assert timings.shape == (3, 2) and (timings > 0).all()


def test_built_model_predicts_from_latency_features_and_refuses_foreign_files(
    tmp_path: Path,
) -> None:
    space = get_space("nb201")
    model = build_model(space, TORCH, networks=4, sessions=2, warmup=1, runs=2)
    assert len(model.archs) == len(set(model.archs)) == 4
    assert np.array(model.timings_ms).shape == (4, 2)
    archs = [space.from_str(a) for a in model.archs]
    # the weights are the additive fit on the median over the fresh processes
    again = AdditiveLatencyModel.fit(
        [latency_features(space, a) for a in archs], np.median(model.timings_ms, axis=1)
    )
    assert again.weights == pytest.approx(model.weights)
    arch = space.sample(np.random.default_rng(9))
    assert model.predict(space, arch) == pytest.approx(
        again.predict(latency_features(space, arch))
    )
    path = tmp_path / "model.json"
    model.save(path)
    loaded = load_model(space, TORCH, path)
    assert loaded.digest == model.digest and loaded.describe()["networks"] == 4
    raw = json.loads(path.read_text())
    raw["key"]["machine"]["cpu"] = "Some Other CPU"
    path.write_text(json.dumps(raw))
    with pytest.raises(UserError, match=r"another setup: machine .*Some Other CPU.*--mode fitted"):
        load_model(space, TORCH, path)
    with pytest.raises(UserError, match="is for space nb201, not nb101"):
        model.save(path)
        load_model(get_space("nb101"), TORCH, path)
    with pytest.raises(UserError, match="no fitted latency model for nb201"):
        load_model(space, TORCH, tmp_path / "missing.json")


def test_cli_builds_and_then_reuses_a_fitted_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.json"
    argv = ["latency", "build", "--space", "nb201", "--runtime", "torch", "--mode", "fitted",
            "--networks", "3", "--sessions", "1", "--warmup", "1", "--runs", "2",
            "--table", str(path)]  # fmt: skip
    assert main(argv) == 0
    assert "fitted on 3 networks x 1 fresh processes" in capsys.readouterr().out
    built = path.stat().st_mtime_ns
    assert main(argv) == 0
    assert "exists (3 networks); --force refits it" in capsys.readouterr().out
    assert path.stat().st_mtime_ns == built


def test_study_records_its_fitted_model_and_refuses_another(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    latency = {"runtime": "torch", "mode": "fitted", "networks": 3, "sessions": 1,
               "warmup": 1, "runs": 2, "table": str(path)}  # fmt: skip
    study_file = write_study(
        tmp_path / "s.yaml", n_trials=1, objectives=["mote", "latency"], latency=latency
    )
    study = run_study(load_config(study_file), out=lambda s: None)  # builds the model
    model = MachineModel.load(path)
    space = get_space("nb201")
    (trial,) = study.get_trials(states=(TrialState.COMPLETE,))
    assert trial.values[1] == model.predict(space, space.from_str(trial.user_attrs["arch"]))
    meta = study.user_attrs["mote_optuna"]["latency"]
    assert meta["mode"] == "fitted" and meta["fitted"]["digest"] == model.digest
    assert meta["fitted"]["networks"] == 3 and meta["fitted"]["cpu"] == model.key["machine"]["cpu"]
    # the same study with a model refitted on other timings is refused
    model.timings_ms = [[t * (1 + i) for t in row] for i, row in enumerate(model.timings_ms)]
    archs = [space.from_str(a) for a in model.archs]
    model.weights = AdditiveLatencyModel.fit(
        [latency_features(space, a) for a in archs], np.median(model.timings_ms, axis=1)
    ).weights
    model.save(path)
    assert os.path.getsize(path) > 0
    with pytest.raises(UserError, match=r"latency\.fitted\.digest: stored"):
        run_study(load_config(study_file), out=lambda s: None)
