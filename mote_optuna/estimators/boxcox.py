"""MOTE's Box-Cox constants (MOTE_SPEC §2.3): their value type, their fit on a population of raw
terms, and the check that one term does not swamp the other. Pure: ``calibration.py`` runs the
warm-up that produces the population; a space publishes its constants as a ``BoxCoxConstants``
(``spaces.base.HasPublishedBoxCox``); a study file may give them (``estimator.boxcox``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from mote_optuna.errors import UserError


@dataclass(frozen=True)
class BoxCoxConstants:
    """λ and σ of both MOTE terms: MOTE = λ_L²σ_L·BC(L; λ_L) + λ_S²σ_S·BC(S; λ_S)."""

    lambda_landscape: float
    sigma_landscape: float
    lambda_speed: float
    sigma_speed: float


def fit_boxcox(
    landscape: Sequence[float] | np.ndarray, speed: Sequence[float] | np.ndarray
) -> BoxCoxConstants:
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
    return BoxCoxConstants(*fitted)


def dominance_warning(c: BoxCoxConstants, ratio: float = 10.0) -> str:
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
