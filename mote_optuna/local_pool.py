"""Several trials at once on one host, each scored in a single-thread process of its own.

Why (issue 23; docs/BENCHMARKS.md, "A busy machine"): a small network gains little from a second
torch thread (1.33x on 2 idle cores), and torch's OpenMP threads spin while another process holds
a core, so one multi-threaded trial at a time collapses as soon as anything else runs. One thread
per process and one process per core uses every core and cannot spin.

The study itself (sampler, storage, cache, budget) stays in the calling process: Optuna runs
``n`` trials at once in threads (``study.optimize(n_jobs=n)``) and only each trial's
``estimator.evaluate`` is sent to a process of the pool. So a SQLite study keeps one writer
process, and the exact budget and shared cache of shared_study.py hold as for several workers.

The pool's processes are started with ``spawn`` (no fork of a process whose OpenMP threads are
running) as soon as the run starts, so that their imports overlap the caller's setup, and
receive the estimator after any calibration fitted it.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle
import threading
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, Literal

import torch

from mote_optuna.estimators.contract import Estimator, Evaluation
from mote_optuna.spaces import SearchSpace

__all__ = ["ScoringPool", "ScoringProcessDied", "available_cores", "resolve_local", "thread_env"]

PASSIVE_WAIT = {"OMP_WAIT_POLICY": "PASSIVE"}
"""OpenMP threads that wait sleep instead of spinning (set before torch starts its threads)."""


class ScoringProcessDied(RuntimeError):
    """The pool process scoring a trial died (killed, out of memory): that trial ends FAIL."""


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. ``taskset`` or a container's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def resolve_local(local: int | Literal["auto"], device: torch.device) -> int:
    """Trials at once on this host: ``auto`` is one per available core on a CPU, 1 on a GPU."""
    if local != "auto":
        return local
    return 1 if device.type == "cuda" else available_cores()


def thread_env(threads: int) -> dict[str, str]:
    """Environment that holds a process's OpenMP/MKL threads to ``threads``, waiting passively."""
    text = str(threads)
    return {**PASSIVE_WAIT, "OMP_NUM_THREADS": text, "MKL_NUM_THREADS": text}


@contextmanager
def _environment(extra: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_ENV_LOCK = threading.Lock()

# the estimator and space of this pool process, with the token of the payload they came from
_scorer: tuple[int, Estimator, SearchSpace] | None = None


def _start(threads: int, parent: int) -> None:
    torch.set_num_threads(threads)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """End this pool process when the process that started it is gone (even by SIGKILL, which
    leaves the pool's queues open, so the process would otherwise wait for work forever)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _evaluate(token: int, payload: bytes, arch: Any) -> Evaluation:
    global _scorer
    if _scorer is None or _scorer[0] != token:
        estimator, space = pickle.loads(payload)
        _scorer = (token, estimator, space)
    _, estimator, space = _scorer
    return estimator.evaluate(space, arch)


def _ready() -> None:
    return None


class ScoringPool:
    """An estimator whose ``evaluate`` runs in one of ``processes`` single-thread processes.

    The processes start at once (importing torch while the caller loads its data and study);
    :meth:`load` gives them the estimator, once its calibration is done: it travels pickled
    with each trial and is unpickled once per process. Everything else (``describe``,
    ``known_cost``, ...) is the loaded estimator's. A process that dies (killed, out of memory)
    fails only the trial it was scoring: the pool is started again for the next ones. Use as a
    context manager, or call :meth:`close`.
    """

    def __init__(self, processes: int, threads: int = 1) -> None:
        self.processes = processes
        self.threads = threads
        self.inner: Estimator | None = None
        self._payload = b""
        self._token = 0
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        with _ENV_LOCK, _environment(thread_env(self.threads)):
            pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start,
                initargs=(self.threads, os.getpid()),
            )
            # start every process now, while the environment holds (processes start on demand)
            for _ in range(self.processes):
                pool.submit(_ready)
        return pool

    def load(self, estimator: Estimator, space: SearchSpace) -> ScoringPool:
        """Score with ``estimator`` on ``space`` from now on."""
        self.inner = estimator
        self._payload = pickle.dumps((estimator, space))
        self._token += 1
        return self

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)

    def describe(self) -> dict[str, Any]:
        assert self.inner is not None, "ScoringPool.load first"
        return self.inner.describe()

    def evaluate(self, space: SearchSpace, arch: Any) -> Evaluation:
        assert self.inner is not None, "ScoringPool.load first"
        with self._lock:
            pool = self._pool
        try:
            return pool.submit(_evaluate, self._token, self._payload, arch).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:  # the first trial to see it starts a new pool
                    self._pool = self._new_pool()
            raise ScoringProcessDied(
                "the process scoring this trial died (killed, or out of memory); the next "
                "trials start a new one"
            ) from None

    def close(self) -> None:
        with self._lock:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ScoringPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
