"""The private Optuna and torchvision APIs mote_optuna relies on, in one place (torchvision's
in ``compat_torchvision``, so that what needs only Optuna's does not import torchvision).

Each has no public equivalent in the versions pinned in ``pyproject.toml`` (Optuna 5.0,
torchvision 0.29). ``tests/test_compat.py`` checks every one of them against the installed
versions, so an upgrade that changes them fails there, loudly, not deep inside a study.

- ``Study._storage`` / ``Study._study_id``: the storage and id behind a study object, for sweeping
  stale trials and for caching per study;
- ``optuna.study._multi_objective._fast_non_domination_rank`` and ``_is_pareto_front``: Optuna's
  own non-dominated sorting, which MOTE-NAS's sampler and the search benchmark reuse;
- ``optuna._hypervolume.compute_hypervolume``: Optuna's exact hypervolume;
- ``RDBStorage._get_stale_trial_ids``: where Optuna's heartbeat finds stale trials, overridden by
  the storage that writes their failure reason;
- torchvision's ``_make_divisible`` and ``_mobilenet_v3_conf``: MobileNetV3's width rounding and
  block table, so that the space builds torchvision's own network.
"""

from __future__ import annotations

import numpy as np
from optuna._hypervolume import compute_hypervolume as _compute_hypervolume
from optuna.storages import BaseStorage
from optuna.study import Study
from optuna.study._multi_objective import _fast_non_domination_rank, _is_pareto_front

__all__ = [
    "RDB_STALE_TRIAL_IDS",
    "fast_non_domination_rank",
    "hypervolume",
    "is_pareto_front",
    "study_id",
    "study_storage",
]

RDB_STALE_TRIAL_IDS = "_get_stale_trial_ids"
"""The ``RDBStorage`` method (``study_id -> list[trial_id]``) that lists stale RUNNING trials."""


def study_storage(study: Study) -> BaseStorage:
    """The storage a study object reads and writes."""
    storage: BaseStorage = study._storage
    return storage


def study_id(study: Study) -> int:
    """The storage's id of a study."""
    return int(study._study_id)


def fast_non_domination_rank(losses: np.ndarray) -> np.ndarray:
    """Non-domination rank (0 = Pareto front) of each row of ``losses`` (all minimised)."""
    return np.asarray(_fast_non_domination_rank(losses))


def is_pareto_front(losses: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``losses`` (all minimised) that no other row dominates."""
    return np.asarray(_is_pareto_front(losses, False))


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """The hypervolume that ``points`` (all minimised) dominate up to ``reference``."""
    return float(_compute_hypervolume(points, reference))
