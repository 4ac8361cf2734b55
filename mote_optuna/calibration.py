"""Box-Cox calibration: MOTE's combination constants for spaces that have no published ones.

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
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import optuna
from optuna.study import StudyDirection
from scipy import stats

from mote_optuna.config import BoxCoxConfig, CalibrationConfig, StudyConfig
from mote_optuna.errors import UserError
from mote_optuna.estimators.mote import BOXCOX_CONSTANTS, Diverged
from mote_optuna.spaces import SearchSpace

CALIBRATION_ATTR = "mote_optuna_calibration"
LOCK_SUFFIX = ".calibration-lock"
STALE_AFTER_S = 900.0  # a lock whose heartbeat has not changed for this long is abandoned
POLL_S = 2.0
MAX_DRAWS_PER_CANDIDATE = 200

Printer = Callable[[str], None]


def calibration_for(config: StudyConfig, space: SearchSpace) -> CalibrationConfig | None:
    """The calibration a study needs: given, or the default one for a space without constants."""
    est = config.estimator
    if est.kind != "mote" or est.boxcox is not None:
        return None
    if est.calibration is not None:
        return est.calibration
    return None if space.name in BOXCOX_CONSTANTS else CalibrationConfig()


def fit_boxcox(landscape: Sequence[float], speed: Sequence[float]) -> BoxCoxConfig:
    """λ by Box-Cox MLE and σ = std of the transformed term, for both (CellsBoxCoxParams)."""
    fitted: list[float] = []
    for name, values in (("landscape", landscape), ("speed", speed)):
        x = np.asarray(values, dtype=float)
        if len(x) < 3 or not np.all(np.isfinite(x)) or np.any(x <= 0):
            raise UserError(
                f"calibration: needs at least 3 finite positive {name} terms, got {x.tolist()}"
            )
        if np.ptp(x) == 0:
            raise UserError(f"calibration: every {name} term is {x[0]}; cannot fit Box-Cox")
        transformed, lam = stats.boxcox(x)
        fitted += [float(lam), float(np.std(transformed))]
    return BoxCoxConfig(*fitted)


def dominance_warning(c: BoxCoxConfig, ratio: float = 10.0) -> str:
    """Non-empty when one term swamps the other in MOTE, or a λ is extreme.

    A term's spread in MOTE is its weight λ²σ times the std σ of its transform: λ²σ². The code's
    weighting makes the fit fragile: terms that vary by a few per cent (small populations, tiny
    budgets) give extreme λ, and then one term decides the ranking alone.
    """
    spread_l = c.lambda_landscape**2 * c.sigma_landscape**2
    spread_s = c.lambda_speed**2 * c.sigma_speed**2
    notes = []
    big, small = max(spread_l, spread_s), min(spread_l, spread_s)
    if small == 0 or big / small > ratio:
        term = "landscape" if spread_l >= spread_s else "speed"
        notes.append(
            f"the {term} term decides MOTE nearly alone (spread ratio "
            f"{big / small if small else math.inf:.3g})"
        )
    extreme = [
        n for n, lam in (("λ_L", c.lambda_landscape), ("λ_S", c.lambda_speed)) if abs(lam) > 5
    ]
    if extreme:
        notes.append(
            f"{' and '.join(extreme)} beyond ±5: the terms vary too little for a stable Box-Cox "
            "fit; use a larger population or budget, or give estimator.boxcox"
        )
    return "; ".join(notes)


def stored_constants(study: optuna.Study) -> BoxCoxConfig | None:
    record = study.user_attrs.get(CALIBRATION_ATTR)
    return BoxCoxConfig(**record["constants"]) if record else None


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
) -> BoxCoxConfig | None:
    """Load the study's calibrated constants into ``estimator``, calibrating first if no worker
    has; a no-op (None) for an estimator without ``calibration``. ``cost(arch, key)`` gives the
    full network's FLOPs and params (``Objective.cost``)."""
    calibration = getattr(estimator, "calibration", None)
    if calibration is None:
        return None
    if stale_after_s is None:
        stale_after_s = 0.0 if config.storage_url.startswith("sqlite") else STALE_AFTER_S
    lock_name = study.study_name + LOCK_SUFFIX
    seen: tuple[int, Any, float] | None = None  # (lock id, heartbeat, when first seen here)
    announced = False
    while True:
        constants = stored_constants(study)
        if constants is not None:
            estimator.set_constants(constants)
            out(f"calibration: using the study's Box-Cox constants {_fmt(constants)}")
            return constants
        lock_id = _try_lock(storage, lock_name)
        if lock_id is not None:
            try:
                if stored_constants(study) is None:  # stored between our check and the lock
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
            out(f"calibration: waiting for {holder[2]}, which is fitting the Box-Cox constants")
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


