"""The ``estimator:`` section of a study file: how candidates are scored (``EstimatorConfig``)
and the warm-up a study calibrates on (``CalibrationConfig``). ``config`` validates a study file
into them; the estimators read them from here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mote_optuna.estimators.boxcox import BoxCoxConstants
from mote_optuna.estimators.names import ESTIMATOR_KINDS

BudgetName = Literal["paper", "lite", "tiny"]  # MOTE's named budgets (estimators/mote.py)

REFERENCE_POPULATION = 32  # the ensemble's default warm-up (reference) population


@dataclass
class CalibrationConfig:
    """Fit the Box-Cox constants on a seeded warm-up population before the first trial
    (``calibration.py``); used for spaces without published constants, or when given."""

    population: int = 20
    seed: int = 0


@dataclass
class EstimatorConfig:
    """How candidates are scored. ``budget`` picks a named preset; explicit fields override it."""

    kind: str = field(default="mote", metadata={"choices": ESTIMATOR_KINDS})
    budget: BudgetName | None = "lite"
    epochs: int | None = None
    batch_size: int | None = None
    images_per_label: int | None = None
    landscape_points: int | None = None
    landscape_mode: Literal["train", "forward", "eval"] | None = None  # mote.py has each
    formula: Literal["code", "paper"] = "code"
    speed_clock: Literal["wall", "flops"] | None = None
    width: int | None = None
    resolution: int | None = None
    lr: float | None = None
    seed: int = 0
    boxcox: BoxCoxConstants | None = None  # default: the space's published ones
    calibration: CalibrationConfig | None = None  # None: published constants, else default
    table: str | None = None
    table_missing: Literal["error", "skip"] = "error"
    # table columns by role: key (default arch_str, else arch), mote (default mote), and optional
    # flops / params (else measured, or NB201's exact op-count formula)
    table_columns: dict[str, str] = field(default_factory=dict)
