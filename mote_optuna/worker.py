"""The ``worker`` command and ``run --workers N`` (issue 6).

Every worker is an ordinary :func:`~mote_optuna.study.run_study` on a storage that several
processes share: ``python -m mote_optuna worker STUDY.yaml`` on any machine that reaches the
storage, or ``python -m mote_optuna run STUDY.yaml --workers N``, which starts N local ``worker``
processes (:func:`run_local_workers`). They cooperate only through the storage, as
:class:`mote_optuna.shared_study.SharedStudy` tells (exact budget, no duplicate training, dead
workers' trials failed and retried).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import optuna

from mote_optuna.budget import counted, done_in
from mote_optuna.config import StudyConfig
from mote_optuna.errors import UserError
from mote_optuna.shared_study import storage_for, worker_name
from mote_optuna.storage.secrets import known_secrets, mask_secrets
from mote_optuna.storage.url import is_sqlite, mask_url
from mote_optuna.study import configure_threads, run_study

__all__ = ["INTERRUPT_WAIT_S", "refuse_sqlite", "run_local_workers", "run_worker"]

INTERRUPT_WAIT_S = 60.0

Printer = Callable[[str], None]


# --------------------------------------------------------------------------------------------
# The worker command


def refuse_sqlite(url: str) -> None:
    if is_sqlite(url):
        raise UserError(
            f"the worker command shares its study with other processes, but storage {url} is "
            "SQLite, which is for one process: use 'run' for a single process, journal:PATH "
            "(several processes on one host) or postgresql://USER@HOST/DB (several hosts)"
        )


def run_worker(
    config: StudyConfig, *, local_workers: int = 1, out: Printer = print
) -> optuna.Study:
    """One worker of a shared study (the ``worker`` command); returns the study."""
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
