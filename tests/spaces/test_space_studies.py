"""NB101, MobileNetV3 and OFA-MobileNetV3 studies end to end, and the Box-Cox calibration.

Real MOTE training at the ``tiny`` budget on digits, random sampler, SQLite: a study completes,
resumes to more trials and reports a Pareto front; a space without published constants calibrates
once (stored in the study, reused on resume, race-safe between workers); invalid NB101 graphs
end PRUNED before any training (the FLOPs budget of every space: tests/contract/
test_constraints.py).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from helpers import REPO_ROOT, UNIT_BOXCOX, CountingEstimator, write_study
from optuna.trial import TrialState
from scipy import stats

from mote_optuna import study as study_module
from mote_optuna.calibration import calibration_for
from mote_optuna.cli import main
from mote_optuna.config import config_from_dict, load_config
from mote_optuna.cost import Cost
from mote_optuna.estimators.boxcox import BoxCoxConstants, dominance_warning, fit_boxcox
from mote_optuna.estimators.contract import Evaluation
from mote_optuna.estimators.mote import MoteResult, combine_code
from mote_optuna.estimators.registry import make_estimator
from mote_optuna.estimators.settings import CalibrationConfig
from mote_optuna.keys import CALIBRATION_ATTR
from mote_optuna.objective import Objective
from mote_optuna.spaces import get_space
from mote_optuna.spaces.nb101 import NB101Space
from mote_optuna.spaces.nb201 import NB201Space
from mote_optuna.warmup import LOCK_SUFFIX, ensure_calibrated


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One torch thread: on a shared CPU, two threads of these tiny models run ~20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr(study_module, "configure_threads", lambda *_: torch.set_num_threads(1))
    yield
    torch.set_num_threads(before)


def _study(path: Path) -> optuna.Study:
    config = load_config(path)
    return optuna.load_study(study_name=config.name, storage=config.storage_url)


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(TrialState.COMPLETE,))


def _warmups(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.user_attrs.get("calibration_warmup")]


def test_every_study_file_validates() -> None:
    files = sorted((REPO_ROOT / "studies").glob("*.yaml"))
    names = {f.name for f in files}
    assert {"nb101_cifar100_rd.yaml", "mbv3_imagenet_400m.yaml"} <= names
    for path in files:  # with the overrides a file's header documents (e.g. a table's path)
        load_config(path, re.findall(r"--set (\S+)", path.read_text()))
    mbv3 = load_config(REPO_ROOT / "studies" / "mbv3_imagenet_400m.yaml")
    assert mbv3.constraints.max_flops == 400 and mbv3.dataset.name == "cifar100-rd"
    assert get_space(mbv3.space).full_net.resolution == 224
    assert get_space(mbv3.space).full_net.num_classes == 1000


@pytest.mark.parametrize(
    ("space", "n_trials", "more", "population"),
    [("mobilenetv3", 10, 12, 5), ("mobilenetv3-ofa", 5, 6, 3)],
)
def test_mobilenet_study_calibrates_once_and_resumes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    space: str,
    n_trials: int,
    more: int,
    population: int,
) -> None:
    path = write_study(
        tmp_path / "s.yaml",
        space=space,
        n_trials=n_trials,
        estimator={"budget": "tiny", "calibration": {"population": population, "seed": 0}},
    )
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"calibration: scoring {population} warm-up candidates" in out
    assert f"[{n_trials:>4}/{n_trials}]" in out and "Pareto front" in out
    study = _study(path)
    record = study.user_attrs[CALIBRATION_ATTR]
    assert record["scored"] == population and record["population"] == population
    assert len(_complete(study)) == n_trials
    warmups = _warmups(study)
    assert len(warmups) == population
    assert [t.number for t in warmups] == list(range(population))  # before any sampled trial
    constants = BoxCoxConstants(**record["constants"])
    for trial in warmups:  # valued with the fitted constants, like every later trial
        expected = combine_code(
            trial.user_attrs["landscape_term"], trial.user_attrs["speed_term"], constants
        )
        assert trial.values[0] == pytest.approx(expected)
    # the resume check names the calibration, never the fitted values
    assert study.user_attrs["mote_optuna"]["estimator"]["calibration"] == {
        "population": population,
        "seed": 0,
    }
    assert study.user_attrs["mote_optuna"]["estimator"]["boxcox"] is None

    first = {t.number: t.values for t in _complete(study)}
    assert main(["run", str(path), "--set", f"n_trials={more}"]) == 0
    out = capsys.readouterr().out
    assert "calibration: scoring" not in out and "warm-up" not in out
    assert "using the study's Box-Cox constants" in out
    study = _study(path)
    assert study.user_attrs[CALIBRATION_ATTR] == record  # stored once, unchanged
    assert len(_warmups(study)) == population
    assert len(_complete(study)) == more
    assert {t.number: t.values for t in _complete(study) if t.number in first} == first
    names = [s.study_name for s in optuna.get_all_study_summaries(load_config(path).storage_url)]
    assert names == ["t"]  # the calibration lock is gone


def test_nb101_study_resumes_and_prunes_invalid_graphs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path / "s.yaml", space="nb101", n_trials=10)
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "calibration" not in out  # NB101 has the authors' published constants
    assert "[  10/10]" in out and "Pareto front" in out
    study = _study(path)
    assert CALIBRATION_ATTR not in study.user_attrs
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, "uniform random NB101 params give invalid graphs (e.g. > 9 edges)"
    for trial in pruned:
        assert trial.user_attrs["fail_reason"].startswith("invalid architecture: ")
        assert "flops" not in trial.user_attrs and "landscape_term" not in trial.user_attrs
    first = {t.number: t.values for t in _complete(study)}
    assert main(["run", str(path), "--set", "n_trials=12"]) == 0
    study = _study(path)
    assert len(_complete(study)) == 12
    assert {t.number: t.values for t in _complete(study) if t.number in first} == first


def _config(tmp_path: Path, **fields: Any) -> Any:
    raw = {
        "name": "t",
        "storage": f"sqlite:///{tmp_path / 'study.db'}",
        "sampler": {"name": "random", "seed": 0},
        "estimator": {"budget": "tiny"},
        "dataset": {"name": "digits"},
        "device": "cpu",
        **fields,
    }
    return config_from_dict(raw)


def test_invalid_nb101_graph_is_pruned_before_training(tmp_path: Path) -> None:
    config = _config(tmp_path, space="nb101")
    space = get_space("nb101")
    estimator = CountingEstimator(make_estimator(config, space))
    study = optuna.create_study(directions=config.directions)
    params = space.to_params(space.sample(np.random.default_rng(0)))
    no_path = {name: 0 for name in params if name.startswith("e_")}  # no edges at all
    too_many = {name: 1 for name in params if name.startswith("e_")}  # 21 edges
    study.enqueue_trial({**params, **no_path})
    study.enqueue_trial({**params, **too_many})
    study.optimize(Objective(config, space, estimator), n_trials=2)
    reasons = [t.user_attrs["fail_reason"] for t in study.trials]
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    assert reasons[0] == "invalid architecture: no path from the input to the output vertex"
    assert "edges after pruning" in reasons[1] and "allows 9" in reasons[1]
    assert estimator.calls == 0


def test_calibration_defaults() -> None:
    nb101, mbv3 = get_space("nb101"), get_space("mobilenetv3")
    plain = config_from_dict({"name": "t"})
    assert calibration_for(plain.estimator, nb101) is None  # published constants
    assert calibration_for(plain.estimator, mbv3) == CalibrationConfig(population=20, seed=0)
    asked = config_from_dict({"name": "t", "estimator": {"calibration": {"population": 8}}})
    assert calibration_for(asked.estimator, nb101) == CalibrationConfig(population=8, seed=0)
    given = config_from_dict({"name": "t", "estimator": {"boxcox": UNIT_BOXCOX}})
    assert calibration_for(given.estimator, mbv3) is None  # the study file's constants win


def test_dominance_warning() -> None:
    assert dominance_warning(NB201Space.published_boxcox) == ""
    assert "speed term decides" in dominance_warning(NB101Space.published_boxcox)  # ratio 36
    tiny = dominance_warning(BoxCoxConstants(70.5, 3.6e5, 5.6, 2.9))  # 5 candidates, tiny budget
    assert "landscape term decides" in tiny and "λ_L and λ_S beyond ±5" in tiny


def test_fit_boxcox_is_scipy_mle_and_std() -> None:
    rng = np.random.default_rng(0)
    landscape, speed = rng.lognormal(1.5, 0.2, 40), rng.lognormal(1.0, 0.3, 40)
    fitted = fit_boxcox(landscape, speed)
    t_l, lam_l = stats.boxcox(landscape)
    t_s, lam_s = stats.boxcox(speed)
    assert fitted == BoxCoxConstants(lam_l, float(np.std(t_l)), lam_s, float(np.std(t_s)))


class FakeProxy:
    """Raw terms without training (deterministic per arch), counting the warm-up scorings."""

    fits = "Box-Cox constants"

    def __init__(self, calibration: CalibrationConfig, delay: float = 0.0) -> None:
        self.calibration = calibration
        self.constants: BoxCoxConstants | None = None
        self.delay = delay
        self.scored = 0

    def raw_terms(self, space: Any, arch: Any) -> MoteResult:
        self.scored += 1
        threading.Event().wait(self.delay)
        h = int(space.key(arch)[:8], 16) / 16**8
        return MoteResult(
            mote=float("nan"),
            landscape=3.0 + h,
            speed=2.0 + h * h,
            train_losses=[1.0],
            landscape_losses=[1.0],
            train_seconds=0.0,
            clock=1.0,
        )

    def describe_raw(self, raw: MoteResult) -> str:
        return f"landscape {raw.landscape:.4g}"

    def fit(self, raws: list[MoteResult]) -> tuple[dict[str, Any], str]:
        fitted = fit_boxcox([r.landscape for r in raws], [r.speed for r in raws])
        return vars(fitted), ""

    def load(self, fitted: dict[str, Any]) -> None:
        self.constants = BoxCoxConstants(**fitted)

    def describe_fitted(self) -> str:
        return str(self.constants)

    def finish(self, raw: MoteResult) -> Evaluation:
        assert self.constants is not None
        return Evaluation({"mote": combine_code(raw.landscape, raw.speed, self.constants)})


def _cost(arch: Any) -> Any:
    return Cost(flops=1.0, params=1.0)


def test_concurrent_workers_calibrate_once(tmp_path: Path) -> None:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "journal.log"))
    )
    config = _config(tmp_path, space="nb101", storage=f"journal:{tmp_path / 'journal.log'}")
    space = get_space("nb101")
    calibration = CalibrationConfig(population=6, seed=0)
    workers = [FakeProxy(calibration, delay=0.05) for _ in range(3)]
    results: list[dict[str, Any] | None] = [None] * 3
    lines: list[str] = []

    def work(i: int) -> None:
        study = optuna.load_study(study_name="t", storage=storage)
        results[i] = ensure_calibrated(
            study, storage, config, space, workers[i], _cost, out=lines.append
        )

    optuna.create_study(study_name="t", storage=storage, directions=config.directions)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(w.scored for w in workers) == [0, 0, 6]  # one worker calibrated
    assert results[0] is not None and results[0] == results[1] == results[2]
    assert all(w.constants == BoxCoxConstants(**results[0]) for w in workers)
    study = optuna.load_study(study_name="t", storage=storage)
    assert len(_warmups(study)) == 6 and len(study.trials) == 6
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == ["t"]
    assert sum("waiting for" in line for line in lines) == 2


def test_stale_lock_of_a_stopped_worker_is_taken_over(tmp_path: Path) -> None:
    storage = optuna.storages.InMemoryStorage()
    config = _config(tmp_path, space="nb101")
    space = get_space("nb101")
    study = optuna.create_study(study_name="t", storage=storage, directions=config.directions)
    dead = storage.create_new_study(
        [optuna.study.StudyDirection.MINIMIZE], study_name="t" + LOCK_SUFFIX
    )
    storage.set_study_user_attr(dead, "owner", "host:1")
    storage.set_study_user_attr(dead, "heartbeat", "1/6 at 0")
    proxy = FakeProxy(CalibrationConfig(population=4, seed=1))
    lines: list[str] = []
    constants = ensure_calibrated(
        study, storage, config, space, proxy, _cost, out=lines.append, stale_after_s=0.2
    )
    assert constants is not None and proxy.scored == 4
    assert any("lock held by host:1 is stale" in line for line in lines)
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == ["t"]
