"""The quick check of the search-space contract (``spaces.base.SearchSpace``) that every space
loaded by import path passes before a study uses it.

It runs in a second or two: the members exist, a few seeded samples round-trip through the
string and the parameters, their keys are stable, the full network gives one logit per class at
its resolution with positive FLOPs and params, and the reduced network trains on 16x16 and 32x32
inputs. The first failure is one line naming the space, the check and how to fix it. The full
suite, for a space's own tests, is ``mote_optuna.testing.SpaceContract``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import torch

from mote_optuna.cost import count_flops, count_params
from mote_optuna.errors import UserError
from mote_optuna.spaces.base import FullNetSpec, SearchSpace

REQUIRED_METHODS = (
    "distributions",
    "from_params",
    "to_params",
    "to_str",
    "from_str",
    "key",
    "sample",
    "neighbours",
    "build_proxy",
    "build_full",
    "build_live",
)
PROXY_RESOLUTIONS = (16, 32)  # the ``lite`` and ``paper`` budgets' inputs
SAMPLES = 3


class ContractError(UserError):
    """A space that breaks the contract; the message is one line."""


def check_space(space: Any, origin: str) -> SearchSpace:
    """``space`` if it keeps the contract, else ContractError naming ``origin``."""

    def fail(what: str) -> ContractError:
        return ContractError(
            f"space {origin}: {what} (the contract: mote_optuna.spaces.base.SearchSpace; "
            "run mote_optuna.testing.SpaceContract on it)"
        )

    if not isinstance(getattr(space, "name", None), str) or not space.name:
        raise fail("no `name` string")
    if not isinstance(getattr(space, "full_net", None), FullNetSpec):
        raise fail("`full_net` is not a spaces.base.FullNetSpec(resolution, num_classes)")
    if not isinstance(getattr(space, "channels_last", None), bool):
        raise fail("no `channels_last` bool")
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(space, m, None))]
    if missing:
        raise fail(f"missing method(s) {', '.join(missing)}")
    for check in (_check_encoding, _check_networks):
        try:
            check(space)
        except ContractError:
            raise
        except AssertionError as exc:
            raise fail(str(exc)) from None
        except Exception as exc:  # the user's code: any error is a broken contract
            raise fail(
                f"{check.__name__.removeprefix('_check_')}: {type(exc).__name__}: {exc}"
            ) from None
    return space


def _samples(space: SearchSpace) -> list[Any]:
    rng = np.random.default_rng(0)
    return [space.sample(rng) for _ in range(SAMPLES)]


def _check_encoding(space: SearchSpace) -> None:
    distributions = space.distributions()
    if not distributions or not all(
        isinstance(
            d, optuna.distributions.CategoricalDistribution | optuna.distributions.IntDistribution
        )
        for d in distributions.values()
    ):
        raise AssertionError("distributions() must give categorical or int distributions")
    for arch in _samples(space):
        text = space.to_str(arch)
        _expect(space.from_str(text) == arch, f"from_str(to_str(a)) != a for {text!r}")
        _expect(
            space.from_params(space.to_params(arch)) == arch,
            f"from_params(to_params(a)) != a for {text!r}",
        )
        unknown = set(space.to_params(arch)) - set(distributions)
        _expect(
            not unknown, f"to_params gives parameters not in distributions(): {sorted(unknown)}"
        )
        _expect(isinstance(space.key(arch), str), "key() must return a str")
        _expect(space.key(space.from_str(text)) == space.key(arch), f"key() differs for {text!r}")
        _expect(isinstance(space.neighbours(arch), list), "neighbours() must return a list")


def _check_networks(space: SearchSpace) -> None:
    arch = _samples(space)[0]
    r, classes = space.full_net.resolution, space.full_net.num_classes
    full = space.build_full(arch).eval()
    with torch.no_grad():
        shape = tuple(full(torch.zeros(1, 3, r, r)).shape)
    _expect(
        shape == (1, classes), f"build_full gives logits {shape} for 1 image, not (1, {classes})"
    )
    _expect(
        count_flops(full, r) > 0 and count_params(full) > 0,
        "the full network has no FLOPs or params",
    )
    torch.manual_seed(0)
    proxy = space.build_proxy(arch, num_classes=3, width=8)
    for res in PROXY_RESOLUTIONS:
        out = proxy(torch.randn(2, 3, res, res))
        _expect(
            tuple(out.shape) == (2, 3),
            f"build_proxy gives {tuple(out.shape)} at {res}x{res}, not (2, 3)",
        )
        out.sum().backward()


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(what)
