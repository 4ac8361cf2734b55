"""Many workers on one study (issue 6): how one worker's objective cooperates with the others.

Every worker is an ordinary ``run_study`` on a storage that several processes share
(``python -m mote_optuna worker STUDY.yaml`` on any machine that reaches the storage, or
``python -m mote_optuna run STUDY.yaml --workers N`` for N local ones). They cooperate only
through the storage; no worker knows the others. What one worker's objective does, through
:class:`SharedStudy` (docs/ARCHITECTURE.md, "Many workers"):

- **Exact study-wide budget.** ``n_trials`` counts COMPLETE trials of the whole study, and a run
  ends with exactly that many. Optuna's ``MaxTrialsCallback`` alone overshoots by the trials still
  in flight, so at the start of each trial (before sampling) the objective counts COMPLETE trials,
  RUNNING trials numbered below its own, and queued retries of dead workers' trials:

  - COMPLETE >= n_trials: the trial ends PRUNED, ``fail_reason`` "study budget reached: ... by
    other workers", without training, and this worker stops;
  - all three together < n_trials: the trial goes on;
  - otherwise, when a queued retry would fill the budget: the trial ends PRUNED ("gave way to the
    queued retry #R") and the worker goes on, so that its next ask runs the retry;
  - otherwise the trials in flight could fill the budget: the trial waits (polling the storage,
    heartbeat running, stale trials swept) until one of them finishes and decides again. A trial
    in flight that ends PRUNED or FAIL so leaves room that a waiting trial then takes.

  Budget PRUNED trials cost no training and count nothing; they show in the study with reasons.
- **Shared evaluation cache, no duplicate training.** ``find_evaluated`` looks for a COMPLETE
  equivalent architecture (same ``arch_key``) in the storage. When there is none,
  :meth:`SharedStudy.wait_for_twin` handles equivalent trials in flight: the trial with the lower
  number trains; a trial that sees a RUNNING twin numbered below it, or one that has already
  claimed training (user attr ``evaluating``), waits for it (polling, heartbeat running, at most
  ``workers.wait_limit_s``) and then reuses its values (``cached_from``), or claims training itself
  when the twin ended PRUNED or FAIL. A claim is written first and checked again afterwards, so two
  workers that look at the same moment cannot both train (see the method's docstring).
- **Dead workers.** Trials carry user attr ``worker`` = ``host:pid``. PostgreSQL: Optuna's
  heartbeat (``workers.heartbeat_interval``, ``workers.grace_period``) fails a dead worker's trial
  and queues a retry (``retry_of``). Journal: the objective runs
  :func:`mote_optuna.storage.heartbeat` and every worker sweeps trials silent for
  ``3 x heartbeat_interval`` (at its start and while it waits). SQLite: one process only.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from mote_optuna.budget import count_done
from mote_optuna.config import StudyConfig
from mote_optuna.keys import (
    ARCH_KEY_ATTR,
    EVALUATING_ATTR,
    FAIL_REASON_ATTR,
    FAILED_TRIAL_SYSTEM_ATTR,
    RETRY_OF_ATTR,
    WORKER_ATTR,
)
from mote_optuna.storage.factory import make_storage
from mote_optuna.storage.stale import sweep_stale_trials
from mote_optuna.storage.trial_heartbeat import heartbeat
from mote_optuna.storage.url import JOURNAL, SQLITE, storage_kind

__all__ = ["STALE_FACTOR", "SharedStudy", "storage_for", "worker_name"]

STALE_FACTOR = 3  # journal: a trial silent for 3 heartbeat intervals belongs to a dead worker


def worker_name() -> str:
    """This process as ``host:pid`` (user attr ``worker`` of its trials, lock owner)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _is_retry(trial: FrozenTrial) -> bool:
    return RETRY_OF_ATTR in trial.user_attrs or FAILED_TRIAL_SYSTEM_ATTR in trial.system_attrs


SQLITE_POLL_S = 0.2
"""Seconds between looks at a SQLite study while a trial waits for its twin or for the budget."""


