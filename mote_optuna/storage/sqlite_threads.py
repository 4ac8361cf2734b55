"""Optuna's SQLite storage for one process whose trials run in threads (local_pool.py)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from optuna.storages import RDBStorage
from optuna.trial import TrialState

__all__ = ["ThreadSafeSQLiteStorage"]

_STATE_LOCK = threading.Lock()


class ThreadSafeSQLiteStorage(RDBStorage):
    """RDBStorage whose trial state change is a check-and-set under a lock.

    Optuna takes a WAITING trial (a queued retry) by reading it with ``SELECT ... FOR UPDATE``
    and setting it RUNNING; SQLite has no ``FOR UPDATE``, so two threads of one process could
    both take the same trial, and the second one's ``tell`` then fails ("Cannot tell a COMPLETE
    trial"). SQLite has one writer process (the storage factory refuses more), so a lock in this
    process makes the check and the set one step.
    """

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        with _STATE_LOCK:
            return super().set_trial_state_values(trial_id, state, values)
