"""The zero-cost proxies, the ``ensemble`` objective and its reference scale (issue 10)."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from helpers import write_study
from scipy.stats import norm
from torch import nn

from mote_optuna.cli import main
from mote_optuna.config import load_config
from mote_optuna.cost import measure
from mote_optuna.data import load_arrays
from mote_optuna.estimators import az_nas, proxies
from mote_optuna.estimators.ensemble import (
    CANDIDATES,
    MOTE_TERMS,
    RULE,
    Component,
    EnsembleEstimator,
    EnsembleRule,
    agreeing,
    ensemble_value,
    fit_reference,
)
from mote_optuna.estimators.zero_cost import ZeroCostTerms, proxy_batch
from mote_optuna.keys import CALIBRATION_ATTR
from mote_optuna.objective import Objective
from mote_optuna.spaces import get_space
from mote_optuna.spaces.base import truth_of
from mote_optuna.warmup import ensure_calibrated

# --------------------------------------------------------------------------------------------
# proxies on cases that can be checked by hand


def test_isotropy_entropy_of_isotropic_and_rank_one_features() -> None:
    a = torch.tensor([1.0, -1.0, 1.0, -1.0])
    b = torch.tensor([1.0, 1.0, -1.0, -1.0])  # uncorrelated with a, same variance
    isotropic = torch.stack([a, b]).reshape(1, 2, 1, 4)
    assert az_nas.isotropy_entropy(isotropic) == pytest.approx(math.log(2))
    rank_one = torch.stack([a, 2 * a]).reshape(1, 2, 1, 4)
    assert az_nas.isotropy_entropy(rank_one) == pytest.approx(0.0, abs=1e-12)


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class Blocks(nn.Module):
    """A network of weightless blocks: the Jacobian of each is known."""

    def __init__(self, *blocks: nn.Module) -> None:
        super().__init__()
        self.stem = nn.Identity()
        self.cells = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cells(self.stem(x))


def test_az_nas_real_on_blocks_with_known_jacobians() -> None:
    x = torch.randn(8, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    entropy = az_nas.isotropy_entropy(x)
    identity = az_nas.az_nas_real(Blocks(nn.Identity(), nn.Identity()), x, torch.Generator())
    assert identity["azr_expressivity"] == pytest.approx(3 * entropy)  # stem + 2 blocks
    assert identity["azr_progressivity"] == pytest.approx(0.0, abs=1e-12)
    assert identity["azr_trainability"] == pytest.approx(0.0)  # σ = 1: 2 - 1 - 1
    doubled = az_nas.az_nas_real(Blocks(Scale(2.0), Scale(2.0)), x, torch.Generator())
    assert doubled["azr_trainability"] == pytest.approx(2 - 2 - 0.5)  # σ = 2
    assert doubled["azr_expressivity"] == pytest.approx(3 * entropy)  # scale-free


def test_meco_of_uncorrelated_and_duplicated_channels() -> None:
    image = torch.zeros(1, 3, 2, 2)
    image[0, 0] = torch.tensor([[1.0, -1.0], [1.0, -1.0]])
    image[0, 1] = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])  # Pearson r = 0 with channel 0
    conv = nn.Conv2d(3, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = 1.0
        conv.weight[1, 1] = 1.0
    assert proxies.meco(conv, image) == pytest.approx(1.0)  # eigenvalues of I: 1, 1
    with torch.no_grad():
        conv.weight[1].zero_()
        conv.weight[1, 0] = 3.0  # channel 1 = 3 x channel 0: r = 1, eigenvalues 0 and 2
    assert proxies.meco(conv, image) == pytest.approx(0.0, abs=1e-9)


def test_live_size_drops_the_edges_that_cannot_reach_the_output() -> None:
    space = get_space("nb201")
    # node 1 is zero (edge 0 none), so the conv on edge 1->2 never sees a non-zero input
    dead = space.from_str(
        "|none~0|+|skip_connect~0|nor_conv_3x3~1|+|nor_conv_1x1~0|none~1|skip_connect~2|"
    )
    same = space.from_str(
        "|none~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|skip_connect~2|"
    )
    assert space.live_arch(dead) == same
    live, full = measure(space.build_live(dead), 32), measure(space.build_full(dead), 32)
    assert live == measure(space.build_full(same), 32)
    assert live.flops < full.flops and live.params < full.params


def test_zero_cost_terms_are_finite_and_deterministic() -> None:
    space = get_space("nb201")
    arrays = load_arrays(load_config_dataset())
    batch = proxy_batch(arrays, 8, 0, 32, torch.device("cpu"))
    terms = ZeroCostTerms(space, batch, seed=0)
    arch = space.from_str(
        "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|"
    )
    first, second = terms(arch), terms(arch)
    assert first == second
    assert all(math.isfinite(v) for v in first.values())
    assert set(first) >= {c.name for c in CANDIDATES if c.name not in ("landscape", "speed")}


def load_config_dataset():  # the digits dataset every tiny test uses
    from mote_optuna.data import DatasetConfig

    return DatasetConfig(name="digits")


def test_reference_scale_and_value_by_hand() -> None:
    components = (Component("a"), Component("b", log=True))
    raws = [{"a": v, "b": math.exp(v)} for v in (1.0, 2.0, 3.0, 4.0, 5.0)]
    ref = fit_reference(raws, components)
    scale = (4.0 - 2.0) / 1.349  # interquartile range / 1.349
    assert ref == {
        "a": {"center": 3.0, "scale": pytest.approx(scale)},
        "b": {"center": pytest.approx(3.0), "scale": pytest.approx(scale)},
    }
    assert ensemble_value({"a": 3.0, "b": math.exp(3.0)}, ref, components) == pytest.approx(
        2 * math.log(0.5)
    )
    z = (4.0 - 3.0) / scale
    value = ensemble_value({"a": 4.0, "b": math.exp(3.0)}, ref, components)
    assert value == pytest.approx(math.log(norm.cdf(z)) + math.log(0.5))
    dead = ensemble_value({"a": -math.inf, "b": 0.0}, ref, components)  # clipped, finite
    assert math.isfinite(dead) and dead < value
    # a weight counts its term's log Φ(z) that many times, in the linear rule too
    heavy = (Component("a", weight=8.0), components[1])
    raw = {"a": 4.0, "b": math.exp(3.0)}
    assert ensemble_value(raw, ref, heavy) == pytest.approx(
        8 * math.log(norm.cdf(z)) + math.log(0.5)
    )
    assert ensemble_value(raw, ref, heavy, rule="linear") == pytest.approx(8 * z)


def test_a_term_against_the_others_is_left_out_and_the_choice_is_stored() -> None:
    rng = np.random.default_rng(0)
    size = rng.normal(size=32)
    raws = [
        {"a": s + 0.1 * n1, "b": s + 0.2 * n2, "c": -s + 0.1 * n3, "d": n4}
        for s, n1, n2, n3, n4 in zip(size, *rng.normal(size=(4, 32)), strict=True)
    ]
    pool = tuple(Component(name) for name in "abcd")
    # c ranks against a and b, d ranks at random: both go, the agreeing pair stays
    assert [c.name for c in agreeing(raws, pool, 0.2)] == ["a", "b"]
    assert [c.name for c in agreeing(raws, pool[:2], 0.99)] == ["a", "b"]  # two always stay
    # ... unless one of them cannot be scaled on the warm-up (fewer than 3 finite values)
    dead = [{**r, "b": -math.inf} for r in raws]
    assert [c.name for c in agreeing(dead, pool[:2], 0.99)] == ["a"]
    assert set(EnsembleRule(pool[:2], agreement=0.0).fit(dead)) == {"a"}
    kept = EnsembleRule(pool, agreement=0.2)
    fitted = kept.fit(raws)
    assert set(fitted) == {"a", "b"} and kept.components(fitted) == pool[:2]
    raw = {"a": 1.0, "b": 1.0, "c": 5.0, "d": 5.0}
    assert kept.value(raw, fitted) == ensemble_value(raw, fitted, pool[:2])
    everything = EnsembleRule(pool)
    assert set(everything.fit(raws)) == set("abcd")


# --------------------------------------------------------------------------------------------
# the objective in a study


def _study(path: Path) -> optuna.Study:
    config = load_config(path)
    return optuna.load_study(study_name=config.name, storage=config.storage_url)


def test_ensemble_study_end_to_end_and_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(
        tmp_path / "s.yaml",
        n_trials=5,
        objectives=["ensemble", "flops", "params"],
        estimator={"budget": "tiny", "calibration": {"population": 3, "seed": 0}},
    )
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "calibration: scoring 3 warm-up candidates" in out and "ensemble reference" in out
    study = _study(path)
    record = study.user_attrs[CALIBRATION_ATTR]
    kept = set(record["constants"])
    assert kept <= {c.name for c in RULE.pool}
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 5
    weights = {c.name: c.weight for c in RULE.pool}
    for trial in complete:  # the stored z-scores give the stored value, each term weighted
        z = trial.user_attrs["ensemble_z"]
        assert set(z) == kept
        expected = sum(weights[name] * norm.logcdf(value) for name, value in z.items())
        assert trial.values[0] == pytest.approx(float(expected))
        assert trial.values[0] == trial.user_attrs["ensemble"]
        pool = {c.name for c in RULE.pool} if trial.number < 3 else kept  # the warm-up: the pool
        if pool & MOTE_TERMS:
            assert math.isfinite(trial.user_attrs["mote"])  # NB201 has published constants
        else:  # no MOTE term to compute: nothing was trained
            assert "mote" not in trial.user_attrs and "train_losses" not in trial.user_attrs
    assert study.user_attrs["mote_optuna"]["estimator"]["kind"] == "ensemble"

    values = {t.number: t.values for t in complete}
    assert main(["run", str(path), "--set", "n_trials=7"]) == 0
    out = capsys.readouterr().out
    assert "calibration: scoring" not in out and "using the study's ensemble reference" in out
    study = _study(path)
    assert study.user_attrs[CALIBRATION_ATTR] == record  # stored once
    after = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(after) == 7
    assert {t.number: t.values for t in after if t.number in values} == values


def test_second_worker_reuses_the_reference(tmp_path: Path) -> None:
    journal = tmp_path / "journal.log"
    path = write_study(
        tmp_path / "s.yaml",
        storage=f"journal:{journal}",
        objectives=["ensemble", "flops", "params"],
        estimator={"budget": "tiny", "calibration": {"population": 3, "seed": 0}},
    )
    config = load_config(path)
    space = get_space("nb201")
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    optuna.create_study(study_name="t", storage=storage, directions=config.directions)
    estimators = [EnsembleEstimator.from_config(config, space) for _ in range(2)]
    scored = [0, 0]
    results: list[dict | None] = [None, None]

    def work(i: int) -> None:
        raw_terms = estimators[i].raw_terms

        def counting(space_, arch):
            scored[i] += 1
            return raw_terms(space_, arch)

        estimators[i].raw_terms = counting  # type: ignore[method-assign]
        study = optuna.load_study(study_name="t", storage=storage)
        cost = Objective(config, space, estimators[i]).cost
        results[i] = ensure_calibrated(
            study, storage, config, space, estimators[i], cost, out=lambda _: None
        )

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(scored) == [0, 3]  # one worker scored the warm-up, the other waited
    assert results[0] == results[1] is not None
    assert estimators[0].reference == estimators[1].reference == results[0]


# --------------------------------------------------------------------------------------------
# no label reaches a score


DATA = Path(__file__).resolve().parents[1] / "data"
TRUTH_TABLES = {  # the committed benchmark table of every space with ground truth
    "nb201": "nb201_test_acc.csv.gz",
    "nb101": "nb101_subset_naslib.csv",
    "nb-macro": "nas_bench_macro_cifar10.csv.gz",
    "anb": "anb_imagenet.csv.gz",
}
LABEL_WORDS = ("acc", "top1", "top5")  # columns holding a trained network's accuracy


@pytest.mark.parametrize(
    "space_name",
    ["nb201", pytest.param("nb101", marks=pytest.mark.slow),
     pytest.param("nb-macro", marks=pytest.mark.slow),
     pytest.param("anb", marks=pytest.mark.slow)],
)  # fmt: skip
def test_permuted_accuracies_leave_every_score_unchanged(tmp_path: Path, space_name: str) -> None:
    """The benchmark's accuracies shuffled across its architectures: every score of every
    architecture is the same, so no label reaches a score (on every space with ground truth)."""
    space = truth_of(get_space(space_name))
    rng = np.random.default_rng(0)
    truth = pd.read_csv(DATA / TRUTH_TABLES[space_name], dtype=str, keep_default_na=False)
    labels = [
        c for c in truth.columns
        if c in space.truth_targets.values() or any(w in c for w in LABEL_WORDS)
    ]  # fmt: skip
    assert set(space.truth_targets.values()) <= set(labels)
    permuted = truth.copy()
    for column in labels:
        permuted[column] = rng.permutation(truth[column].to_numpy())
    assert (permuted[labels] != truth[labels]).any(axis=None)  # the labels did move
    y = np.repeat(np.arange(4), 10)
    x = rng.integers(0, 256, size=(len(y), 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    frames = []
    for name, table in (("a", truth), ("b", permuted)):
        table.to_csv(tmp_path / f"{name}.csv", index=False)
        argv = ["bench", "correlation", "--space", space_name]
        argv += ["--truth", str(tmp_path / f"{name}.csv"), "--data", str(tmp_path / "d.npz")]
        argv += ["--budget", "tiny", "--n", "4", "--reference", "3", "--threads", "1"]
        assert main([*argv, "--out", str(tmp_path / name)]) == 0
        frames.append(pd.read_csv(tmp_path / name / "scores.csv"))
        result = json.loads((tmp_path / name / "correlation.json").read_text())
        assert {"ensemble", "az_nas", "live_flops", "live_params", "mote", "params"} <= set(
            result["scores"]
        )
        assert result["seconds_per_arch"]["ensemble_median"] > 0
    assert not frames[0].empty
    # every score but those timed by the wall clock, which differ between any two runs
    timed = [c for c in frames[0].columns if c.endswith("_wall")]
    assert timed == ["mote_wall", "speed_wall"]
    pd.testing.assert_frame_equal(frames[0].drop(columns=timed), frames[1].drop(columns=timed))
