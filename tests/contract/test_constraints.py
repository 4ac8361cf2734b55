"""The FLOPs budget, checked on every registered space: a candidate over ``constraints.max_flops``
ends PRUNED before any training, with its cost and reason stored; one under it is trained.

The two candidates are the largest and the smallest of a few seeded samples of the space, and the
budget lies halfway between their FLOPs, so the suite needs no per-space architecture strings.
Real MOTE at the ``tiny`` budget on digits (unit Box-Cox constants: no calibration warm-up).
"""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from helpers import UNIT_BOXCOX, CountingEstimator
from optuna.trial import TrialState

from mote_optuna.config import config_from_dict
from mote_optuna.cost import measure
from mote_optuna.errors import UserError
from mote_optuna.estimators.registry import make_estimator
from mote_optuna.keys import FAIL_REASON_ATTR, FLOPS_ATTR
from mote_optuna.objective import Objective
from mote_optuna.spaces import SPACE_NAMES, get_space


@pytest.mark.parametrize("space_name", SPACE_NAMES)
def test_flops_budget_rejects_candidates_before_training(space_name: str) -> None:
    space = get_space(space_name)
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(6)]
    flops = [measure(space.build_full(a), space.full_net.resolution).flops for a in samples]
    big, small = samples[int(np.argmax(flops))], samples[int(np.argmin(flops))]
    budget = (max(flops) + min(flops)) / 2
    config = config_from_dict(
        {
            "name": "t",
            "space": space_name,
            "sampler": {"name": "random", "seed": 0},
            "constraints": {"max_flops": budget},
            "estimator": {"budget": "tiny", "boxcox": UNIT_BOXCOX},
            "dataset": {"name": "digits"},
            "device": "cpu",
        }
    )
    estimator = CountingEstimator(make_estimator(config, space))
    study = optuna.create_study(directions=config.directions)
    for arch in (big, small):
        study.enqueue_trial(space.to_params(arch))
    study.optimize(Objective(config, space, estimator), n_trials=2)
    rejected, accepted = study.trials
    assert rejected.state == TrialState.PRUNED and accepted.state == TrialState.COMPLETE
    assert estimator.calls == 1
    assert rejected.user_attrs[FLOPS_ATTR] == pytest.approx(max(flops))
    assert rejected.user_attrs[FLOPS_ATTR] > budget >= accepted.user_attrs[FLOPS_ATTR]
    assert rejected.user_attrs[FAIL_REASON_ATTR].startswith("over budget: flops")
    assert rejected.constraints["max_flops"] > 0 >= accepted.constraints["max_flops"]
    assert "landscape_term" not in rejected.user_attrs


def test_margins_and_exceeded_budgets() -> None:
    """One check of a cost against the budgets, for the objective and the warm-up alike."""
    constraints = config_from_dict(
        {"name": "t", "constraints": {"max_flops": 100.0, "max_params": 2.0}}
    ).constraints
    usage = {"max_flops": 120.0, "max_params": 1.5, "max_latency_ms": None}
    assert constraints.margins(usage) == {"max_flops": 20.0, "max_params": -0.5}
    assert constraints.exceeded(usage) == ["flops 120 > 100"]
    assert constraints.exceeded({**usage, "max_flops": 100.0}) == []
    constraints.max_latency_ms = 5.0  # a latency budget with no latency measured
    with pytest.raises(UserError, match="max_latency_ms: this study does not measure"):
        constraints.margins(usage)
