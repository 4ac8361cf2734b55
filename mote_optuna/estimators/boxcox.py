"""Fitting MOTE's Box-Cox constants on a population of raw terms (MOTE_SPEC §2.3), and the
check that one term does not swamp the other. Pure functions; ``calibration.py`` runs the warm-up
that produces the population."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from mote_optuna.config import BoxCoxConfig
from mote_optuna.errors import UserError


def fit_boxcox(
    landscape: Sequence[float] | np.ndarray, speed: Sequence[float] | np.ndarray
) -> BoxCoxConfig:
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