@dataclass
class SharedStudy:
    """How one worker's objective cooperates with the other workers (module docstring).

    ``heartbeat_s``: run :func:`mote_optuna.storage.heartbeat` around each trial (journal);
    ``stale_after_s``: sweep silent RUNNING trials while waiting (journal: that age; PostgreSQL:
    any value, the storage's grace period rules); ``None`` for SQLite (one process).
    """

    n_trials: int
    count: str = "trials"  # what n_trials counts (budget.py)
    heartbeat_s: float | None = None
    stale_after_s: float | None = None
    max_retry: int | None = 2
    wait_limit_s: float = 3600.0
    poll_s: float = 1.0
    worker: str = field(default_factory=worker_name)

    @classmethod
    def for_config(cls, config: StudyConfig) -> SharedStudy:
        opts = config.workers
        kind = storage_kind(config.storage_url)
        return cls(
            n_trials=config.n_trials,
            count=config.count,
            heartbeat_s=float(opts.heartbeat_interval) if kind == JOURNAL else None,
            stale_after_s=STALE_FACTOR * opts.heartbeat_interval if kind != SQLITE else None,
            max_retry=opts.max_retry,
            wait_limit_s=opts.wait_limit_s,
            # SQLite: the trials that wait are this process's own (local_pool.py), a local read
            poll_s=SQLITE_POLL_S
            if kind == SQLITE
            else min(2.0, max(0.1, opts.heartbeat_interval / 10)),
        )

    def sweep(self, study: optuna.Study) -> list[int]:
        """Fail the trials of dead workers and queue their retries; the numbers failed."""
        if self.stale_after_s is None:
            return []
        return sweep_stale_trials(study, older_than_s=self.stale_after_s, max_retry=self.max_retry)

    @contextlib.contextmanager
    def running(self, trial: optuna.Trial) -> Iterator[None]:
        """Wrap a whole trial: heartbeat (journal), ``worker`` attr, then the budget claim."""
        beat = heartbeat(trial, self.heartbeat_s) if self.heartbeat_s else contextlib.nullcontext()
        with beat:
            trial.set_user_attr(WORKER_ATTR, self.worker)
            self.claim_budget(trial)
            yield

    def claim_budget(self, trial: optuna.Trial) -> None:
        """Return when ``trial`` may run within the study-wide budget, else raise TrialPruned."""
        study = trial.study
        mine = trial.number
        is_retry = RETRY_OF_ATTR in trial.user_attrs
        while True:
            self.sweep(study)
            states = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
            trials = study.get_trials(deepcopy=False, states=states)
            complete = count_done(trials, self.count)
            if complete >= self.n_trials:
                with contextlib.suppress(RuntimeError):  # outside optimize there is no loop
                    study.stop()
                _prune(
                    trial,
                    f"study budget reached: {complete}/{self.n_trials} trials completed by other "
                    "workers; this worker stops",
                )
            ahead = [t for t in trials if t.state == TrialState.RUNNING and t.number < mine]
            queued = [] if is_retry else [
                t.number for t in trials if t.state == TrialState.WAITING and _is_retry(t)
            ]  # fmt: skip
            if complete + len(ahead) + len(queued) < self.n_trials:
                return
            if queued and complete + len(ahead) < self.n_trials:
                _prune(trial, f"gave way to the queued retry #{min(queued)} (study budget)")
            time.sleep(self.poll_s)

    def wait_for_twin(self, trial: optuna.Trial, key: str) -> FrozenTrial | None:
        """A COMPLETE equivalent trial to reuse, or None once ``trial`` holds the claim to train.

        Protocol (``arch_key`` is already written): read the RUNNING and COMPLETE trials with
        ``key``. A COMPLETE one is returned. A RUNNING one numbered lower, or one whose
        ``evaluating`` attr is set, blocks: poll until that changes. With no blocker, write
        ``evaluating = True`` and read again; a RUNNING twin numbered lower now means both looked
        at once: take the claim back and wait for it. So if two twins both trained, the higher one
        saw no lower twin after its claim, the lower one wrote its key after that, hence read the
        claim and waited: a contradiction. After ``wait_limit_s`` the trial trains anyway.
        """
        study = trial.study
        mine = trial.number
        if trial.user_attrs.get(EVALUATING_ATTR):  # copied from a failed trial by its retry
            trial.set_user_attr(EVALUATING_ATTR, False)
        deadline = time.monotonic() + self.wait_limit_s
        while True:
            twins = _twins(study, key, mine)
            done = [t for t in twins if t.state == TrialState.COMPLETE]
            if done:
                return done[0]
            blockers = [t for t in twins if t.number < mine or t.user_attrs.get(EVALUATING_ATTR)]
            expired = time.monotonic() > deadline
            if not blockers or expired:
                trial.set_user_attr(EVALUATING_ATTR, True)
                if expired:
                    return None
                again = _twins(study, key, mine)
                done = [t for t in again if t.state == TrialState.COMPLETE]
                if done:
                    return done[0]
                if not any(t.number < mine for t in again):
                    return None
                trial.set_user_attr(EVALUATING_ATTR, False)  # a lower twin came in meanwhile
            time.sleep(self.poll_s)
            self.sweep(study)


def _twins(study: optuna.Study, key: str, exclude: int) -> list[FrozenTrial]:
    """COMPLETE and RUNNING trials with ``arch_key`` = ``key``, lowest number first."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
    found = [t for t in trials if t.number != exclude and t.user_attrs.get(ARCH_KEY_ATTR) == key]
    return sorted(found, key=lambda t: t.number)


def _prune(trial: optuna.Trial, reason: str) -> None:
    trial.set_user_attr(FAIL_REASON_ATTR, reason)
    raise optuna.TrialPruned(reason)


def storage_for(config: StudyConfig, workers: int) -> BaseStorage:
    """The study's storage opened with the ``workers`` section's heartbeat and retry settings."""
    opts = config.workers
    return make_storage(
        config.storage_url,
        workers=workers,
        heartbeat_interval=opts.heartbeat_interval,
        grace_period=opts.grace_period,
        max_retry=opts.max_retry,
    )
