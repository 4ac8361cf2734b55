"""Calibration: what an estimator fits once per study on a seeded warm-up population.

This module is the pure part: which studies calibrate (:func:`calibration_for`), what a
calibrating estimator offers (:class:`Calibrated`) and which candidates the warm-up scores
(:func:`warmup_population`). Running it once per study, under a lock in the storage, and adding
the warm-up candidates as trials is :mod:`mote_optuna.warmup`; the lock is
:mod:`mote_optuna.study_lock`; the Box-Cox fit itself is :mod:`mote_optuna.estimators.boxcox`.

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

Several workers (:mod:`mote_optuna.warmup`): the worker that creates the lock study
``<name>.calibration-lock`` in the same storage calibrates (creating a study is atomic in every
Optuna storage: a duplicate name raises); the others wait, polling the study attr, and load the
constants when they appear. The lock holder writes a heartbeat after every candidate; a lock whose
heartbeat has not changed for ``warmup.STALE_AFTER_S`` (0 for SQLite, which serves one process, so
a lock found there was left by a stopped run) is broken by id and the calibration is redone from
scratch. The lock study is deleted when the calibration ends. Before storing, the holder checks
that it still holds the lock, so only one set of constants is ever stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from mote_optuna.config import ConstraintsConfig
from mote_optuna.errors import UserError
from mote_optuna.estimators.settings import CalibrationConfig, EstimatorConfig
from mote_optuna.spaces import SearchSpace, published_boxcox
from mote_optuna.spaces.sampling import distinct_samples

if TYPE_CHECKING:
    from mote_optuna.estimators.contract import Evaluation

__all__ = [
    "Calibrated",
    "calibration_for",
    "warmup_population",
]


def calibration_for(estimator: EstimatorConfig, space: SearchSpace) -> CalibrationConfig | None:
    """The calibration a study needs: given, or the default one for a space without constants."""
    if estimator.kind != "mote" or estimator.boxcox is not None:
        return None
    if estimator.calibration is not None:
        return estimator.calibration
    return None if published_boxcox(space) else CalibrationConfig()


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


def warmup_population(
    constraints: ConstraintsConfig,
    space: SearchSpace,
    calibration: CalibrationConfig,
    cost: Callable[[Any], Any],
) -> list[tuple[Any, str, Any]]:
    """``population`` distinct (arch, key, cost) within the constraints, seeded (``cost(arch)``
    gives the full network's FLOPs and params: ``Objective.cost``)."""
    picked: list[tuple[Any, str, Any]] = []
    for arch, key in distinct_samples(space, calibration.seed):
        measured = cost(arch)
        if constraints.exceeded(measured.usage()):
            continue
        picked.append((arch, key, measured))
        if len(picked) == calibration.population:
            return picked
    raise UserError(
        f"calibration: found only {len(picked)} of {calibration.population} distinct candidates "
        "within the constraints; relax constraints.max_flops / max_params or lower "
        "estimator.calibration.population"
    )
