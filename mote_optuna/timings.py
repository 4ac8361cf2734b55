"""Where a study's time went, from its own records: the one reading of trial timings, for
``report`` (its timing line) and ``bench study-timings``.

A trial's seconds count only where it **trained**: a COMPLETE trial with ``trial_seconds`` and no
``cached_from`` (a trial that reused another's values copies that trial's estimator attributes,
``mote_seconds`` and the like, which must not count twice). The calibration's warm-up candidates
(``calibration_warmup``) trained before the first sampled trial; they count as trained and are
told apart from the **sampled** trials (every other COMPLETE trial, cached ones included). The
sampled trials' span runs from the first one's start to the last one's end; their gaps are the
idle seconds between one trial's end and the next one's start, in order of start (one trial at a
time: storage and sampler; several at once overlap, and the gaps can be negative).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState

from mote_optuna.keys import (
    CACHED_FROM_ATTR,
    CALIBRATION_WARMUP_ATTR,
    MOTE_SECONDS_ATTR,
    TRIAL_SECONDS_ATTR,
)

__all__ = ["PARTS", "StudyTimings", "study_timings", "trained"]

PARTS = (TRIAL_SECONDS_ATTR, MOTE_SECONDS_ATTR, "train_seconds", "ensemble_seconds")
"""The seconds a trial records: all of it, MOTE, MOTE's training, the ensemble with its terms."""


@dataclass(frozen=True)
class StudyTimings:
    states: dict[str, int]  # trials by state name, most frequent first
    complete: int
    trained: list[float]  # trial_seconds of every trained trial (warm-up included)
    warmup: int  # COMPLETE warm-up candidates
    sampled: int  # COMPLETE trials that are not warm-up (cached ones included)
    span_s: float | None  # first sampled start .. last sampled end
    gaps_s: float | None  # idle seconds between consecutive sampled trials
    parts: dict[str, list[float]] = field(default_factory=dict)  # PARTS of trained sampled trials

    @property
    def cached(self) -> int:
        """COMPLETE trials that did not train (reused values)."""
        return self.complete - len(self.trained)


def trained(trial: FrozenTrial) -> bool:
    """A COMPLETE trial that ran its estimator (not one that reused another's values)."""
    return (
        trial.state == TrialState.COMPLETE
        and TRIAL_SECONDS_ATTR in trial.user_attrs
        and CACHED_FROM_ATTR not in trial.user_attrs
    )


def study_timings(study: optuna.Study) -> StudyTimings:
    """The study's timings (module rules)."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    warmup = [t for t in complete if t.user_attrs.get(CALIBRATION_WARMUP_ATTR)]
    sampled = [t for t in complete if not t.user_attrs.get(CALIBRATION_WARMUP_ATTR)]
    timed = sorted(
        (t for t in sampled if t.datetime_start and t.datetime_complete),
        key=lambda t: (t.datetime_start, t.number),
    )
    span: float | None = None
    gaps: float | None = None
    if timed:
        end = max(t.datetime_complete for t in timed if t.datetime_complete)
        span = (end - min(t.datetime_start for t in timed if t.datetime_start)).total_seconds()
        gaps = 0.0
        for a, b in itertools.pairwise(timed):
            gaps += (b.datetime_start - a.datetime_complete).total_seconds()  # type: ignore[operator]
    parts = {
        part: [float(t.user_attrs[part]) for t in sampled if trained(t) and part in t.user_attrs]
        for part in PARTS
    }
    return StudyTimings(
        states=dict(Counter(t.state.name for t in trials).most_common()),
        complete=len(complete),
        trained=[float(t.user_attrs[TRIAL_SECONDS_ATTR]) for t in complete if trained(t)],
        warmup=len(warmup),
        sampled=len(sampled),
        span_s=span,
        gaps_s=gaps,
        parts={k: v for k, v in parts.items() if v},
    )
