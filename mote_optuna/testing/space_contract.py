"""The search-space contract as a pytest suite: subclass ``SpaceContract`` in your tests.

.. code-block:: python

    from mote_optuna.testing import SpaceContract

    class TestMyBlocks(SpaceContract):
        space_path = "mypkg.spaces:MyBlocks"   # or override the ``space`` fixture
        equivalent = ("0-1-2", "0-2-1")        # two strings of one network, or None

Each test takes the ``space`` fixture; ``equivalent`` names two architectures (their ``to_str``)
that compute the same function, or None when no two distinct architectures of the space are
equivalent (then ``key`` must be injective on samples). The optional parts of the contract
(``spaces.base``: analytic cost, covering architectures, truth table) are checked when the space
has them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import optuna
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mote_optuna.cost import count_flops, count_params
from mote_optuna.latency.units import full_network, input_shape, units
from mote_optuna.spaces import InvalidArchitecture, SearchSpace, get_space, suggest
from mote_optuna.spaces.base import HasAnalyticCost, HasCoveringArchs
from mote_optuna.spaces.contract import PROXY_RESOLUTIONS, check_space


def samples(space: SearchSpace, n: int = 8, seed: int = 0) -> list[Any]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


class SpaceContract:
    """What every search space keeps; see the module docstring for how to use it."""

    space_path: ClassVar[str | None] = None
    equivalent: ClassVar[tuple[str, str] | None] = None

    @pytest.fixture
    def space(self) -> SearchSpace:
        if self.space_path is None:
            raise NotImplementedError("set space_path or override the space fixture")
        return get_space(self.space_path)

    @pytest.fixture
    def equivalent_pair(self) -> tuple[str, str] | None:
        return self.equivalent

    def test_passes_the_quick_check(self, space: SearchSpace) -> None:
        assert check_space(space, space.name) is space

    def test_round_trips_through_the_string_and_the_params(self, space: SearchSpace) -> None:
        for arch in samples(space):
            text = space.to_str(arch)
            assert space.from_str(text) == arch
            assert space.to_str(space.from_str(text)) == text
            assert space.from_params(space.to_params(arch)) == arch

    def test_params_match_the_distributions(self, space: SearchSpace) -> None:
        distributions = space.distributions()
        for arch in samples(space, n=3):
            params = space.to_params(arch)
            assert set(params) <= set(distributions)
            for name, value in params.items():
                dist = distributions[name]
                if isinstance(dist, optuna.distributions.CategoricalDistribution):
                    assert value in dist.choices, (name, value)
                else:
                    assert isinstance(dist, optuna.distributions.IntDistribution), name
                    assert dist.low <= value <= dist.high, (name, value)

    def test_suggest_on_an_optuna_trial(self, space: SearchSpace) -> None:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        trial = study.ask()
        try:
            arch = suggest(space, trial)
        except InvalidArchitecture:  # the objective prunes it; never another error
            return
        assert space.from_params(trial.params) == space.from_params(space.to_params(arch))

    def test_a_malformed_string_is_invalid(self, space: SearchSpace) -> None:
        with pytest.raises(InvalidArchitecture):
            space.from_str("not an architecture")

    def test_equivalent_architectures_share_a_key(
        self, space: SearchSpace, equivalent_pair: tuple[str, str] | None
    ) -> None:
        archs = samples(space, n=30, seed=1)
        for arch in archs:  # the key is a function of the architecture
            assert space.key(space.from_str(space.to_str(arch))) == space.key(arch)
        if equivalent_pair is None:  # no two distinct architectures are equivalent
            distinct = {space.to_str(a) for a in archs}
            assert len({space.key(a) for a in archs}) == len(distinct)
            return
        a, b = (space.from_str(text) for text in equivalent_pair)
        assert equivalent_pair[0] != equivalent_pair[1]
        if a == b:  # a space whose values are canonical (nb-macro) reads both as one value
            assert space.to_str(a) in equivalent_pair
        assert space.key(a) == space.key(b)
        neighbour_keys = {space.key(n) for n in space.neighbours(a)}
        assert neighbour_keys - {space.key(a)}, "some neighbour computes another function"

    @torch.no_grad()
    def test_networks_give_logits_of_the_right_shape(self, space: SearchSpace) -> None:
        arch = samples(space, n=1, seed=2)[0]
        torch.manual_seed(0)
        proxy = space.build_proxy(arch, num_classes=7, width=16).eval()
        for res in PROXY_RESOLUTIONS:
            assert proxy(torch.randn(2, 3, res, res)).shape == (2, 7)
        r = space.full_net.resolution
        x = torch.randn(2, 3, r, r)
        assert space.build_full(arch, num_classes=5).eval()(x).shape == (2, 5)
        live = space.build_live(arch).eval()
        assert live(x).shape == (2, space.full_net.num_classes)

    def test_full_network_flops_are_the_flop_counter_macs(self, space: SearchSpace) -> None:
        """The project's FLOPs (``cost.count_flops``) are torch's flop_counter FLOPs / 2, in
        millions, of one image at the space's full resolution: positive, the same for a rebuilt
        network, never more for the live network, and the analytic cost (``HasAnalyticCost``),
        where the space has one, gives them and the params exactly."""
        arch = samples(space, n=1, seed=3)[0]
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
        if isinstance(space, HasAnalyticCost):
            analytic = space.analytic_cost(arch)
            assert analytic.flops == pytest.approx(flops, rel=1e-9)
            assert analytic.params == pytest.approx(count_params(net), rel=1e-9)

    def test_covering_archs_cover_random_architectures(self, space: SearchSpace) -> None:
        """A latency table measures only ``covering_archs``: their units are all units."""
        if not isinstance(space, HasCoveringArchs):
            pytest.skip(f"{space.name} has no covering_archs (no latency table)")
        shape = input_shape(space)
        covered = {
            u.key
            for a in space.covering_archs()
            for u in units(full_network(space, a, meta=True), shape)
        }
        for arch in samples(space, n=3, seed=4):
            model = full_network(space, arch, meta=True)
            assert {u.key for u in units(model, shape)} <= covered