def _over_budget(config: StudyConfig, flops: float, params: float) -> bool:
    c = config.constraints
    return (c.max_flops is not None and flops > c.max_flops) or (
        c.max_params is not None and params > c.max_params
    )


def _warmup_population(
    config: StudyConfig,
    space: SearchSpace,
    calibration: CalibrationConfig,
    cost: Callable[[Any, str], Any],
) -> list[tuple[Any, str, Any]]:
    """``population`` distinct (arch, key, cost) within the constraints, seeded."""
    rng = np.random.default_rng(calibration.seed)
    picked: list[tuple[Any, str, Any]] = []
    seen: set[str] = set()
    for _ in range(MAX_DRAWS_PER_CANDIDATE * calibration.population):
        arch = space.sample(rng)
        key = space.key(arch)
        if key in seen:
            continue
        seen.add(key)
        measured = cost(arch, key)
        if _over_budget(config, measured.flops, measured.params):
            continue
        picked.append((arch, key, measured))
        if len(picked) == calibration.population:
            return picked
    raise UserError(
        f"calibration: found only {len(picked)} of {calibration.population} distinct candidates "
        "within the constraints; relax constraints.max_flops / max_params or lower "
        "estimator.calibration.population"
    )


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
        "to fit the Box-Cox constants"
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
        out(
            f"  warm-up {i}/{len(population)} {space.to_str(arch)}  landscape "
            f"{result.landscape:.4g}  speed {result.speed:.4g}  {result.seconds:.1f} s"
        )
    constants = fit_boxcox([r.landscape for *_, r in scored], [r.speed for *_, r in scored])
    if not _holds(storage, study.study_name + LOCK_SUFFIX, lock_id):
        out("calibration: lost the lock to another worker; using its constants")
        return
    record = {
        "constants": asdict(constants),
        "population": calibration.population,
        "seed": calibration.seed,
        "scored": len(scored),
        "diverged": diverged,
        "seconds": round(time.perf_counter() - start, 2),
        "worker": _owner(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    warning = dominance_warning(constants)
    if warning:
        record["warning"] = warning
    study.set_user_attr(CALIBRATION_ATTR, record)
    estimator.set_constants(constants)
    out(f"calibration: fitted {_fmt(constants)} in {record['seconds']:.0f} s, stored in the study")
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
    """The warm-up candidates as COMPLETE trials, valued with the fitted constants."""
    distributions = space.distributions()
    c = config.constraints
    budgets = {"max_flops": c.max_flops, "max_params": c.max_params}
    for arch, key, measured, result in scored:
        mote = estimator.estimator.combine(result.landscape, result.speed)
        if not math.isfinite(mote):
            continue
        metrics = {"mote": mote, "flops": measured.flops, "params": measured.params}
        attrs = {
            **result.user_attrs(),
            "mote": mote,
            "arch": space.to_str(arch),
            "arch_key": key,
            "flops": measured.flops,
            "params": measured.params,
            "trial_seconds": round(result.seconds, 4),
            "calibration_warmup": True,
        }
        usage = {"max_flops": measured.flops, "max_params": measured.params}
        constraints = {n: usage[n] - b for n, b in budgets.items() if b is not None}
        study.add_trial(
            optuna.trial.create_trial(
                values=[metrics[name] for name in config.objectives],
                params=space.to_params(arch),
                distributions=distributions,
                user_attrs=attrs,
                constraints=constraints or None,
            )
        )


def _fmt(c: BoxCoxConfig) -> str:
    return (
        f"λ_L {c.lambda_landscape:.4g}, σ_L {c.sigma_landscape:.4g}, "
        f"λ_S {c.lambda_speed:.4g}, σ_S {c.sigma_speed:.4g}"
    )
