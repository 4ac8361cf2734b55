"""A user's own search space, named by import path (``space: my_blocks:MyBlocks``): the example
space of ``examples/custom_space`` (README, "Your own search space") passes the public contract
suite, a study runs on it end to end, and a path that does not resolve or a class that breaks
the contract is one line with exit code 2, with nothing stored lost."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import optuna
import pytest
from helpers import REPO_ROOT, write_study

from mote_optuna.cli import main
from mote_optuna.keys import ARCH_ATTR
from mote_optuna.spaces import SearchSpace, get_space
from mote_optuna.testing import SpaceContract

EXAMPLE = REPO_ROOT / "examples" / "custom_space"


@pytest.fixture
def example_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))


class TestMyBlocks(SpaceContract):
    space_path = "my_blocks:MyBlocks"
    equivalent = ("skip-conv3-conv5", "conv3-conv5-skip")

    @pytest.fixture
    def space(self, example_on_path: None) -> SearchSpace:
        return get_space(self.space_path)


def test_the_example_study_runs_end_to_end(
    example_on_path: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'my_blocks.db'}"
    argv = [str(EXAMPLE / "study.yaml"), "--set", f"storage={storage}"]
    assert main(["run", *argv]) == 0
    study = optuna.load_study(study_name="my_blocks", storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 8
    space = get_space("my_blocks:MyBlocks")
    for trial in complete:  # the space's own string, and real, positive scores
        assert space.to_str(space.from_params(trial.params)) == trial.user_attrs[ARCH_ATTR]
        assert trial.values[1] > 0 and trial.values[2] > 0
    assert main(["report", *argv]) == 0
    assert "Pareto front of 'my_blocks'" in capsys.readouterr().out


BROKEN = textwrap.dedent(
    """
    from my_blocks import MyBlocks

    class NoProxy(MyBlocks):
        build_proxy = None

    class NoResolution(MyBlocks):
        full_net = 32

    class WrongLogits(MyBlocks):
        def build_full(self, arch, *, num_classes=None):
            return super().build_full(arch, num_classes=3)

    class NeedsArgs(MyBlocks):
        def __init__(self, depth):
            pass
    """
)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("nowhere_module:Space", "cannot import nowhere_module"),
        ("broken_spaces:Missing", "broken_spaces has no class Missing"),
        ("broken_spaces:NoProxy", "missing method(s) build_proxy"),
        ("broken_spaces:NoResolution", "`full_net` is not a spaces.base.FullNetSpec"),
        ("broken_spaces:WrongLogits", "build_full gives logits (1, 3) for 1 image, not (1, 10)"),
        ("broken_spaces:NeedsArgs", "NeedsArgs() failed"),
        ("not a path", "or an import path module:Class, got 'not a path'"),
    ],
)
def test_a_bad_space_is_one_line_and_loses_nothing(
    example_on_path: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    path: str,
    message: str,
) -> None:
    (tmp_path / "broken_spaces.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    study_file = write_study(tmp_path / "study.yaml", n_trials=1)
    assert main(["run", str(study_file)]) == 0
    db = tmp_path / "study.db"
    before = db.read_bytes()
    capsys.readouterr()
    assert main(["run", str(study_file), "--set", f"space={path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert db.read_bytes() == before
    with sqlite3.connect(db) as con:  # the stored trial is still there
        assert con.execute("select count(*) from trials").fetchone() == (1,)
