"""What ``n_trials`` counts (``count:`` in the study file), and the stop at that budget.

- ``trials`` (default): COMPLETE trials. A sampler that proposes a cell the study has already
  scored gets its stored values back (``cached_from``, no training) and that trial counts too.
- ``distinct``: distinct evaluated architectures (``arch_key`` of the COMPLETE trials), what a NAS
  user budgets. Re-proposals cost no training and do not count; a study whose sampler keeps
  re-proposing scored cells stops after ``MAX_CONSECUTIVE_REPEATS`` of them in a row.
"""

from __future__ import annotations

from collections.abc import Iterable

import optuna
from optuna.trial import FrozenTrial, TrialState

from mote_optuna.keys import ARCH_KEY_ATTR, CACHED_FROM_ATTR

MAX_CONSECUTIVE_REPEATS = 200


def count_done(trials: Iterable[FrozenTrial], count: str) -> int:
    """How much of the budget ``trials`` use: COMPLETE ones, or their distinct architectures."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if count == "distinct":
        return len({t.user_attrs.get(ARCH_KEY_ATTR, f"#{t.number}") for t in complete})
    return len(complete)


def counted(count: str) -> str:
    """What the budget counts, in words, for progress lines."""
    return "distinct architectures" if count == "distinct" else "completed trials"


def done_in(study: optuna.Study, count: str) -> int:
    return count_done(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), count)


class StopAtDistinct:
    """Stops the study once it holds ``n_trials`` distinct evaluated architectures.

    Optuna's ``MaxTrialsCallback`` counts trials by state only, so ``count: trials`` uses it and
    ``count: distinct`` this callback. ``message`` says why a study stopped short of the budget.
    """

    def __init__(self, n_trials: int) -> None:
        self.n_trials = n_trials
        self.repeats = 0
        self.message = ""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.COMPLETE:
            self.repeats = self.repeats + 1 if CACHED_FROM_ATTR in trial.user_attrs else 0
        if done_in(study, "distinct") >= self.n_trials:
            study.stop()
        elif self.repeats >= MAX_CONSECUTIVE_REPEATS:
            self.message = (
                f"the sampler re-proposed {self.repeats} scored architectures in a row; the "
                "space may be exhausted: lower n_trials, or set count: trials"
            )
            study.stop()


def stop_callback(n_trials: int, count: str) -> optuna.study.MaxTrialsCallback | StopAtDistinct:
    if count == "distinct":
        return StopAtDistinct(n_trials)
    return optuna.study.MaxTrialsCallback(n_trials, states=(TrialState.COMPLETE,))
