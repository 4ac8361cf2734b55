"""Many workers on one study (issue 6): how they share it, and ``run --workers N``.

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
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial, TrialState

from mote_optuna.budget import count_done, counted, done_in
from mote_optuna.compat import RDB_STALE_TRIAL_IDS
from mote_optuna.config import StudyConfig
from mote_optuna.errors import UserError
from mote_optuna.storage import (
    FAIL_REASON_ATTR,
    RETRY_OF_ATTR,
    heartbeat,
    known_secrets,
    make_storage,
    mask_secrets,
    mask_url,
    sweep_stale_trials,
)

WORKER_ATTR = "worker"
EVALUATING_ATTR = "evaluating"
STALE_FACTOR = 3  # journal: a trial silent for 3 heartbeat intervals belongs to a dead worker
INTERRUPT_WAIT_S = 60.0

Printer = Callable[[str], None]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def storage_kind(url: str) -> str:
    """``sqlite``, ``journal`` or ``postgresql``."""
    scheme = url.strip().split(":", 1)[0].lower()
    return "postgresql" if scheme.startswith("postgresql") else scheme


def _is_retry(trial: FrozenTrial) -> bool:
    return RETRY_OF_ATTR in trial.user_attrs or "failed_trial" in trial.system_attrs


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
            heartbeat_s=float(opts.heartbeat_interval) if kind == "journal" else None,
            stale_after_s=STALE_FACTOR * opts.heartbeat_interval if kind != "sqlite" else None,
            max_retry=opts.max_retry,
            wait_limit_s=opts.wait_limit_s,
            poll_s=min(2.0, max(0.1, opts.heartbeat_interval / 10)),
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
    found = [t for t in trials if t.number != exclude and t.user_attrs.get("arch_key") == key]
    return sorted(found, key=lambda t: t.number)


def _prune(trial: optuna.Trial, reason: str) -> None:
    trial.set_user_attr(FAIL_REASON_ATTR, reason)
    raise optuna.TrialPruned(reason)


# --------------------------------------------------------------------------------------------
# The worker command


def refuse_sqlite(url: str) -> None:
    if storage_kind(url) == "sqlite":
        raise UserError(
            f"the worker command shares its study with other processes, but storage {url} is "
            "SQLite, which is for one process: use 'run' for a single process, journal:PATH "
            "(several processes on one host) or postgresql://USER@HOST/DB (several hosts)"
        )


def run_worker(
    config: StudyConfig, *, local_workers: int = 1, out: Printer = print
) -> optuna.Study:
    """One worker of a shared study (the ``worker`` command); returns the study."""
    from mote_optuna.study import run_study

    refuse_sqlite(config.storage_url)
    study = run_study(
        config, workers_on_this_host=local_workers, workers=max(2, local_workers), out=out
    )
    out(
        f"worker {worker_name()} done: study {config.name!r} has "
        f"{done_in(study, config.count)}/{config.n_trials} {counted(config.count)}"
    )
    return study


# --------------------------------------------------------------------------------------------
# run --workers N: N local worker processes


def run_local_workers(
    config: StudyConfig,
    study_file: Path,
    overrides: list[str],
    workers: int,
    *,
    out: Printer = print,
) -> int:
    """Start ``workers`` local ``worker`` processes, forward Ctrl-C, return the exit code.

    0 when every worker ended 0; 2 when all failures were user errors; 1 otherwise. Output lines
    carry a ``wN |`` prefix. SQLite is refused before any process starts.
    """
    from mote_optuna.study import configure_threads

    storage_for(config, workers)  # SQLite refused here, bad PostgreSQL credentials said once
    threads = configure_threads(workers)
    out(
        f"starting {workers} workers ({threads} threads each) for study {config.name!r}, "
        f"storage {mask_url(config.storage_url)}"
    )
    cmd = [sys.executable, "-m", "mote_optuna", "worker", str(study_file)]
    cmd += ["--local-workers", str(workers)]
    for item in overrides:
        cmd += ["--set", item]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    secrets = known_secrets(config.storage_url)
    procs: list[subprocess.Popen[str]] = []
    readers: list[threading.Thread] = []
    try:
        for i in range(1, workers + 1):
            proc = subprocess.Popen(
                cmd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # Ctrl-C reaches only this process, which forwards it
            )
            procs.append(proc)
            for pipe, target in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr)):
                reader = threading.Thread(
                    target=_relay, args=(pipe, target, f"w{i} | ", secrets), daemon=True
                )
                reader.start()
                readers.append(reader)
        try:
            codes = [proc.wait() for proc in procs]
        except KeyboardInterrupt:
            print(f"\nstopping {workers} workers (Ctrl-C) ...", file=sys.stderr, flush=True)
            _interrupt(procs)
            raise
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for reader in readers:
            reader.join(timeout=5)
    failed = [(i, code) for i, code in enumerate(codes, start=1) if code != 0]
    for i, code in failed:
        how = f"signal {-code}" if code < 0 else f"code {code}"
        print(f"worker w{i} exited with {how}", file=sys.stderr)
    if not failed:
        return 0
    return 2 if all(code == 2 for _, code in failed) else 1


def _relay(pipe: IO[str] | None, target: IO[str], prefix: str, secrets: list[str]) -> None:
    if pipe is None:
        return
    with contextlib.suppress(ValueError, OSError):
        for line in pipe:
            target.write(prefix + mask_secrets(line, secrets))
            target.flush()


def _interrupt(procs: list[subprocess.Popen[str]]) -> None:
    """SIGINT each worker (its running trial ends FAIL), wait, then kill what is left."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + INTERRUPT_WAIT_S
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def storage_for(config: StudyConfig, workers: int) -> BaseStorage:
    """The study's storage opened with the ``workers`` section's heartbeat and retry settings."""
    opts = config.workers
    storage = make_storage(
        config.storage_url,
        workers=workers,
        heartbeat_interval=opts.heartbeat_interval,
        grace_period=opts.grace_period,
        max_retry=opts.max_retry,
    )
    if isinstance(storage, RDBStorage) and storage.get_heartbeat_interval() is not None:
        _state_stale_reasons(storage)
    return storage


def _state_stale_reasons(storage: RDBStorage) -> None:
    """Give trials that Optuna's heartbeat fails a ``fail_reason``, like the journal sweep does.

    Optuna fails stale trials (``fail_stale_trials``, before each ask) and only then runs the
    retry callback, when the trial can no longer be changed. Its list of stale trials comes from
    ``RDBStorage._get_stale_trial_ids`` (private, Optuna 4.x-5.0) while they are still RUNNING,
    so this instance's lookup writes the reason first. If that method goes away, trials just fail
    without a reason.
    """
    find = getattr(storage, RDB_STALE_TRIAL_IDS, None)
    if find is None:
        return
    interval = storage.get_heartbeat_interval() or 0
    grace = storage.grace_period if storage.grace_period is not None else 2 * interval

    def stale_trial_ids(study_id: int) -> list[int]:
        ids = find(study_id)
        for trial_id in ids:
            with contextlib.suppress(UpdateFinishedTrialError):
                storage.set_trial_user_attr(
                    trial_id,
                    FAIL_REASON_ATTR,
                    f"worker stopped: no heartbeat for more than {grace} s",
                )
        return ids

    setattr(storage, RDB_STALE_TRIAL_IDS, stale_trial_ids)
