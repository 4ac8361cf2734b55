"""The search-space contract (``spaces.base.SearchSpace``), checked on every registered space.

A new space in ``spaces.registry`` runs through this suite as it is; it only needs an entry in
EQUIVALENT (two strings of architectures that compute the same function, or None when no two
distinct architectures of the space are equivalent). A space may read such strings as one
canonical value (``nb-macro``) or as two values with one key.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mote_optuna.cost import count_flops
from mote_optuna.estimators.table import nb201_cost
from mote_optuna.spaces import SPACE_NAMES, InvalidArchitecture, SearchSpace, get_space, suggest

NB201_SAME = (
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    # node 1 feeds nothing that reaches the output, so its op does not matter
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
)
NB101_SAME = (  # the NAS-Bench-101 README's isomorphic pair
    '{"matrix":[[0,1,1,1,0,1,0],[0,0,0,0,0,0,1],[0,0,0,0,0,0,1],[0,0,0,0,1,0,0],'
    '[0,0,0,0,0,0,1],[0,0,0,0,0,0,1],[0,0,0,0,0,0,0]],"ops":["input","conv1x1-bn-relu",'
    '"conv3x3-bn-relu","conv3x3-bn-relu","conv3x3-bn-relu","maxpool3x3","output"]}',
    '{"matrix":[[0,1,1,1,1,0,0],[0,0,0,0,0,0,1],[0,0,0,0,0,0,1],[0,0,0,0,0,0,1],'
    '[0,0,0,0,0,1,0],[0,0,0,0,0,0,1],[0,0,0,0,0,0,0]],"ops":["input","conv3x3-bn-relu",'
    '"conv1x1-bn-relu","maxpool3x3","conv3x3-bn-relu","conv3x3-bn-relu","output"]}',
)
OFA_SAME = (  # blocks beyond a stage's depth are not built
    "k3e4,k3e4/k3e4,k3e4|k3e4,k3e4,k3e4/k3e4|k3e4,k3e4,k3e4,k3e4|k3e4,k3e4/k3e4,k3e4|"
    "k3e4,k3e4,k3e4/k3e4",
    "k3e4,k3e4/k7e4,k3e4|k3e4,k3e4,k3e4/k3e4|k3e4,k3e4,k3e4,k3e4|k3e4,k3e4/k3e4,k3e6|"
    "k3e4,k3e4,k3e4/k3e4",
)
EQUIVALENT: dict[str, tuple[str, str] | None] = {
    "nb201": NB201_SAME,
    "nb101": NB101_SAME,
    "mobilenetv3": None,  # the key is the string: every block of every stage is built
    "mobilenetv3-ofa": OFA_SAME,
    # an identity after a stage's first layer is a pass-through: the table's canonical_arch of
    # both codes is 00210000
    "nb-macro": ("00201000", "00210000"),
}
PROXY_RESOLUTION = 32  # the MOTE proxy's input (estimator.resolution default)


@pytest.fixture(params=SPACE_NAMES)
def space(request: pytest.FixtureRequest) -> SearchSpace:
    return get_space(request.param)


def _samples(space: SearchSpace, n: int = 8, seed: int = 0) -> list[Any]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def test_every_registered_space_has_an_equivalence_case() -> None:
    assert set(EQUIVALENT) == set(SPACE_NAMES)


def test_name_matches_the_registry(space: SearchSpace) -> None:
    assert get_space(space.name).name == space.name


def test_round_trips_through_the_benchmark_string_and_the_params(space: SearchSpace) -> None:
    for arch in _samples(space):
        text = space.to_str(arch)
        assert space.from_str(text) == arch
        assert space.to_str(space.from_str(text)) == text
        assert space.from_params(space.to_params(arch)) == arch


def test_params_match_the_distributions(space: SearchSpace) -> None:
    distributions = space.distributions()
    for arch in _samples(space, n=3):
        params = space.to_params(arch)
        assert set(params) <= set(distributions)
        for name, value in params.items():
            dist = distributions[name]
            if isinstance(dist, optuna.distributions.CategoricalDistribution):
                assert value in dist.choices, (name, value)
            else:
                assert isinstance(dist, optuna.distributions.IntDistribution), name
                assert dist.low <= value <= dist.high, (name, value)


def test_suggest_on_an_optuna_trial(space: SearchSpace) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    try:
        arch = suggest(space, trial)
    except InvalidArchitecture:  # the objective prunes it; never another error
        return
    assert space.from_params(trial.params) == arch


def test_equivalent_architectures_share_a_key(space: SearchSpace) -> None:
    case = EQUIVALENT[space.name]
    archs = _samples(space, n=30, seed=1)
    for arch in archs:  # the key is a function of the architecture
        assert space.key(space.from_str(space.to_str(arch))) == space.key(arch)
    if case is None:  # no two distinct architectures are equivalent: the key is injective
        distinct = {space.to_str(a) for a in archs}
        assert len({space.key(a) for a in archs}) == len(distinct)
        return
    a, b = (space.from_str(text) for text in case)
    assert case[0] != case[1]
    if a == b:  # a space whose values are canonical (nb-macro) reads both strings as one value
        assert space.to_str(a) in case
    else:
        assert space.to_str(a) != space.to_str(b)
    assert space.key(a) == space.key(b)
    neighbour_keys = {space.key(n) for n in space.neighbours(a)}
    assert neighbour_keys - {space.key(a)}, "some neighbour computes another function"


@torch.no_grad()
def test_reduced_and_full_networks_give_logits_of_the_right_shape(space: SearchSpace) -> None:
    arch = _samples(space, n=1, seed=2)[0]
    x = torch.randn(2, 3, PROXY_RESOLUTION, PROXY_RESOLUTION)
    torch.manual_seed(0)
    proxy = space.build_proxy(arch, num_classes=7, width=16).eval()
    assert proxy(x).shape == (2, 7)
    full = space.build_full(arch, num_classes=5).eval()
    assert full(x).shape == (2, 5)
    live = space.build_live(arch).eval()
    assert live(x).shape == (2, space.full_net.num_classes)


def test_full_network_flops_are_the_flop_counter_macs(space: SearchSpace) -> None:
    """The project's FLOPs (``cost.count_flops``) are torch's flop_counter FLOPs / 2, in millions,
    of one image at the space's full resolution: positive, the same for a rebuilt network, never
    more for the live network, and NB201's op-count formula (``nb201_cost``) gives them exactly."""
    arch = _samples(space, n=1, seed=3)[0]
    torch.manual_seed(0)
    net = space.build_full(arch).eval()
    r = space.full_net.resolution
    flops = count_flops(net, r)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(torch.zeros(1, 3, r, r))
    assert flops > 0
    assert flops == pytest.approx(counter.get_total_flops() / 2 / 1e6, rel=1e-12)
    assert count_flops(space.build_full(arch), r) == pytest.approx(flops, rel=1e-12)
    assert count_flops(space.build_live(arch), r) <= flops * (1 + 1e-12)  # no op added
    if space.name == "nb201":  # NB201's cost is an exact function of its op counts
        assert nb201_cost(space, arch).flops == pytest.approx(flops, rel=1e-9)
