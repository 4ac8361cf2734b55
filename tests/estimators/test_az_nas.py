"""AZ-NAS as its authors compute it (issue: published AZ-NAS): the identity rule, the singular
value on blocks checkable by hand, the noise input and the rank aggregate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from mote_optuna.data import ImageArrays
from mote_optuna.estimators import az_nas
from mote_optuna.estimators.zero_cost import ZeroCostTerms, proxy_batch, published_az_nas
from mote_optuna.spaces import get_space

CPU = torch.device("cpu")
# the cell's output is its input: one skip edge reaches node 3, every other edge is none
IDENTITY_CELL = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
# every edge a skip: node 3 = 4 x input, a linear block but not an identity
ALL_SKIP_CELL = (
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+"
    + "|skip_connect~0|skip_connect~1|skip_connect~2|"
)
CONV_CELL = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|skip_connect~1|none~2|"


def _trainability(block: nn.Module, shape: tuple[int, ...], seed: int = 0) -> float:
    f_in = torch.randn(shape, generator=torch.Generator().manual_seed(99)).requires_grad_()
    return az_nas.block_trainability(f_in, block(f_in), torch.Generator().manual_seed(seed))


def test_an_identity_block_scores_minus_inf_and_a_scaled_one_does_not() -> None:
    assert _trainability(nn.Identity(), (2, 3, 4, 4)) == -math.inf
    # g = 4v: M = 4 VᵀV/N, not exactly v; σ depends on the probe but the block is no identity
    assert math.isfinite(_trainability(_Scale(4.0), (2, 3, 4, 4)))


def test_singular_value_of_a_one_output_linear_block() -> None:
    # C_out = 1: v² = 1 everywhere, so M = Wᵀ·mean(v²) = Wᵀ and σ = ‖W‖ = 5 for any probe
    conv = nn.Conv2d(2, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([3.0, 4.0]).reshape(1, 2, 1, 1))
    for seed in (0, 1):
        got = _trainability(conv, (2, 2, 3, 3), seed)
        assert got == pytest.approx(2 - 5 - 1 / (5 + 1e-6), rel=1e-6)


def test_singular_value_of_a_halving_block_uses_pixel_unshuffle() -> None:
    # 2x2 average pool, one channel: g = v/4 on each of the 4 pixels of a window, unshuffled to
    # 4 channels at the output position, so M = (1/4, 1/4, 1/4, 1/4)ᵀ and σ = 1/2
    got = _trainability(nn.AvgPool2d(2), (3, 1, 4, 4))
    assert got == pytest.approx(2 - 0.5 - 1 / (0.5 + 1e-6), rel=1e-6)


def test_cross_singular_value_by_hand() -> None:
    v = torch.tensor([[1.0, -1.0], [1.0, 1.0]]).reshape(1, 2, 1, 2)  # positions (1,1), (-1,1)
    # VᵀV / 2 = I, so M = GᵀV/2 = 3I for G = 3V and σ = 3
    assert az_nas.largest_cross_singular_value(3 * v, v) == pytest.approx(3.0)
    g = torch.tensor([[2.0, 0.0]]).reshape(1, 1, 1, 2)  # one input channel: M = [[1, 1]]
    assert az_nas.largest_cross_singular_value(g, v) == pytest.approx(math.sqrt(2))


def test_nb201_identity_cell_gets_minus_inf_trainability() -> None:
    space = get_space("nb201")
    identity = published_az_nas(space, space.from_str(IDENTITY_CELL), 0, 32, CPU)
    assert identity["az_trainability"] == -math.inf
    assert math.isfinite(identity["az_expressivity"])
    all_skip = published_az_nas(space, space.from_str(ALL_SKIP_CELL), 0, 32, CPU)
    assert math.isfinite(all_skip["az_trainability"])


def test_published_terms_read_noise_of_the_seed_not_the_dataset() -> None:
    space = get_space("nb201")
    arch = space.from_str(CONV_CELL)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(16, 32, 32, 3), dtype=np.uint8) for _ in range(2)]
    labels = np.arange(16) % 4
    batches = [
        proxy_batch(ImageArrays(x, labels, [str(i) for i in range(4)]), 8, 0, 32, CPU)
        for x in images
    ]
    first, second = (ZeroCostTerms(space, b, seed=0)(arch) for b in batches)
    published = ("az_expressivity", "az_progressivity", "az_trainability", "az_complexity")
    assert all(first[k] == second[k] for k in published)
    assert first["azr_expressivity"] != second["azr_expressivity"]  # reads the images
    again = published_az_nas(space, arch, 0, 32, CPU)
    other_seed = published_az_nas(space, arch, 1, 32, CPU)
    assert again == {k: first[k] for k in published}
    assert again["az_trainability"] != other_seed["az_trainability"]


def test_rank_aggregate_by_hand() -> None:
    a = np.array([1.0, 2.0, -math.inf])
    b = np.array([3.0, 1.0, 2.0])
    got = az_nas.rank_aggregate([a, b])
    want = np.log(np.array([2, 3, 1]) / 3) + np.log(np.array([3, 1, 2]) / 3)
    np.testing.assert_allclose(got, want)


class _Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def test_expressivity_is_finite_with_more_channels_than_positions() -> None:
    """512 channels on 4 positions: 509 eigenvalues of the covariance are 0, and float32
    rounding puts some below -1e-8 of their sum; the entropy is still the exact one, that of
    the 3 nonzero eigenvalues (computed here in float64), not NaN."""
    torch.manual_seed(0)
    feature = torch.randn(4, 512, 1, 1) * 100
    rows = feature.double().reshape(4, 512)
    rows = rows - rows.mean(dim=0, keepdim=True)
    eig = torch.linalg.eigvalsh(rows @ rows.T / 4)  # the same nonzero eigenvalues, 4 x 4
    p = eig.clamp_min(0) / eig.clamp_min(0).sum()
    exact = float(-(p * torch.log(p + az_nas.LOG_EPS)).sum())
    assert az_nas.spectral_entropy(feature) == pytest.approx(exact, rel=1e-4)
