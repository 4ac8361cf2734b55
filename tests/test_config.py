"""Malformed study files: one line naming file and field, exit code 2, storage untouched."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from helpers import REPO_ROOT, write_study

from mote_optuna.cli import main
from mote_optuna.config import config_from_dict, load_config
from mote_optuna.errors import ConfigError
from mote_optuna.estimators.names import ESTIMATOR_KINDS, SCORE_NAMES
from mote_optuna.sampler_names import SAMPLER_NAMES
from mote_optuna.samplers import SAMPLERS
from mote_optuna.spaces import SPACE_NAMES

GOOD = {
    "name": "t",
    "space": "nb201",
    "n_trials": 3,
    "estimator": {"budget": "tiny"},
    "dataset": {"name": "digits"},
}

# (description, study-file text or fields, --set overrides, words the error line must contain)
MALFORMED = [
    ("not yaml", "name: t\n  n_trials: [3", [], ["not valid YAML"]),
    ("not a mapping", "- name\n- t\n", [], ["must be a YAML mapping"]),
    ("no name", {"n_trials": 3}, [], ["name", "required"]),
    ("unknown field", {**GOOD, "n_trial": 3}, [], ["n_trial", "unknown field", "n_trials"]),
    ("negative budget", {**GOOD, "n_trials": -5}, [], ["n_trials", "positive"]),
    ("budget not a number", {**GOOD, "n_trials": "ten"}, [], ["n_trials", "integer"]),
    ("unknown sampler", {**GOOD, "sampler": {"name": "cmaes"}}, [], ["sampler.name", "nsga2"]),
    ("unknown metric", {**GOOD, "objectives": ["mote", "accuracy"]}, [], ["objectives[1]"]),
    ("zero epochs", {**GOOD, "estimator": {"epochs": 0}}, [], ["estimator.epochs", "positive"]),
    ("unknown formula", {**GOOD, "estimator": {"formula": "fancy"}}, [], ["estimator.formula"]),
    ("npz without path", {**GOOD, "dataset": {"name": "npz"}}, [], ["dataset.path", "required"]),
    ("bad storage", {**GOOD, "storage": "mysql://u@h/db"}, [], ["storage", "postgresql"]),
    (
        "bad sampler option",
        {**GOOD, "sampler": {"name": "nsga2", "options": {"bogus": 1}}},
        [],
        ["sampler.options.bogus", "population_size"],
    ),
    ("one landscape point", {**GOOD, "estimator": {"landscape_points": 1}}, [], ["landscape"]),
    ("unknown device", {**GOOD, "device": "tpu"}, [], ["device", "cuda"]),
    ("unknown space", {**GOOD, "space": "nb999"}, [], ["space", "nb201"]),
    ("bad --set syntax", GOOD, ["estimator.epochs"], ["--set", "FIELD=VALUE"]),
    ("bad --set value", GOOD, ["estimator.batch_size=big"], ["estimator.batch_size"]),
    ("missing npz file", {**GOOD, "dataset": {"name": "npz", "path": "nowhere.npz"}}, [], ["npz"]),
    ("empty file", "", [], ["must be a YAML mapping"]),
    ("only a comment", "# a study\n", [], ["must be a YAML mapping"]),
    ("a bare word", "quickstart\n", [], ["must be a YAML mapping"]),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", [], ["not a text file"]),
    ("latin-1 text", "name: caf\xe9\n".encode("latin-1"), [], ["not a text file", "UTF-8"]),
    ("tab indentation", "name: t\nsampler:\n\tname: tpe\n", [], ["not valid YAML"]),
    ("name with a slash", {**GOOD, "name": "a/b"}, [], ["name", "letters"]),
    ("empty name", {**GOOD, "name": ""}, [], ["name"]),
    ("name not a string", {**GOOD, "name": 7}, [], ["name", "string"]),
    ("fractional budget", {**GOOD, "n_trials": 2.5}, [], ["n_trials", "integer"]),
    ("budget true", {**GOOD, "n_trials": True}, [], ["n_trials", "integer"]),
    ("unknown count", {**GOOD, "count": "cells"}, [], ["count", "distinct"]),
    ("sampler a list", {**GOOD, "sampler": ["tpe"]}, [], ["sampler", "mapping"]),
    ("sampler seed a word", {**GOOD, "sampler": {"seed": "one"}}, [], ["sampler.seed"]),
    ("population of one", {**GOOD, "sampler": {"population_size": 1}}, [], ["population_size"]),
    ("no objectives", {**GOOD, "objectives": []}, [], ["objectives", "at least one"]),
    ("objectives a word", {**GOOD, "objectives": "mote"}, [], ["objectives", "list"]),
    ("objective twice", {**GOOD, "objectives": ["mote", "mote"]}, [], ["objectives", "once"]),
    ("mote and ensemble", {**GOOD, "objectives": ["mote", "ensemble"]}, [], ["pick one"]),
    ("unknown budget", {**GOOD, "estimator": {"budget": "huge"}}, [], ["estimator.budget"]),
    ("negative lr", {**GOOD, "estimator": {"lr": -0.1}}, [], ["estimator.lr", "positive"]),
    ("table without file", {**GOOD, "estimator": {"kind": "table"}}, [], ["estimator.table"]),
    ("tiny calibration", {**GOOD, "estimator": {"calibration": {"population": 2}}}, [], ["3"]),
    ("negative max_flops", {**GOOD, "constraints": {"max_flops": -1}}, [], ["max_flops"]),
    ("unknown constraint", {**GOOD, "constraints": {"max_energy": 1}}, [], ["max_energy"]),
    ("latency budget alone", {**GOOD, "constraints": {"max_latency_ms": 5}}, [], ["latency:"]),
    ("unknown runtime", {**GOOD, "latency": {"runtime": "tpu"}}, [], ["latency.runtime"]),
    ("unknown dataset", {**GOOD, "dataset": {"name": "mnist"}}, [], ["dataset.name"]),
    ("storage a number", {**GOOD, "storage": 5}, [], ["storage", "string"]),
    ("storage without scheme", {**GOOD, "storage": "studies/t.db"}, [], ["storage", "sqlite"]),
    ("zero heartbeat", {**GOOD, "workers": {"heartbeat_interval": 0}}, [], ["heartbeat"]),
    ("device a number", {**GOOD, "device": 0}, [], ["device"]),
    ("unknown section", {**GOOD, "search": {"n": 3}}, [], ["search", "unknown field"]),
    ("--set unknown field", GOOD, ["estimator.epoch=3"], ["estimator.epoch", "unknown field"]),
    ("--set into a value", GOOD, ["n_trials.max=3"], ["n_trials", "not a section"]),
]


@pytest.fixture
def stored_db(tmp_path: Path) -> Path:
    """A real SQLite study database with one finished trial, to prove nothing touches it."""
    db = tmp_path / "study.db"
    study = optuna.create_study(study_name="t", storage=f"sqlite:///{db}")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    return db


@pytest.mark.parametrize(
    ("what", "content", "overrides", "words"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_malformed_study_file(
    what: str,
    content: object,
    overrides: list[str],
    words: list[str],
    tmp_path: Path,
    stored_db: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "bad.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        fields = {"storage": f"sqlite:///{stored_db}", **content}
        path.write_text(__import__("yaml").safe_dump(fields))
    before = hashlib.sha256(stored_db.read_bytes()).hexdigest()
    argv = ["run", str(path)] + [arg for item in overrides for arg in ("--set", item)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    for word in words:
        assert word in err[0], (word, err[0])
    if isinstance(content, dict) or "bad.yaml" in err[0]:
        assert str(path) in err[0] or "--set" in err[0] or "npz" in err[0]
    assert hashlib.sha256(stored_db.read_bytes()).hexdigest() == before


def test_exit_code_and_single_line_from_the_real_command(tmp_path: Path) -> None:
    path = write_study(tmp_path / "bad.yaml", n_trials=0)
    done = subprocess.run(
        [sys.executable, "-m", "mote_optuna", "run", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {path}: n_trials: must be a positive number, got 0"


def test_overrides_are_validated_like_the_file(tmp_path: Path) -> None:
    path = write_study(tmp_path / "s.yaml")
    config = load_config(
        path,
        ["estimator.epochs=5", "dataset.name=npz", "dataset.path=x.npz", "n_trials=30"],
    )
    assert (config.estimator.epochs, config.n_trials) == (5, 30)
    assert (config.dataset.name, config.dataset.path) == ("npz", "x.npz")
    assert config.storage_url.startswith("sqlite:///")


def test_exponent_floats_that_yaml_reads_as_strings(tmp_path: Path) -> None:
    """PyYAML 1.1 reads 1e-3 (no dot) as a string; a number field takes it as the number."""
    path = tmp_path / "s.yaml"
    path.write_text("name: t\nestimator:\n  lr: 1e-3\nconstraints:\n  max_flops: 2E+2\n")
    config = load_config(path, ["evaluation.weight_decay=5e-4"])
    assert config.estimator.lr == 1e-3 and config.constraints.max_flops == 200.0
    assert config.evaluation.weight_decay == 5e-4
    for bad in ("estimator.lr=fast", "estimator.lr=nan", "constraints.max_flops=inf"):
        with pytest.raises(ConfigError, match="expected a number"):
            load_config(path, [bad])


def test_default_storage_is_a_sqlite_file_named_after_the_study(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: demo\n")
    config = load_config(path)
    assert config.storage_url == "sqlite:///studies/demo.db"
    assert config.directions == ["maximize", "minimize", "minimize"]


@pytest.mark.parametrize(
    ("fields", "dotted", "names"),
    [
        ({"space": "nb999"}, "space", SPACE_NAMES),
        ({"sampler": {"name": "cmaes"}}, "sampler.name", SAMPLER_NAMES),
        ({"estimator": {"kind": "oracle"}}, "estimator.kind", ESTIMATOR_KINDS),
        ({"objectives": ["accuracy"]}, "objectives[0]", (*SCORE_NAMES, "flops", "params")),
    ],
)
def test_allowed_names_come_from_the_registries(
    fields: dict[str, object], dotted: str, names: tuple[str, ...]
) -> None:
    with pytest.raises(ConfigError) as error:
        config_from_dict({**GOOD, **fields}, "s.yaml")
    assert str(error.value).startswith(f"s.yaml: {dotted}: ")
    for name in names:
        assert name in str(error.value), name


def test_every_registered_name_is_accepted() -> None:
    for space in SPACE_NAMES:
        assert config_from_dict({**GOOD, "space": space}).space == space
    assert tuple(SAMPLERS) == SAMPLER_NAMES  # config validates against the names alone
    for sampler in SAMPLER_NAMES:
        assert config_from_dict({**GOOD, "sampler": sampler}).sampler.name == sampler
    for kind in ESTIMATOR_KINDS:
        estimator = {"kind": kind, "table": "scores.csv"}
        assert config_from_dict({**GOOD, "estimator": estimator}).estimator.kind == kind
