"""What ``run_study`` calls after every trial: the progress line and the failure guard."""

from __future__ import annotations

import statistics
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
    "FailureGuard",
    "ProgressPrinter",
]

MAX_CONSECUTIVE_FAILURES = 3
MAX_CONSECUTIVE_REJECTIONS = 500

Printer = Callable[[str], None]


class ProgressPrinter:
    """One line per finished trial: count, number, arch, values, seconds, ETA."""

    def __init__(self, config: StudyConfig, done: int, out: Printer) -> None:
        self.config = config
        self.out = out
        self.seconds: list[float] = []
        self.last = time.perf_counter()
        self.done_at_start = done

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        now = time.perf_counter()
        elapsed, self.last = now - self.last, now
        done = done_in(study, self.config.count)
        attrs = trial.user_attrs
        arch = attrs.get(ARCH_ATTR, "")
        head = f"[{done:>4}/{self.config.n_trials}] trial {trial.number:<4} {arch}"
        if trial.state == TrialState.COMPLETE:
            self.seconds.append(elapsed)
            values = "  ".join(
                f"{name} {value:.4g}"
                for name, value in zip(self.config.objectives, trial.values, strict=True)
            )
            cached = ""
            if CACHED_FROM_ATTR in attrs:
                cached = f" (cached from #{attrs[CACHED_FROM_ATTR]})"
            left = max(0, self.config.n_trials - done)
            eta = statistics.median(self.seconds) * left
            self.out(f"{head}  {values}  {elapsed:.1f} s{cached}  ETA {_duration(eta)}")
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
