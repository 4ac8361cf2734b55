"""Calibrating a study once, whatever the number of workers: the lock, the warm-up, the trials.

What is fitted and on which candidates is :mod:`mote_optuna.calibration` (its docstring tells the
whole procedure). This module runs it: the worker that takes the lock study
``<name>.calibration-lock`` (:mod:`mote_optuna.study_lock`) scores the warm-up population, fits,
stores the record in the study user attr ``mote_optuna_calibration`` and adds the warm-up
candidates as COMPLETE trials; the other workers wait, polling the study attr, and load the
fitted values when they appear. A lock whose heartbeat has not changed for ``STALE_AFTER_S``
(0 for SQLite, which serves one process, so a lock found there was left by a stopped run) is
broken by id and the calibration is redone from scratch. Before storing, the holder checks that
it still holds the lock, so only one record is ever stored.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import optuna

from mote_optuna import study_lock
from mote_optuna.calibration import warmup_population
from mote_optuna.config import StudyConfig
from mote_optuna.estimators.mote import Diverged
from mote_optuna.estimators.settings import CalibrationConfig
from mote_optuna.keys import (
    ARCH_ATTR,
    ARCH_KEY_ATTR,
    CALIBRATION_ATTR,
    CALIBRATION_WARMUP_ATTR,
    TRIAL_SECONDS_ATTR,
)
from mote_optuna.shared_study import worker_name
from mote_optuna.spaces import SearchSpace
from mote_optuna.storage.url import is_sqlite

__all__ = ["LOCK_SUFFIX", "POLL_S", "STALE_AFTER_S", "ensure_calibrated", "stored_fitted"]

LOCK_SUFFIX = ".calibration-lock"
STALE_AFTER_S = 900.0  # a lock whose heartbeat has not changed for this long is abandoned
POLL_S = 2.0

Printer = Callable[[str], None]


def stored_fitted(study: optuna.Study) -> dict[str, Any] | None:
    """What the study's calibration fitted (the record's ``constants``), or None."""
    record = study.user_attrs.get(CALIBRATION_ATTR)
    return dict(record["constants"]) if record else None


def ensure_calibrated(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    config: StudyConfig,
    space: SearchSpace,
    estimator: Any,
    cost: Callable[[Any], Any],
    *,
    out: Printer = print,
    stale_after_s: float | None = None,
) -> dict[str, Any] | None:
    """Load the study's fitted values into ``estimator`` (a ``Calibrated``), calibrating first
    if no worker has; a no-op (None) for an estimator without ``calibration``. ``cost(arch)``
    gives the full network's FLOPs and params (``Objective.cost``)."""
    calibration = getattr(estimator, "calibration", None)
    if calibration is None:
        return None
    if stale_after_s is None:
        stale_after_s = 0.0 if is_sqlite(config.storage_url) else STALE_AFTER_S
    lock_name = study.study_name + LOCK_SUFFIX
    seen: tuple[int, Any, float] | None = None  # (lock id, heartbeat, when first seen here)
    announced = False
    while True:
        fitted = stored_fitted(study)
        if fitted is not None:
            estimator.load(fitted)
            out(f"calibration: using the study's {estimator.fits} {estimator.describe_fitted()}")
            return fitted
        lock_id = study_lock.try_lock(storage, lock_name)
        if lock_id is not None:
            try:
                if stored_fitted(study) is None:  # stored between our check and the lock
                    _calibrate(study, storage, config, space, estimator, cost, lock_id, out)
            finally:
                study_lock.unlock(storage, lock_id)
            continue
        holder = study_lock.lock_state(storage, lock_name)
        if holder is None:  # released meanwhile
            continue
        now = time.monotonic()
        if seen is None or seen[:2] != holder[:2]:
            seen = (*holder[:2], now)
        elif now - seen[2] >= stale_after_s:
            out(f"calibration: lock held by {holder[2]} is stale; taking over")
            study_lock.unlock(storage, seen[0])
            seen = None
            continue
        if not announced:
            out(f"calibration: waiting for {holder[2]}, which is fitting the {estimator.fits}")
            announced = True
        time.sleep(min(POLL_S, max(stale_after_s, 0.01)))


def _calibrate(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    config: StudyConfig,
    space: SearchSpace,
    estimator: Any,
    cost: Callable[[Any], Any],
    lock_id: int,
    out: Printer,
) -> None:
    calibration: CalibrationConfig = estimator.calibration
    start = time.perf_counter()
    population = warmup_population(config.constraints, space, calibration, cost)
    out(
        f"calibration: scoring {len(population)} warm-up candidates (seed {calibration.seed}) "
        f"to fit the {estimator.fits}"
    )
    scored: list[tuple[Any, str, Any, Any]] = []
    diverged: list[str] = []
    for i, (arch, key, measured) in enumerate(population, start=1):
        study_lock.beat(storage, lock_id, f"{i}/{len(population)} at {time.time():.0f}")
        try:
            result = estimator.raw_terms(space, arch)
        except Diverged as exc:
            diverged.append(space.to_str(arch))
            out(f"  warm-up {i}/{len(population)} {space.to_str(arch)}: diverged ({exc})")
            continue
        scored.append((arch, key, measured, result))
        line = estimator.describe_raw(result)
        out(f"  warm-up {i}/{len(population)} {space.to_str(arch)}  {line}")
    fitted, warning = estimator.fit([r for *_, r in scored])
    if not study_lock.holds(storage, study.study_name + LOCK_SUFFIX, lock_id):
        out("calibration: lost the lock to another worker; using its values")
        return
    record = {
        "constants": fitted,
        "population": calibration.population,
        "seed": calibration.seed,
        "scored": len(scored),
        "diverged": diverged,
        "seconds": round(time.perf_counter() - start, 2),
        "worker": worker_name(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if warning:
        record["warning"] = warning
    study.set_user_attr(CALIBRATION_ATTR, record)
    estimator.load(fitted)
    out(
        f"calibration: fitted the {estimator.fits} {estimator.describe_fitted()} in "
        f"{record['seconds']:.0f} s, stored in the study"
    )
    if warning:
        out(f"calibration: warning: {warning}")
    _add_warmup_trials(study, config, space, estimator, scored)


def _add_warmup_trials(
    study: optuna.Study,
    config: StudyConfig,
    space: SearchSpace,
    estimator: Any,
    scored: list[tuple[Any, str, Any, Any]],
) -> None:
    """The warm-up candidates as COMPLETE trials, valued with the fitted values."""
    distributions = space.distributions()
    for arch, key, measured, result in scored:
        evaluation = estimator.finish(result)
        metrics = {**evaluation.values, **measured.metrics()}
        values = [metrics[name] for name in config.objectives]
        if not all(math.isfinite(v) for v in values):
            continue
        attrs = {
            **evaluation.attrs,
            **evaluation.values,
            ARCH_ATTR: space.to_str(arch),
            ARCH_KEY_ATTR: key,
            **measured.metrics(),
            TRIAL_SECONDS_ATTR: round(result.seconds, 4),
            CALIBRATION_WARMUP_ATTR: True,
        }
        constraints = config.constraints.margins(measured.usage())
        study.add_trial(
            optuna.trial.create_trial(
                values=values,
                params=space.to_params(arch),
                distributions=distributions,
                user_attrs=attrs,
                constraints=constraints or None,
            )
        )
