"""Accel-NASBench: strings and params, the network against torchvision's EfficientNet-B0 and the
benchmark's own parameter counts, the closed-form cost, the truth table, latency units, proxy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from torch import nn
from torchvision.ops.misc import SqueezeExcitation

from mote_optuna.cost import count_flops, measure
from mote_optuna.errors import UserError
from mote_optuna.latency import units as latency_units
from mote_optuna.spaces import InvalidArchitecture, get_space
from mote_optuna.spaces.anb import ANBSpace
from mote_optuna.spaces.anb_nets import MBConv
from mote_optuna.spaces.base import HasAnalyticCost, HasCoveringArchs, HasTruth
from mote_optuna.spaces.layers import KERAS_BN

TABLE = Path(__file__).resolve().parents[1] / "data" / "anb_imagenet.csv.gz"  # tests/data/
SPACE = ANBSpace()
EXAMPLE = "6466611-3535533-1233222-0000000"  # the table's first row
# Searchables.efficientnet_b0_conf of the source: EfficientNet-B0's blocks, SE everywhere.
B0 = "1666666-3353553-1223341-1111111"


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pd.read_csv(TABLE, dtype=dict.fromkeys(("e", "k", "l", "se"), str))


def _samples(n: int, seed: int = 0) -> list[tuple[tuple[int, int, int, bool], ...]]:
    rng = np.random.default_rng(seed)
    return [SPACE.sample(rng) for _ in range(n)]


def test_registered_with_the_optional_parts() -> None:
    space = get_space("anb")
    assert isinstance(space, ANBSpace)
    assert isinstance(space, HasAnalyticCost | HasCoveringArchs | HasTruth)
    assert space.full_net.resolution == 224 and space.full_net.num_classes == 1000
    dists = space.distributions()
    assert len(dists) == 28
    assert dists["block6_depth"].choices == (1, 2, 3, 4)  # type: ignore[attr-defined]
    assert {dists[f"block{i}_depth"].choices for i in (1, 2, 3, 4, 5, 7)} == {(1, 2, 3)}  # type: ignore[attr-defined]


def test_string_is_the_tables_columns() -> None:
    arch = SPACE.from_str(EXAMPLE)
    assert arch[0] == (6, 3, 1, False) and arch[5] == (1, 3, 2, False)
    assert SPACE.to_str(arch) == EXAMPLE and SPACE.key(arch) == EXAMPLE
    assert SPACE.to_params(arch)["block2_expand"] == 4
    assert SPACE.from_params(SPACE.to_params(arch)) == arch


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("6466611-3535533-1233222", "four 7-digit parts"),
        ("646661-3535533-1233222-0000000", "four 7-digit parts"),
        ("6466612-3535533-1233222-0000000", "e digit '2' of block 7"),
        ("6466611-3535573-1233222-0000000", "k digit '7' of block 6"),
        ("6466611-3535533-1234222-0000000", "l digit '4' of block 4"),
        ("6466611-3535533-1233222-0020000", "se digit '2' of block 3"),
    ],
)
def test_from_str_names_the_bad_part(text: str, names: str) -> None:
    with pytest.raises(InvalidArchitecture, match=names) as error:
        SPACE.from_str(text)
    assert "\n" not in str(error.value)


def test_depth_four_only_in_the_sixth_block() -> None:
    assert SPACE.from_str("6466611-3535533-1233242-0000000")[5][2] == 4
    params = SPACE.to_params(SPACE.from_str(EXAMPLE))
    for bad in ({**params, "block5_depth": 4}, {**params, "block1_se": 1}, {"block1_se": True}):
        with pytest.raises(InvalidArchitecture):
            SPACE.from_params(bad)


def test_neighbours_change_one_parameter() -> None:
    arch = SPACE.from_str(EXAMPLE)
    params = SPACE.to_params(arch)
    neighbours = SPACE.neighbours(arch)
    assert len(neighbours) == 7 * (2 + 1 + 2 + 1) + 1  # the 6th block has one more depth
    assert len({SPACE.key(n) for n in neighbours}) == len(neighbours)
    for n in neighbours:
        changed = [k for k, v in SPACE.to_params(n).items() if v != params[k]]
        assert len(changed) == 1
        assert SPACE.from_str(SPACE.to_str(n)) == n


def test_sample_is_uniform_per_parameter() -> None:
    archs = _samples(4000)
    depths = np.bincount([a[5][2] for a in archs], minlength=5)[1:]
    expands = np.bincount([a[0][0] for a in archs], minlength=7)[[1, 4, 6]]
    assert np.all(np.abs(depths / 4000 - 1 / 4) < 0.03), depths
    assert np.all(np.abs(expands / 4000 - 1 / 3) < 0.03), expands


def test_full_network_is_torchvision_efficientnet_b0_for_its_blocks() -> None:
    """The source's network with EfficientNet-B0's choices has torchvision's B0 layout: same
    parameter names and shapes (so the same count) and the same MACs; only the activations
    (ReLU / hard-sigmoid instead of SiLU / sigmoid) differ, and they have no parameters."""
    ours = SPACE.build_full(SPACE.from_str(B0))
    ref = torchvision.models.efficientnet_b0()
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, v.shape) for k, v in ref.state_dict().items()
    ]
    assert measure(ours, 224) == measure(ref, 224)
    acts = {type(m) for m in ours.modules()} & {nn.SiLU, nn.Sigmoid, nn.ReLU, nn.Hardsigmoid}
    assert acts == {nn.ReLU, nn.Hardsigmoid}


def test_layers_follow_the_source_rules() -> None:
    """No expansion conv at e = 1; SE squeeze = max(1, the layer's input width // 4); residual
    only at stride 1 with equal widths; stochastic depth 0.2 x layer index / layer count."""
    net = SPACE.build_full(SPACE.from_str("1466611-3535533-1333222-1111111"))
    layers = [m for m in net.modules() if isinstance(m, MBConv)]
    assert len(layers) == 16
    first, block2 = layers[0], layers[1:4]
    assert len(first.block) == 3  # depthwise, SE, project
    assert [
        m.fc1.out_channels for b in block2 for m in b.modules() if isinstance(m, SqueezeExcitation)
    ] == [4, 6, 6]
    assert [b.use_residual for b in block2] == [False, True, True]
    assert [b.stochastic_depth.p for b in layers[:2]] == [0.0, 0.2 / 16]
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    assert all(m.bias is None for m in convs)


def test_analytic_cost_is_the_measured_cost() -> None:
    for arch in _samples(100, seed=1) + SPACE.covering_archs():
        torch.manual_seed(0)
        assert SPACE.analytic_cost(arch) == measure(SPACE.build_full(arch), 224), SPACE.to_str(
            arch
        )


def test_params_are_the_tables_on_every_row(table: pd.DataFrame) -> None:
    """``params_M`` is printed with 6 significant digits; ours, printed so, is the same on all
    rows. Our conv + linear MACs are below thop's ``macs_M`` (which adds BN, activations,
    pooling) on every row, and within 20 %."""
    wrong, ratios = [], []
    for row in table.itertuples():
        cost = SPACE.analytic_cost(SPACE.from_str(f"{row.e}-{row.k}-{row.l}-{row.se}"))
        if float(f"{cost.params:.6g}") != row.params_M:
            wrong.append((row.e, row.k, row.l, row.se, cost.params, row.params_M))
        ratios.append(cost.flops / row.macs_M)
    assert not wrong, wrong[:5]
    assert min(ratios) > 0.8 and max(ratios) < 1.0


def test_read_truth_averages_repeated_runs(table: pd.DataFrame, tmp_path: Path) -> None:
    truth = SPACE.read_truth(TABLE)
    assert len(truth) == len(table.drop_duplicates(["e", "k", "l", "se"])) < len(table)
    assert truth["key"].is_unique and (truth["key"] == truth["arch_str"]).all()
    assert {"val_top1", "val_top5", "params", "flops", "latency_zcu102_mean"} <= set(truth)
    runs = table[(table.e + "-" + table.k + "-" + table.l + "-" + table.se) == EXAMPLE]
    row = truth.set_index("arch_str").loc[EXAMPLE]
    assert len(runs) == 2 and row.val_top1 == pytest.approx(runs.val_top1.mean())
    assert row.params == runs.params_M.iloc[0]
    assert row.flops == SPACE.analytic_cost(SPACE.from_str(EXAMPLE)).flops
    other = tmp_path / "other.csv"
    table.drop(columns=["val_top1", "se"]).to_csv(other, index=False)
    with pytest.raises(UserError, match=r"other\.csv.*missing columns se, val_top1$"):
        SPACE.read_truth(other)


def test_covering_archs_cover_the_units_of_random_archs() -> None:
    shape = latency_units.input_shape(SPACE)
    archs = latency_units.covering_archs(SPACE)
    assert archs == SPACE.covering_archs() and len(archs) == 12

    def keys(arch: tuple[tuple[int, int, int, bool], ...]) -> set[str]:
        net = latency_units.full_network(SPACE, arch, meta=True)
        return {u.key for u in latency_units.units(net, shape)}

    covered = set().union(*(keys(a) for a in archs))
    for arch in _samples(50, seed=2):
        assert keys(arch) <= covered, SPACE.to_str(arch)


@torch.no_grad()
def test_proxy_takes_16_and_32_px_and_sees_every_choice() -> None:
    arch = SPACE.from_str(EXAMPLE)
    torch.manual_seed(0)
    proxy = SPACE.build_proxy(arch, num_classes=10, width=16).eval()
    for side in (16, 32):
        assert proxy(torch.randn(2, 3, side, side)).shape == (2, 10)
    bns = [m for m in proxy.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(m.momentum == KERAS_BN["momentum"] and m.eps == KERAS_BN["eps"] for m in bns)

    def size(text: str) -> tuple[int, int]:
        net = SPACE.build_proxy(SPACE.from_str(text), num_classes=10, width=32)
        return sum(isinstance(m, MBConv) for m in net.modules()), round(count_flops(net, 32) * 1e6)

    base = size(EXAMPLE)
    assert base[0] == 1 + 6 * 2  # min(depth, 2) cells per block
    for changed in (
        "1466611-3535533-1233222-0000000",  # expansion
        "6466611-5535533-1233222-0000000",  # kernel
        "6466611-3535533-2233222-0000000",  # depth 1 -> 2
        "6466611-3535533-1233222-1000000",  # SE
    ):
        assert size(changed) != base, changed
    assert size("6466611-3535533-1333222-0000000") == base  # depth 3 is two cells, as 2
