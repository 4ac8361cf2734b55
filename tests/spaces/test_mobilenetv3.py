"""MobileNetV3 spaces: torchvision reference, parameters, keys, neighbours, proxies."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch
import torchvision
from torchvision.ops.misc import SqueezeExcitation

from mote_optuna.cost import measure
from mote_optuna.spaces import InvalidArchitecture, get_space, space_hash, suggest
from mote_optuna.spaces.mobilenetv3 import OFA_DEPTHS, MobileNetV3Space, OFAMobileNetV3Space
from mote_optuna.spaces.mobilenetv3_nets import alpha_rule, build_reference_large, rescale_alpha

Space = MobileNetV3Space | OFAMobileNetV3Space


@pytest.fixture(scope="module")
def paper() -> MobileNetV3Space:
    return MobileNetV3Space()


@pytest.fixture(scope="module")
def ofa() -> OFAMobileNetV3Space:
    return OFAMobileNetV3Space()


def test_builder_reproduces_torchvision_large() -> None:
    ours, ref = build_reference_large(), torchvision.models.mobilenet_v3_large()
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, v.shape) for k, v in ref.state_dict().items()
    ]
    assert measure(ours, 224) == measure(ref, 224)
    assert measure(ours, 224).params == pytest.approx(5.483032)  # torchvision's published 5.5 M


def test_registered(paper: MobileNetV3Space, ofa: OFAMobileNetV3Space) -> None:
    assert isinstance(get_space("mobilenetv3"), MobileNetV3Space)
    assert isinstance(get_space("mobilenetv3-ofa"), OFAMobileNetV3Space)
    assert len(paper.distributions()) == 15 and len(ofa.distributions()) == 45
    assert space_hash(paper) != space_hash(ofa)
    for sp in (paper, ofa):
        assert sp.full_net.resolution == 224 and sp.full_net.num_classes == 1000


def test_paper_params_strings_and_errors(paper: MobileNetV3Space) -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        arch = paper.sample(rng)
        assert paper.from_params(paper.to_params(arch)) == arch
        assert paper.from_str(paper.to_str(arch)) == arch
    arch = ((2, 3, False), (4, 5, True), (6, 7, False), (4, 3, True), (2, 7, True))
    assert paper.to_str(arch) == "e2k3|e4k5-se|e6k7|e4k3-se|e2k7-se"
    params = paper.to_params(arch)
    for bad in ({**params, "block1_expand": 3}, {**params, "block2_se": 1}, {"block1_se": True}):
        with pytest.raises(InvalidArchitecture):
            paper.from_params(bad)
    for text in ("e2k3|e4k5", "e2k3|e4k5-se|e6k9|e4k3|e2k7", "e2k3|e4k5-xx|e6k7|e4k3|e2k7"):
        with pytest.raises(InvalidArchitecture):
            paper.from_str(text)


def test_paper_neighbours(paper: MobileNetV3Space) -> None:
    arch = paper.sample(np.random.default_rng(1))
    base = paper.to_params(arch)
    neighbours = paper.neighbours(arch)
    assert len(neighbours) == 5 * (2 + 2 + 1) == len({paper.key(a) for a in neighbours})
    for other in neighbours:
        changed = [k for k, v in paper.to_params(other).items() if base[k] != v]
        assert len(changed) == 1


def test_paper_skeleton_cost_range(paper: MobileNetV3Space) -> None:
    lightest = ((2, 3, False),) * 5
    heaviest = ((6, 7, True),) * 5
    low, high = measure(paper.build_full(lightest), 224), measure(paper.build_full(heaviest), 224)
    assert 100 < low.flops < 200 and 400 < high.flops < 600  # MMACs, straddles ≈400
    net = paper.build_full(((4, 5, True),) * 5)
    blocks = [m for m in net.features if type(m).__name__ == "InvertedResidual"]
    assert len(blocks) == 1 + 3 + 4 + 4 + 3 + 4


def _ofa_arch(depths: tuple[int, ...], k: int = 3, e: int = 4) -> tuple:
    return tuple((d, ((k, e),) * 4) for d in depths)


def test_ofa_key_ignores_unused_blocks(ofa: OFAMobileNetV3Space) -> None:
    a = _ofa_arch((2, 3, 4, 2, 3))
    params = ofa.to_params(a)
    b = ofa.from_params({**params, "stage1_block3_kernel": 7, "stage4_block4_expand": 6})
    c = ofa.from_params({**params, "stage1_block2_kernel": 7})
    assert a != b and ofa.key(a) == ofa.key(b) and ofa.to_str(a) != ofa.to_str(b)
    assert ofa.key(a) != ofa.key(c)
    assert ofa.to_params(b) == {**params, "stage1_block3_kernel": 7, "stage4_block4_expand": 6}
    shapes = [(k, v.shape) for k, v in ofa.build_full(a).state_dict().items()]
    assert shapes == [(k, v.shape) for k, v in ofa.build_full(b).state_dict().items()]


def test_ofa_round_trips_and_errors(ofa: OFAMobileNetV3Space) -> None:
    rng = np.random.default_rng(2)
    for _ in range(30):
        arch = ofa.sample(rng)
        assert ofa.from_params(ofa.to_params(arch)) == arch
        assert ofa.from_str(ofa.to_str(arch)) == arch
    text = ofa.to_str(_ofa_arch((2, 3, 4, 2, 3)))
    assert text.split("|")[0] == "k3e4,k3e4/k3e4,k3e4" and text.split("|")[2].count("/") == 0
    depth_one = "k3e4/k3e4,k3e4,k3e4|" + text.split("|", 1)[1]
    for bad in ("k3e4|k3e4", text.replace("k3e4", "k4e4", 1), depth_one, text + "x"):
        with pytest.raises(InvalidArchitecture):
            ofa.from_str(bad)
    with pytest.raises(InvalidArchitecture, match="stage2_depth"):
        ofa.from_params({**ofa.to_params(ofa.sample(rng)), "stage2_depth": 5})


def test_ofa_neighbours(ofa: OFAMobileNetV3Space) -> None:
    arch = ofa.sample(np.random.default_rng(3))
    base = ofa.to_params(arch)
    neighbours = ofa.neighbours(arch)
    keys = {ofa.key(a) for a in neighbours}
    active = sum(d for d, _ in arch)
    assert len(neighbours) == len(keys) == 5 * (len(OFA_DEPTHS) - 1) + active * 4
    assert ofa.key(arch) not in keys
    for other in neighbours:
        assert sum(base[k] != v for k, v in ofa.to_params(other).items()) == 1


def test_ofa_network_layout(ofa: OFAMobileNetV3Space) -> None:
    arch = _ofa_arch((4, 4, 4, 4, 4), k=7, e=6)
    net = ofa.build_full(arch)
    blocks = [m for m in net.features if type(m).__name__ == "InvertedResidual"]
    assert len(blocks) == 1 + 20
    with_se = [any(isinstance(x, SqueezeExcitation) for x in b.modules()) for b in blocks]
    assert with_se == [False] + [False] * 4 + [True] * 4 + [False] * 4 + [True] * 8
    assert blocks[1].block[0].out_channels == 16 * 6  # expansion of the block's input width
    small = measure(ofa.build_full(_ofa_arch((2,) * 5, k=3, e=3)), 224)
    large = measure(net, 224)
    assert small.flops < 200 < 500 < large.flops


def test_alpha_rule() -> None:
    assert alpha_rule(1.6) == pytest.approx(1.2)  # the code's α = 2 - F/2
    assert alpha_rule(2.0) == pytest.approx(1.0) and alpha_rule(2.0001) == pytest.approx(1.0, 1e-3)
    assert alpha_rule(7.0) == pytest.approx(2 / 7)
    light = [[(2, 3, False)]] * 5
    heavy = [[(6, 7, True)]] * 5
    assert 1.0 < rescale_alpha(light, 10) < 1.3 and rescale_alpha(heavy, 10) < 0.5


@pytest.mark.parametrize("name", ["mobilenetv3", "mobilenetv3-ofa"])
def test_proxy_forward(name: str) -> None:
    sp = get_space(name)
    arch = sp.sample(np.random.default_rng(4))
    x = torch.randn(2, 3, 32, 32)
    net = sp.build_proxy(arch, num_classes=10, width=32)
    assert net(x).shape == (2, 10)
    wide = sp.build_proxy(arch, num_classes=5, width=64)
    assert wide(x).shape == (2, 5)
    assert wide.head.in_features >= 2 * net.head.in_features - 1
    cells = len(list(net.cells))
    assert cells == (5 if name == "mobilenetv3" else sum(d for d, _ in arch))


@pytest.mark.parametrize("name", ["mobilenetv3", "mobilenetv3-ofa"])
def test_suggest_on_optuna_trial(name: str) -> None:
    sp = get_space(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=5))
    trial = study.ask()
    arch = suggest(sp, trial)
    assert sp.from_params(trial.params) == arch
    assert set(trial.params) == set(sp.distributions())
    study.tell(trial, 0.0)
