"""Unit tests of the MOTE estimator: combination constants, terms, clocks, formula signs."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from mote_optuna.data import TensorData
from mote_optuna.estimators.mote import (
    BUDGETS,
    MoteEstimator,
    MoteSettings,
    combine_code,
    combine_paper,
)
from mote_optuna.spaces.nb201 import NB201Space

ARCH = (
    "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|"
    "+|avg_pool_3x3~0|skip_connect~1|nor_conv_3x3~2|"
)


@pytest.fixture(autouse=True)
def _one_thread():
    """One thread: on a shared 2-core host more threads make these tiny networks much slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(n_per_class: int = 12, classes: int = 4, res: int = 8) -> TensorData:
    """Learnable images: each class has its own mean colour plus noise."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(classes).repeat_interleave(n_per_class)
    colours = torch.rand(classes, 3, 1, 1, generator=g)
    x = (colours[y] + 0.15 * torch.randn(len(y), 3, res, res, generator=g)).clamp(0, 1)
    return TensorData(x=x.contiguous(), y=y, num_classes=classes)


def _settings(**changes: object) -> MoteSettings:
    base = MoteSettings(
        epochs=4, batch_size=16, images_per_label=12, landscape_points=11,
        landscape_mode="train", speed_clock="flops", width=8, resolution=8, lr=1e-2,
    )  # fmt: skip
    return replace(base, **changes)


def _score(settings: MoteSettings, data: TensorData | None = None):
    data = data or _data()
    space = NB201Space()
    torch.manual_seed(settings.seed)
    model = space.build_proxy(space.from_str(ARCH), num_classes=data.num_classes, width=8)
    return MoteEstimator(settings, data, NB201Space.published_boxcox).score(model)


def test_combination_reproduces_released_mote() -> None:
    # NB201 arch 0 in the authors' release: landscape 5.660, speed 3.448, MOTE 4.2776.
    mote = combine_code(5.660083397658493, 3.4480660170702366, NB201Space.published_boxcox)
    assert mote == pytest.approx(4.277557169850038, abs=1e-9)


def test_budgets_are_complete() -> None:
    assert set(BUDGETS) >= {"paper", "lite", "tiny"}
    for values in BUDGETS.values():
        assert set(values) == set(BUDGETS["paper"])
    assert BUDGETS["paper"]["epochs"] == 50 and BUDGETS["paper"]["batch_size"] == 1024


def test_terms_on_a_tiny_network() -> None:
    result = _score(_settings())
    losses = result.landscape_losses
    assert len(losses) == 11
    assert losses[0] > losses[-1]  # from θ_init (random) down to θ (trained)
    assert result.train_losses[0] > result.train_losses[-1]
    assert result.landscape == pytest.approx(sum(1.0 / v for v in losses))
    mean_loss = sum(result.train_losses) / len(result.train_losses)
    assert result.speed == pytest.approx(result.clock / mean_loss)
    assert result.clock == result.extra["flops_clock"]
    assert result.mote == pytest.approx(
        combine_code(result.landscape, result.speed, NB201Space.published_boxcox)
    )


def test_flops_clock_is_deterministic() -> None:
    quick = _settings(epochs=2, landscape_points=3)
    first, second = _score(quick), _score(quick)
    assert first.clock == second.clock
    assert first.mote == second.mote  # same seed: same losses, same clock


def test_wall_clock_uses_training_seconds() -> None:
    result = _score(_settings(speed_clock="wall", epochs=2, landscape_points=3))
    assert result.clock == result.train_seconds > 0


def test_paper_formula_sign() -> None:
    # Lower ΣCE and lower Σ l/t are better in the paper; the score is negated (larger is better).
    lambdas = (0.86, 0.617)
    assert combine_paper(5.0, 2.0, lambdas) > combine_paper(8.0, 2.0, lambdas)
    assert combine_paper(5.0, 2.0, lambdas) > combine_paper(5.0, 3.0, lambdas)
    result = _score(_settings(formula="paper", epochs=2, landscape_points=3))
    assert result.landscape == pytest.approx(sum(result.landscape_losses))
    assert math.isfinite(result.mote)
