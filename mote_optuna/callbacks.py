"""What ``run_study`` calls after every trial: the progress line and the failure guard."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from mote_optuna.budget import done_in
from mote_optuna.config import StudyConfig
from mote_optuna.keys import ARCH_ATTR, CACHED_FROM_ATTR, FAIL_REASON_ATTR

__all__ = [
    "MAX_CONSECUTIVE_FAILURES",
    "MAX_CONSECUTIVE_REJECTIONS",
    "Eta",
    "FailureGuard",
    "ProgressPrinter",
]

MAX_CONSECUTIVE_FAILURES = 3
MAX_CONSECUTIVE_REJECTIONS = 500

Printer = Callable[[str], None]
Clock = Callable[[], float]


class Eta:
    """Time left from the study's recent rate: seconds per counted trial (every worker's, since
    ``done`` is study-wide), averaged with exponentially decaying weights (``smoothing`` on the
    newest interval), times the trials left. A machine that slows down mid-study (another
    process takes a core) shows in the next line: half of the estimate is the newest interval.
    Cached trials count at the speed they had."""

    def __init__(
        self, done: int, *, smoothing: float = 0.5, clock: Clock = time.monotonic
    ) -> None:
        self.clock = clock
        self.smoothing = smoothing
        self.last = (clock(), done)
        self.per_trial: float | None = None

    def __call__(self, done: int, total: int) -> float | None:
        """Seconds left, or None before the first counted trial."""
        now = self.clock()
        t0, d0 = self.last
        if done > d0:
            interval = (now - t0) / (done - d0)
            if self.per_trial is None:
                self.per_trial = interval
            else:
                self.per_trial += self.smoothing * (interval - self.per_trial)
            self.last = (now, done)
        if self.per_trial is None:
            return None
        return max(0, total - done) * self.per_trial


class ProgressPrinter:
    """One line per finished trial: count, number, arch, values, seconds, ETA."""

    def __init__(
        self, config: StudyConfig, done: int, out: Printer, clock: Clock = time.monotonic
    ) -> None:
        self.config = config
        self.out = out
        self.clock = clock
        self.last = clock()
        self.eta = Eta(done, clock=clock)
        self.lock = threading.Lock()  # trials that run at once (local_pool.py) end in threads

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        with self.lock:
            self._print(study, trial)

    def _print(self, study: optuna.Study, trial: FrozenTrial) -> None:
        now = self.clock()
        elapsed, self.last = now - self.last, now
        done = done_in(study, self.config.count)
        attrs = trial.user_attrs
        arch = attrs.get(ARCH_ATTR, "")
        head = f"[{done:>4}/{self.config.n_trials}] trial {trial.number:<4} {arch}"
        eta = self.eta(done, self.config.n_trials)
        if trial.state == TrialState.COMPLETE:
            values = "  ".join(
                f"{name} {value:.4g}"
                for name, value in zip(self.config.objectives, trial.values, strict=True)
            )
            cached = ""
            if CACHED_FROM_ATTR in attrs:
                cached = f" (cached from #{attrs[CACHED_FROM_ATTR]})"
            left = "" if eta is None else f"  ETA {_duration(eta)}"
            self.out(f"{head}  {values}  {elapsed:.1f} s{cached}{left}")
        else:
            reason = attrs.get(FAIL_REASON_ATTR, trial.state.name.lower())
            self.out(f"{head}  {trial.state.name}: {reason}")


class FailureGuard:
    """Stops the study when training keeps diverging or constraints reject nearly everything."""

    def __init__(self) -> None:
        self.failures = 0
        self.rejections = 0
        self.message = ""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.failures = self.failures + 1 if trial.state == TrialState.FAIL else 0
        self.rejections = self.rejections + 1 if trial.state == TrialState.PRUNED else 0
        reason = trial.user_attrs.get(FAIL_REASON_ATTR, "")
        if self.failures >= MAX_CONSECUTIVE_FAILURES:
            self.message = (
                f"{self.failures} trials in a row failed (last: {reason}); lower estimator.lr or "
                "check the dataset, then rerun to continue the study"
            )
        elif self.rejections >= MAX_CONSECUTIVE_REJECTIONS:
            self.message = (
                f"{self.rejections} candidates in a row were rejected (last: {reason}); relax "
                "constraints.max_flops / constraints.max_params"
            )
        if self.message:
            study.stop()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
