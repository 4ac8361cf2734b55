"""Every estimator by name, and the factory that builds the one a study needs.

A study's ``ensemble`` objective picks the ensemble estimator; otherwise ``estimator.kind`` picks
how the ``mote`` objective is scored. The names are in ``names`` (config validates against them).
"""

from __future__ import annotations

from collections.abc import Callable

from mote_optuna.config import StudyConfig
from mote_optuna.estimators.contract import Estimator
from mote_optuna.estimators.ensemble import EnsembleEstimator
from mote_optuna.estimators.names import ESTIMATOR_KINDS, SCORE_NAMES
from mote_optuna.estimators.proxy_mote import ProxyMote
from mote_optuna.estimators.table import TableEstimator
from mote_optuna.spaces import SearchSpace

EstimatorFactory = Callable[[StudyConfig, SearchSpace], Estimator]

# estimator.kind -> the estimator of the ``mote`` objective
BY_KIND: dict[str, EstimatorFactory] = {
    "mote": ProxyMote.from_config,
    "table": TableEstimator.from_config,
}
# a score other than ``mote`` -> the estimator that computes it (chosen by the objective)
BY_SCORE: dict[str, EstimatorFactory] = {
    "ensemble": EnsembleEstimator.from_config,
}

if set(BY_KIND) != set(ESTIMATOR_KINDS) or {"mote", *BY_SCORE} != set(SCORE_NAMES):
    raise ImportError(
        "estimators.registry and estimators.names disagree: "
        f"kinds {sorted(BY_KIND)} vs {sorted(ESTIMATOR_KINDS)}, "
        f"scores {sorted(['mote', *BY_SCORE])} vs {sorted(SCORE_NAMES)}"
    )


def make_estimator(config: StudyConfig, space: SearchSpace) -> Estimator:
    for score, factory in BY_SCORE.items():
        if score in config.objectives:
            return factory(config, space)
    return BY_KIND[config.estimator.kind](config, space)
