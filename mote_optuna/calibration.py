"""Calibration: what an estimator fits once per study on a seeded warm-up population.

Two estimators calibrate (both implement ``Calibrated``): MOTE fits its Box-Cox constants for
spaces that have no published ones, and the ``ensemble`` fits the reference scale of each of its
components (estimators/ensemble.py). The rest of this docstring tells the MOTE case; the ensemble
goes through the same steps with its reference in place of the constants.

Box-Cox calibration: MOTE's combination constants for spaces that have no published ones.

MOTE (code formula, MOTE_SPEC §2.3) is λ_L²σ_L·BC(L; λ_L) + λ_S²σ_S·BC(S; λ_S). The authors fitted
λ (scipy's Box-Cox MLE) and σ (the std of the transformed term) per benchmark on a reference
population (``CellsBoxCoxParams``) and shipped them for NB201, NB101 and NB301 only. For the other
spaces (``mobilenetv3``, ``mobilenetv3-ofa``), or when ``estimator.calibration`` is given (e.g. to
recalibrate NB101 on our budget), a study fits them itself, once, before its first trial:

1. a seeded warm-up population of ``calibration.population`` distinct architectures is drawn
   (``space.sample`` with ``calibration.seed``; candidates over a constraint are skipped, as the
   objective would reject them) and scored with the study's own MOTE budget, keeping the raw terms;
2. λ and σ of both terms are fitted on the scored candidates (diverged ones are left out);
3. the constants are stored in the study user attr ``mote_optuna_calibration`` with what produced
   them; every later trial, every resume and every worker loads them from there;
4. the warm-up candidates are added to the study as COMPLETE trials (their MOTE with the fitted
   constants, their FLOPs and params; user attr ``calibration_warmup``), so their training is not
   wasted: they count toward ``n_trials`` and are on the Pareto front like any trial. Samplers see
   them as given trials (NSGA-II leaves added trials out of its generations; TPE, GP use them).

Constants given in the study file (``estimator.boxcox``) always win and skip the calibration. The
resume check (study metadata) names the calibration settings, never the fitted values, so a resume
with the same file is not "different".

Several workers: the worker that creates the lock study ``<name>.calibration-lock`` in the same
storage calibrates (creating a study is atomic in every Optuna storage: a duplicate name raises);
the others wait, polling the study attr, and load the constants when they appear. The lock holder
writes a heartbeat after every candidate; a lock whose heartbeat has not changed for
``STALE_AFTER_S`` (0 for SQLite, which serves one process, so a lock found there was left by a
stopped run) is broken by id and the calibration is redone from scratch. The lock study is deleted
when the calibration ends. Before storing, the holder checks that it still holds the lock, so only
one set of constants is ever stored.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import optuna
from optuna.study import StudyDirection

from mote_optuna.config import CalibrationConfig, StudyConfig
from mote_optuna.errors import UserError
from mote_optuna.estimators.mote import BOXCOX_CONSTANTS, Diverged
from mote_optuna.spaces import SearchSpace

if TYPE_CHECKING:
    from mote_optuna.estimators.base import Evaluation

CALIBRATION_ATTR = "mote_optuna_calibration"
LOCK_SUFFIX = ".calibration-lock"
STALE_AFTER_S = 900.0  # a lock whose heartbeat has not changed for this long is abandoned
POLL_S = 2.0
MAX_DRAWS = 20_000  # draws before giving up on a warm-up population

Printer = Callable[[str], None]


def calibration_for(config: StudyConfig, space: SearchSpace) -> CalibrationConfig | None:
    """The calibration a study needs: given, or the default one for a space without constants."""
    est = config.estimator
    if est.kind != "mote" or est.boxcox is not None:
        return None
    if est.calibration is not None:
        return est.calibration
    return None if space.name in BOXCOX_CONSTANTS else CalibrationConfig()


class Calibrated(Protocol):
    """An estimator that fits something once per study on the warm-up population."""

    calibration: CalibrationConfig | None
    fits: str  # what it fits, for messages: "Box-Cox constants", "ensemble reference"

    def raw_terms(self, space: SearchSpace, arch: Any) -> Any:
        """The unfitted result of ``arch`` (has ``seconds``); raises Diverged."""

    def describe_raw(self, raw: Any) -> str:
        """One progress line's worth of ``raw``."""

    def fit(self, raws: list[Any]) -> tuple[dict[str, Any], str]:
        """The fitted values (JSON) from the scored population, and a warning or ''."""

    def load(self, fitted: dict[str, Any]) -> None:
        """Use ``fitted`` (just fitted, or stored in the study) from now on."""

    def describe_fitted(self) -> str:
        """The loaded fitted values, for one line."""

    def finish(self, raw: Any) -> Evaluation:
        """The evaluation of ``raw`` with the loaded fitted values."""


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
    cost: Callable[[Any, str], Any],
    *,
    out: Printer = print,
    stale_after_s: float | None = None,
) -> dict[str, Any] | None:
    """Load the study's fitted values into ``estimator`` (a ``Calibrated``), calibrating first
    if no worker has; a no-op (None) for an estimator without ``calibration``. ``cost(arch,
    key)`` gives the full network's FLOPs and params (``Objective.cost``)."""
    calibration = getattr(estimator, "calibration", None)
    if calibration is None:
        return None
    if stale_after_s is None:
        stale_after_s = 0.0 if config.storage_url.startswith("sqlite") else STALE_AFTER_S
    lock_name = study.study_name + LOCK_SUFFIX
    seen: tuple[int, Any, float] | None = None  # (lock id, heartbeat, when first seen here)
    announced = False
    while True:
        fitted = stored_fitted(study)
        if fitted is not None:
            estimator.load(fitted)
            out(f"calibration: using the study's {estimator.fits} {estimator.describe_fitted()}")
            return fitted
        lock_id = _try_lock(storage, lock_name)
        if lock_id is not None:
            try:
                if stored_fitted(study) is None:  # stored between our check and the lock
                    _calibrate(study, storage, config, space, estimator, cost, lock_id, out)
            finally:
                _unlock(storage, lock_id)
            continue
        holder = _lock_state(storage, lock_name)
        if holder is None:  # released meanwhile
            continue
        now = time.monotonic()
        if seen is None or seen[:2] != holder[:2]:
            seen = (*holder[:2], now)
        elif now - seen[2] >= stale_after_s:
            out(f"calibration: lock held by {holder[2]} is stale; taking over")
            _unlock(storage, seen[0])
            seen = None
            continue
        if not announced:
            out(f"calibration: waiting for {holder[2]}, which is fitting the {estimator.fits}")
            announced = True
        time.sleep(min(POLL_S, max(stale_after_s, 0.01)))


