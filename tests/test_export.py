"""Export: the --pick grammar, and a round trip of every format through the CLI.

The study here is a real SQLite study whose trials are added with ``study.add_trial`` (no MOTE
training, to keep the file fast): architectures with their FLOPs/params from the NB201 ground
truth table, and made-up MOTE values. The exported files are loaded back independently of the
export code and must give the built network's output on a fixed input.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from importlib import resources
from pathlib import Path

import onnx
import optuna
import pytest
import torch
from helpers import write_study
from onnx.reference import ReferenceEvaluator

from mote_optuna.cli import main
from mote_optuna.config import load_config
from mote_optuna.errors import UserError
from mote_optuna.export import (
    Condition,
    PickRule,
    build_network,
    parse_pick,
    pick_trial,
    train_script,
)
from mote_optuna.spaces import get_space

SPACE = get_space("nb201")
# (arch string, mote, flops, params): flops/params of the NB201 CIFAR-10 network
TRIALS = [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
     2.0, 220.1, 1.53),
    ("|skip_connect~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|nor_conv_1x1~1|skip_connect~2|",
     1.2, 51.0, 0.37),
    ("|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
     1.5, 82.5, 0.59),
    ("|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|nor_conv_3x3~1|avg_pool_3x3~2|",
     1.4, 121.8, 0.86),  # dominated by trial 2 on every objective
]  # fmt: skip


@pytest.fixture(scope="module")
def study_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    path = write_study(folder / "s.yaml", name="exp")
    config = load_config(path)
    study = optuna.create_study(
        study_name=config.name, storage=config.storage_url, directions=config.directions
    )
    for arch_str, mote, flops, params in TRIALS:
        arch = SPACE.from_str(arch_str)
        study.add_trial(
            optuna.trial.create_trial(
                params=SPACE.to_params(arch),
                distributions=SPACE.distributions(),
                values=[mote, flops, params],
                user_attrs={"arch": arch_str, "flops": flops, "params": params,
                            "landscape_term": mote / 2},
            )
        )  # fmt: skip
    return path


def test_parse_pick_grammar() -> None:
    assert parse_pick("max-mote flops<=100") == PickRule(
        "max", "mote", (Condition("flops", "<=", 100.0),)
    )
    rule = parse_pick(" min-params ,mote >= 1.3, flops<1e2 landscape_term!=0 ")
    assert rule.goal == "min" and rule.metric == "params"
    assert [str(c) for c in rule.conditions] == ["mote>=1.3", "flops<100", "landscape_term!=0"]
    for bad in ("", "mote", "best-mote", "max-mote flops", "max-mote flops<=x", "max-mote =5"):
        with pytest.raises(UserError, match="--pick"):
            parse_pick(bad)


def test_pick_from_the_pareto_front(study_file: Path) -> None:
    config = load_config(study_file)
    study = optuna.load_study(study_name=config.name, storage=config.storage_url)
    objectives = config.objectives
    assert pick_trial(study, objectives, parse_pick("max-mote")).number == 0
    assert pick_trial(study, objectives, parse_pick("max-mote flops<=100")).number == 2
    assert pick_trial(study, objectives, parse_pick("min-params")).number == 1
    assert pick_trial(study, objectives, parse_pick("max-landscape_term params<1")).number == 2
    # trial 3 is dominated, so no rule picks it even when it alone meets the conditions
    with pytest.raises(UserError, match="none of the 3 Pareto-front trials"):
        pick_trial(study, objectives, parse_pick("max-mote flops>100 flops<200"))
    with pytest.raises(UserError, match="unknown metric 'accuracy'"):
        pick_trial(study, objectives, parse_pick("max-accuracy"))


def _expected(arch_str: str, x: torch.Tensor) -> torch.Tensor:
    net = build_network(SPACE, SPACE.from_str(arch_str), seed=0)
    with torch.no_grad():
        return net(x)


@pytest.mark.parametrize("fmt", ["pytorch", "torchscript", "onnx"])
def test_export_round_trip(
    study_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    out = tmp_path / fmt
    args = ["export", str(study_file), "--format", fmt, "--out", str(out)]
    assert main([*args, "--pick", "max-mote flops<=100"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("trial 2 (picked by max-mote flops<=100)")
    meta = json.loads((out / "arch.json").read_text())
    assert meta["trial"] == 2 and meta["arch"] == TRIALS[2][0] and meta["format"] == fmt
    assert (out / "train.py").is_file()

    # ONNX runs in onnx's pure-Python reference evaluator: one image (also != the traced batch 2)
    batch = 1 if fmt == "onnx" else 3
    x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    expected = _expected(TRIALS[2][0], x)
    assert expected.std() > 0  # a non-degenerate output to compare
    model_file = out / meta["model_file"]
    if fmt == "pytorch":
        saved = torch.load(model_file, weights_only=True)
        net = SPACE.build_full(SPACE.from_str(saved["arch"])).eval()
        net.load_state_dict(saved["state_dict"])
        with torch.no_grad():
            got = net(x)
    elif fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            scripted = torch.jit.load(str(model_file))
        with torch.no_grad():
            got = scripted(x)
    else:
        model = onnx.load(str(model_file))
        onnx.checker.check_model(model, full_check=True)
        assert not list(out.glob("*.data"))  # one self-contained file
        (got_np,) = ReferenceEvaluator(model).run(None, {"images": x.numpy()})
        got = torch.from_numpy(got_np)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_export_by_trial_number_and_errors(
    study_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t3"
    base = ["export", str(study_file), "--out", str(out)]
    assert main([*base, "--trial", "3"]) == 0  # any trial by number, dominated or not
    assert json.loads((out / "arch.json").read_text())["arch"] == TRIALS[3][0]
    capsys.readouterr()
    assert main([*base, "--trial", "9"]) == 2
    assert "trials 0..3" in capsys.readouterr().err
    assert main([*base, "--pick", "max-mote flops<=10"]) == 2
    assert "flops 51..220.1" in capsys.readouterr().err


def test_training_script_runs(study_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "train"
    assert main(["export", str(study_file), "--trial", "1", "--out", str(out)]) == 0
    result = subprocess.run(
        [sys.executable, str(out / "train.py"), "--steps", "2", "--batch-size", "4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "step 2/2" in result.stdout and "training accuracy" in result.stdout
    trained = torch.load(out / "trained.pt", weights_only=True)
    initial = torch.load(out / "model.pt", weights_only=True)
    weight = "classifier.weight"
    assert not torch.equal(trained["state_dict"][weight], initial["state_dict"][weight])


def test_train_script_is_the_packaged_template_with_the_trial_filled_in() -> None:
    """``train.py`` is ``mote_optuna/templates/train.py`` (package data, linted like the code)."""
    template = (resources.files("mote_optuna") / "templates" / "train.py").read_text("utf-8")
    text = train_script({"trial": 7, "study": "s1", "arch": TRIALS[0][0]})
    assert text.splitlines()[0].startswith('"""Train the exported network of trial 7 of study s1')
    for placeholder in ("{TRIAL}", "{STUDY}", "{ARCH}"):
        assert placeholder in template and placeholder not in text
    compile(text, "train.py", "exec")
