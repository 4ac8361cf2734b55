"""The candidates of the second stage: a study's distinct architectures, best score first.

The score is the study's trained estimate among its objectives (``mote`` or ``ensemble``), else
its first objective. Ranking rule: best score first (the objective's direction); equal scores
in order of trial number, lowest first; each architecture once (by ``arch_key``, the space's
canonical key, so equivalent cells count once), represented by its first trial in that order.
Only COMPLETE trials rank: pruned ones (over a budget) are not candidates.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from mote_optuna.estimators.names import SCORE_NAMES
from mote_optuna.keys import ARCH_ATTR, ARCH_KEY_ATTR
from mote_optuna.spaces import SearchSpace

__all__ = ["arch_key", "arch_string", "ranked_distinct", "score_index", "top_k"]


def score_index(objectives: list[str]) -> int:
    """Index of the study's score among its objectives (mote or ensemble), else 0."""
    return next((i for i, name in enumerate(objectives) if name in SCORE_NAMES), 0)


def arch_key(trial: FrozenTrial) -> str:
    """The trial's canonical architecture key (its params when it has none stored)."""
    return str(trial.user_attrs.get(ARCH_KEY_ATTR, repr(sorted(trial.params.items()))))


def arch_string(space: SearchSpace, trial: FrozenTrial) -> str:
    """The trial's architecture as the space's string (``space.to_str``)."""
    stored = trial.user_attrs.get(ARCH_ATTR)
    return str(stored) if stored else space.to_str(space.from_params(trial.params))


def ranked_distinct(study: optuna.Study, objectives: list[str]) -> list[FrozenTrial]:
    """Every distinct architecture's first COMPLETE trial, best score first (module rule)."""
    index = score_index(objectives)
    sign = -1.0 if study.directions[index] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    ranked = sorted(complete, key=lambda t: (sign * t.values[index], t.number))
    picked: dict[str, FrozenTrial] = {}
    for trial in ranked:
        picked.setdefault(arch_key(trial), trial)
    return list(picked.values())


def top_k(study: optuna.Study, objectives: list[str], k: int) -> list[FrozenTrial]:
    """The ``k`` best distinct architectures (fewer when the study has fewer)."""
    return ranked_distinct(study, objectives)[:k]