# --------------------------------------------------------------------------------------------
# the lock: a study in the same storage (creating one is atomic: a duplicate name raises)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _try_lock(storage: optuna.storages.BaseStorage, name: str) -> int | None:
    try:
        lock_id = storage.create_new_study([StudyDirection.MINIMIZE], study_name=name)
    except optuna.exceptions.DuplicatedStudyError:
        return None
    storage.set_study_user_attr(lock_id, "owner", _owner())
    storage.set_study_user_attr(lock_id, "heartbeat", 0)
    return lock_id


def _lock_state(storage: optuna.storages.BaseStorage, name: str) -> tuple[int, Any, str] | None:
    try:
        lock_id = storage.get_study_id_from_name(name)
        attrs = storage.get_study_user_attrs(lock_id)
    except KeyError:
        return None
    return lock_id, attrs.get("heartbeat"), str(attrs.get("owner", "another worker"))


def _holds(storage: optuna.storages.BaseStorage, name: str, lock_id: int) -> bool:
    try:
        return storage.get_study_id_from_name(name) == lock_id
    except KeyError:
        return False


def _beat(storage: optuna.storages.BaseStorage, lock_id: int, progress: str) -> None:
    with contextlib.suppress(KeyError):  # broken by another worker: _holds refuses the store
        storage.set_study_user_attr(lock_id, "heartbeat", progress)


