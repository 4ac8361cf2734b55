"""NAS-Bench-201: the 15,625 cells, their canonical classes, and the published network sizes."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch

from mote_optuna.cost import measure
from mote_optuna.spaces import InvalidArchitecture, get_space, suggest

SPACE = get_space("nb201")

# Published NAS-Bench-201 values (CIFAR-10 head): params in M, FLOPs in M multiply-accumulates.
PUBLISHED = [
    (
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
        0.129306,
        15.64737,
    ),
    (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        1.531546,
        220.12,
    ),
    (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        1.288506,
        184.73025,
    ),
]


def test_all_cells_and_canonical_classes() -> None:
    archs = SPACE.all_archs()
    assert len(archs) == 15_625
    assert len({SPACE.key(a) for a in archs}) == 6_466


def test_string_round_trip_for_every_cell() -> None:
    for arch in SPACE.all_archs():
        assert SPACE.from_str(SPACE.to_str(arch)) == arch
        assert SPACE.from_params(SPACE.to_params(arch)) == arch


@pytest.mark.parametrize(
    "text", ["", "|none~0|", "|bad~0|+|none~0|none~1|+|none~0|none~1|none~2|"]
)
def test_malformed_strings_are_rejected(text: str) -> None:
    with pytest.raises(InvalidArchitecture):
        SPACE.from_str(text)


def test_equivalent_cells_share_a_key_and_different_ones_do_not() -> None:
    base = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    # node 1 feeds nothing that reaches the output, so its op does not matter
    same = "|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    other = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    key = SPACE.key(SPACE.from_str(base))
    assert SPACE.key(SPACE.from_str(same)) == key
    assert SPACE.key(SPACE.from_str(other)) != key


@pytest.mark.parametrize(("text", "params_m", "flops_m"), PUBLISHED)
def test_full_network_matches_published_size(text: str, params_m: float, flops_m: float) -> None:
    cost = measure(SPACE.build_full(SPACE.from_str(text)), 32)
    assert cost.params == pytest.approx(params_m, abs=1e-6)
    assert cost.flops == pytest.approx(flops_m, rel=0.01)


def test_proxy_is_the_reduced_architecture() -> None:
    arch = SPACE.from_str(PUBLISHED[1][0])
    proxy = SPACE.build_proxy(arch, num_classes=10, width=32)
    assert proxy(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    # stem + two cells of six 3x3 convs at C=32 + head: about 0.113 M params (MOTE_SPEC §4)
    assert sum(p.numel() for p in proxy.parameters()) / 1e6 == pytest.approx(0.113, abs=0.002)


def test_suggest_and_neighbours() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    arch = suggest(SPACE, study.ask())
    assert len(arch) == 6
    neighbours = SPACE.neighbours(arch)
    assert len(neighbours) == 24
    assert all(sum(a != b for a, b in zip(n, arch, strict=True)) == 1 for n in neighbours)
    assert SPACE.sample(np.random.default_rng(0)) in SPACE.all_archs()
