"""Trials of dead workers: fail them with a reason, and queue a retry of each.

How a retry is linked to the trial it replaces, for every storage:

- user attr ``retry_of`` on the retry = number of the trial it replaces (the one just before it);
- system attr ``failed_trial`` = number of the *first* trial of the chain and system attr
  ``retry_history`` = all trial numbers of the chain, oldest first. Both are written by Optuna's
  ``RetryHeartbeatStaleTrialCallback``; read them with
  ``RetryHeartbeatStaleTrialCallback.retried_trial_number(t)`` and ``.retry_history(t)``.

A failed trial carries user attr ``fail_reason``: written by :func:`sweep_stale_trials` (journal,
SQLite), or on PostgreSQL by :class:`ReasonedRDBStorage` while Optuna collects the stale trials
(Optuna marks them FAIL before the retry callback runs, and a finished trial cannot be changed).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from datetime import datetime

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import FrozenTrial, TrialState

from mote_optuna.compat import RDB_STALE_TRIAL_IDS, study_storage
from mote_optuna.keys import FAIL_REASON_ATTR, HEARTBEAT_ATTR, RETRY_OF_ATTR
from mote_optuna.storage.trial_heartbeat import heartbeat_enabled, quiet_heartbeat_warnings

__all__ = [
    "DEFAULT_MAX_RETRY",
    "ReasonedRDBStorage",
    "RetryStaleTrialCallback",
    "last_sign_of_life",
    "sweep_stale_trials",
]

_logger = logging.getLogger("mote_optuna.storage")

DEFAULT_MAX_RETRY = 2


class RetryStaleTrialCallback(RetryHeartbeatStaleTrialCallback):
    """Optuna's :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` plus a visible link.

    The WAITING retry gets everything Optuna gives it (same params and distributions, the failed
    trial's user attrs, system attrs ``failed_trial`` and ``retry_history``) and in addition user
    attr ``retry_of`` = the number of the trial it replaces, which optuna-dashboard shows.
    The failed trial's ``heartbeat`` and ``fail_reason`` user attrs are not copied.
    """

    def __call__(self, study: optuna.study.Study, trial: FrozenTrial) -> None:
        linked = copy.deepcopy(trial)
        user_attrs = {
            k: v
            for k, v in trial.user_attrs.items()
            if k not in (HEARTBEAT_ATTR, FAIL_REASON_ATTR)
        }
        user_attrs[RETRY_OF_ATTR] = trial.number
        linked.user_attrs = user_attrs
        super().__call__(study, linked)


class ReasonedRDBStorage(RDBStorage):
    """An :class:`~optuna.storages.RDBStorage` whose heartbeat failures carry ``fail_reason``.

    Optuna fails stale trials (``fail_stale_trials``, before each ask) and only then runs the
    retry callback, when the trial can no longer be changed. Its list of stale trials comes from
    the private method named by :data:`mote_optuna.compat.RDB_STALE_TRIAL_IDS` while they are
    still RUNNING, so this storage's override writes the reason first, like the journal sweep
    does. ``make_storage`` opens one whenever the heartbeat is on (PostgreSQL). If Optuna drops
    that method, the override is not installed and trials just fail without a reason.
    """

    def _stale_trial_ids_with_reason(self, study_id: int) -> list[int]:
        ids: list[int] = getattr(super(), RDB_STALE_TRIAL_IDS)(study_id)
        interval = self.get_heartbeat_interval() or 0
        grace = self.grace_period if self.grace_period is not None else 2 * interval
        for trial_id in ids:
            with contextlib.suppress(UpdateFinishedTrialError):
                self.set_trial_user_attr(
                    trial_id,
                    FAIL_REASON_ATTR,
                    f"worker stopped: no heartbeat for more than {grace} s",
                )
        return ids


if hasattr(RDBStorage, RDB_STALE_TRIAL_IDS):
    setattr(
        ReasonedRDBStorage, RDB_STALE_TRIAL_IDS, ReasonedRDBStorage._stale_trial_ids_with_reason
    )


def sweep_stale_trials(
    study: optuna.study.Study,
    *,
    older_than_s: float,
    max_retry: int | None = DEFAULT_MAX_RETRY,
) -> list[int]:
    """Fail the RUNNING trials that show no sign of life and queue a retry of each.

    A trial's last sign of life is the later of its start time and its ``heartbeat`` user attr
    (written by ``touch_heartbeat`` / ``heartbeat``). A RUNNING trial whose last sign of life is
    ``older_than_s`` seconds old or more is stale: it gets user attr ``fail_reason``, is set to
    FAIL, and :class:`RetryStaleTrialCallback` adds a WAITING trial with the same params, user
    attr ``retry_of`` = the failed trial's number and Optuna's system attrs ``failed_trial`` and
    ``retry_history``, unless the chain already had ``max_retry`` retries. The next
    ``optimize``/``ask`` of any worker runs the retry first.

    Use it with storages that have no heartbeat of their own:

    - journal: at worker start and between trials, with ``older_than_s`` several times the
      objective's heartbeat interval (a trial that does not call ``heartbeat`` counts as alive
      only for ``older_than_s`` after its start);
    - SQLite (one process): at the start of a run with ``older_than_s=0``; every RUNNING trial
      is then a leftover of a killed run.

    With a storage whose Optuna heartbeat is on (PostgreSQL), this calls Optuna's
    :func:`optuna.storages.fail_stale_trials` instead, ``older_than_s`` is ignored (the storage's
    ``grace_period`` rules) and retries follow the storage's own callback.

    Two workers sweeping at once are safe: only one of them can fail a given trial.

    Returns:
        The numbers of the trials this call failed, ascending.
    """
    storage = study_storage(study)
    if heartbeat_enabled(storage):
        running = {
            t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        }
        with quiet_heartbeat_warnings():
            fail_stale_trials(study)
        failed_now = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        return sorted(t.number for t in failed_now if t.number in running)

    with quiet_heartbeat_warnings():
        callback = RetryStaleTrialCallback(max_retry=max_retry)
    now = time.time()
    failed: list[int] = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        age = now - last_sign_of_life(trial)
        if age < older_than_s:
            continue
        shown = "ever" if math.isinf(age) else f"{age:.0f} s"
        reason = f"worker stopped: trial found RUNNING with no progress for {shown}"
        try:
            storage.set_trial_user_attr(trial._trial_id, FAIL_REASON_ATTR, reason)
            if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:
            continue  # finished meanwhile, by its worker or by another sweep
        failed.append(trial.number)
        _logger.warning("trial %d failed: %s", trial.number, reason)
        callback(study, copy.deepcopy(storage.get_trial(trial._trial_id)))
    return sorted(failed)


def last_sign_of_life(trial: FrozenTrial) -> float:
    """Epoch seconds of the later of start time and ``heartbeat`` attr; -inf if neither."""
    stamps = [-math.inf]
    if trial.datetime_start is not None:
        stamps.append(trial.datetime_start.timestamp())  # naive = local time, as Optuna stores it
    beat = trial.user_attrs.get(HEARTBEAT_ATTR)
    if isinstance(beat, str):
        with contextlib.suppress(ValueError):
            stamps.append(datetime.fromisoformat(beat).timestamp())
    elif isinstance(beat, int | float):
        stamps.append(float(beat))
    return max(stamps)