def _unlock(storage: optuna.storages.BaseStorage, lock_id: int) -> None:
    with contextlib.suppress(KeyError):
        storage.delete_study(lock_id)


# --------------------------------------------------------------------------------------------
# the calibration itself


def _over_budget(config: StudyConfig, cost: Any) -> bool:
    usage = cost.usage()
    return any(usage[name] > budget for name, budget in config.constraints.budgets().items())


def _warmup_population(
    config: StudyConfig,
    space: SearchSpace,
    calibration: CalibrationConfig,
    cost: Callable[[Any, str], Any],
) -> list[tuple[Any, str, Any]]:
    """``population`` distinct (arch, key, cost) within the constraints, seeded."""
    picked: list[tuple[Any, str, Any]] = []
    for arch, key in distinct_samples(space, calibration.seed):
        measured = cost(arch, key)
        if _over_budget(config, measured):
            continue
        picked.append((arch, key, measured))
        if len(picked) == calibration.population:
            return picked
    raise UserError(
        f"calibration: found only {len(picked)} of {calibration.population} distinct candidates "
        "within the constraints; relax constraints.max_flops / max_params or lower "
        "estimator.calibration.population"
    )


def distinct_samples(
    space: SearchSpace, seed: int, draws: int = MAX_DRAWS
) -> Iterator[tuple[Any, str]]:
    """Seeded draws of ``space.sample`` with a new ``key`` each (the warm-up's candidates, in
    order; ``bench correlation`` draws the same reference population)."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    for _ in range(draws):
        arch = space.sample(rng)
        key = space.key(arch)
        if key not in seen:
            seen.add(key)
            yield arch, key


def _calibrate(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    config: StudyConfig,
    space: SearchSpace,
    estimator: Any,
    cost: Callable[[Any, str], Any],
    lock_id: int,
    out: Printer,
) -> None:
    calibration: CalibrationConfig = estimator.calibration
    start = time.perf_counter()
    population = _warmup_population(config, space, calibration, cost)
    out(
        f"calibration: scoring {len(population)} warm-up candidates (seed {calibration.seed}) "
        f"to fit the {estimator.fits}"
    )
    scored: list[tuple[Any, str, Any, Any]] = []
    diverged: list[str] = []
    for i, (arch, key, measured) in enumerate(population, start=1):
        _beat(storage, lock_id, f"{i}/{len(population)} at {time.time():.0f}")
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
    if not _holds(storage, study.study_name + LOCK_SUFFIX, lock_id):
        out("calibration: lost the lock to another worker; using its values")
        return
    record = {
        "constants": fitted,
        "population": calibration.population,
        "seed": calibration.seed,
        "scored": len(scored),
        "diverged": diverged,
        "seconds": round(time.perf_counter() - start, 2),
        "worker": _owner(),
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
    budgets = config.constraints.budgets()
    for arch, key, measured, result in scored:
        evaluation = estimator.finish(result)
        metrics = {**evaluation.values, **measured.metrics()}
        values = [metrics[name] for name in config.objectives]
        if not all(math.isfinite(v) for v in values):
            continue
        attrs = {
            **evaluation.attrs,
            **evaluation.values,
            "arch": space.to_str(arch),
            "arch_key": key,
            **measured.metrics(),
            "trial_seconds": round(result.seconds, 4),
            "calibration_warmup": True,
        }
        usage = measured.usage()
        constraints = {n: usage[n] - b for n, b in budgets.items()}
        study.add_trial(
            optuna.trial.create_trial(
                values=values,
                params=space.to_params(arch),
                distributions=distributions,
                user_attrs=attrs,
                constraints=constraints or None,
            )
        )
