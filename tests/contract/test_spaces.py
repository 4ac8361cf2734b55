"""The search-space contract (``spaces.base.SearchSpace``), checked on every registered space
with the public suite ``mote_optuna.testing.SpaceContract``.

A new space in ``spaces.registry`` runs through this suite as it is; it only needs an entry in
EQUIVALENT (two strings of architectures that compute the same function, or None when no two
distinct architectures of the space are equivalent). A space may read such strings as one
canonical value (``nb-macro``) or as two values with one key.
"""

from __future__ import annotations

import pytest

from mote_optuna.spaces import SPACE_NAMES, SearchSpace, get_space
from mote_optuna.testing import SpaceContract

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
    "anb": None,  # the key is the string: every choice of every block is built
    # an identity after a stage's first layer is a pass-through: the table's canonical_arch of
    # both codes is 00210000
    "nb-macro": ("00201000", "00210000"),
}


@pytest.fixture(params=SPACE_NAMES)
def registered(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class TestRegisteredSpaces(SpaceContract):
    """The public suite (``mote_optuna.testing.SpaceContract``) on every registered space."""

    @pytest.fixture
    def space(self, registered: str) -> SearchSpace:
        return get_space(registered)

    @pytest.fixture
    def equivalent_pair(self, registered: str) -> tuple[str, str] | None:
        return EQUIVALENT[registered]


def test_every_registered_space_has_an_equivalence_case() -> None:
    assert set(EQUIVALENT) == set(SPACE_NAMES)


def test_name_matches_the_registry(registered: str) -> None:
    assert get_space(registered).name == registered
