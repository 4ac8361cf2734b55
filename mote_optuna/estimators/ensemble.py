"""The ``ensemble`` objective: MOTE's trained landscape term with zero-cost terms, label-free.

Each component is standardised against a reference population: the study's seeded warm-up
(``calibration.py``), scored once, stored in the study and loaded by every resume and every
worker, so a trial's value never changes after it is told. A component's z-score is
``(t(x) - center) / scale``, with ``t`` the identity or the logarithm, ``center`` the median and
``scale`` the interquartile range / 1.349 of ``t`` over the reference (robust to the dead cells of
a random population). The ensemble is Σ log Φ(z) (``logcdf``): like AZ-NAS's Σ log(rank / m) it
punishes a candidate that is weak on any component, but it needs no population at scoring time,
and it stays strictly increasing above the reference's best, so the top of a search is not tied.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import log_ndtr

from mote_optuna.config import REFERENCE_POPULATION, CalibrationConfig, StudyConfig
from mote_optuna.errors import UserError
from mote_optuna.estimators.az_nas import AZ_NAS_BATCH
from mote_optuna.estimators.boxcox import BoxCoxConstants
from mote_optuna.estimators.contract import Evaluation
from mote_optuna.estimators.mote import (
    MoteEstimator,
    MoteResult,
    combine_code,
)
from mote_optuna.estimators.scorer import build_scoring
from mote_optuna.estimators.zero_cost import ZeroCostTerms
from mote_optuna.spaces import SearchSpace, published_boxcox

Z_CLIP = 8.0  # |z| beyond this is clipped (a dead cell's -inf NASWOT, a log of 0)
MIN_SCALE = 1e-12


@dataclass(frozen=True)
class Component:
    """One input of the ensemble: the raw term ``name``, log-transformed or not."""

    name: str
    log: bool = False

    def transform(self, value: float) -> float:
        if self.log:
            return math.log(value) if value > 0 else -math.inf
        return value


def fit_reference(
    raws: Sequence[Mapping[str, float]], components: Sequence[Component]
) -> dict[str, dict[str, float]]:
    """Median and robust scale of each transformed component over the reference population."""
    fitted: dict[str, dict[str, float]] = {}
    for c in components:
        values = np.array([c.transform(float(r[c.name])) for r in raws], dtype=float)
        finite = values[np.isfinite(values)]
        if len(finite) < 3:
            raise ValueError(f"ensemble: fewer than 3 finite {c.name} values in the reference")
        q1, median, q3 = np.percentile(finite, [25, 50, 75])
        scale = (q3 - q1) / 1.349 or float(np.std(finite))
        fitted[c.name] = {"center": float(median), "scale": float(max(scale, MIN_SCALE))}
    return fitted


def z_scores(
    raw: Mapping[str, float],
    reference: Mapping[str, Mapping[str, float]],
    components: Sequence[Component],
) -> dict[str, float]:
    out = {}
    for c in components:
        t = c.transform(float(raw[c.name]))
        ref = reference[c.name]
        z = (t - ref["center"]) / ref["scale"] if not math.isnan(t) else -Z_CLIP
        out[c.name] = float(np.clip(z, -Z_CLIP, Z_CLIP))
    return out


def ensemble_value(
    raw: Mapping[str, float],
    reference: Mapping[str, Mapping[str, float]],
    components: Sequence[Component],
    rule: str = "logcdf",
) -> float:
    z = np.array(list(z_scores(raw, reference, components).values()))
    if rule == "linear":
        return float(z.sum())
    return float(log_ndtr(z).sum())


# The rule, fixed on the seed-0 sample of ``bench correlation`` (scripts/ensemble_tuning.py: of
# the subsets of 8 candidate terms, the one whose τ changed least with the reference population
# among those within 0.01 of the best) and held out on seeds 1-4 (docs/BENCHMARKS.md, "ensemble").
COMPONENTS: tuple[Component, ...] = (
    Component("landscape", log=True),
    Component("live_flops", log=True),
    Component("azr_trainability"),  # AZ-NAS's trainability, real-image variant (az_nas.py)
    Component("meco", log=True),
    Component("naswot"),
)
RULE = "logcdf"


@dataclass
class EnsembleRaw:
    """Every term of one architecture before the reference scale is applied."""

    terms: dict[str, float]
    mote: MoteResult
    seconds: float


class EnsembleEstimator:
    """MOTE's training plus the zero-cost terms, combined on the study's reference scale."""

    fits = "ensemble reference"

    def __init__(
        self,
        mote: MoteEstimator,
        zero_cost: ZeroCostTerms,
        calibration: CalibrationConfig,
        dataset: dict[str, Any],
        mote_constants: BoxCoxConstants | None,
    ) -> None:
        self.mote = mote
        self.zero_cost = zero_cost
        self.calibration = calibration
        self.dataset = dataset
        self.mote_constants = mote_constants  # published ones: MOTE is stored beside
        self.reference: dict[str, dict[str, float]] | None = None

    @classmethod
    def from_config(cls, config: StudyConfig, space: SearchSpace) -> EnsembleEstimator:
        constants = config.estimator.boxcox or published_boxcox(space)
        scoring = build_scoring(config.estimator, config.dataset, space, config.device, constants)
        calibration = config.estimator.calibration or CalibrationConfig(
            population=REFERENCE_POPULATION
        )
        return cls(scoring.mote, scoring.zero_cost(), calibration, scoring.dataset, constants)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "ensemble",
            **self.mote.settings.as_dict(),
            "components": [asdict(c) for c in COMPONENTS],
            "rule": RULE,
            "zero_cost_batch": AZ_NAS_BATCH,
            "calibration": asdict(self.calibration),
            "dataset": self.dataset,
        }

    def raw_terms(self, space: SearchSpace, arch: Any) -> EnsembleRaw:
        start = time.perf_counter()
        result = self.mote.score(self.mote.proxy(space, arch), combine=False)
        terms = {"landscape": result.landscape, "speed": result.speed}
        terms.update(self.zero_cost(arch))
        return EnsembleRaw(terms, result, time.perf_counter() - start)

    def evaluate(self, space: SearchSpace, arch: Any) -> Evaluation:
        return self.finish(self.raw_terms(space, arch))

    # calibration.Calibrated: the reference scale of each component

    def describe_raw(self, raw: EnsembleRaw) -> str:
        terms = "  ".join(f"{c.name} {raw.terms[c.name]:.4g}" for c in COMPONENTS)
        return f"{terms}  {raw.seconds:.1f} s"

    def fit(self, raws: list[EnsembleRaw]) -> tuple[dict[str, Any], str]:
        try:
            return fit_reference([r.terms for r in raws], COMPONENTS), ""
        except ValueError as exc:
            raise UserError(
                f"calibration: {exc}; raise estimator.calibration.population"
            ) from None

    def load(self, fitted: dict[str, Any]) -> None:
        self.reference = {name: dict(v) for name, v in fitted.items()}

    def describe_fitted(self) -> str:
        ref = self.reference or {}
        return ", ".join(f"{name} {v['center']:.4g}±{v['scale']:.3g}" for name, v in ref.items())

    def finish(self, raw: EnsembleRaw) -> Evaluation:
        if self.reference is None:
            raise RuntimeError("ensemble: no reference loaded (calibration.ensure_calibrated)")
        values = {"ensemble": ensemble_value(raw.terms, self.reference, COMPONENTS, RULE)}
        attrs = raw.mote.user_attrs()
        attrs.pop("mote")
        if self.mote_constants is not None:
            values_mote = combine_code(raw.mote.landscape, raw.mote.speed, self.mote_constants)
            attrs["mote"] = values_mote  # for comparison; not an objective of this study
        attrs["zero_cost"] = {
            k: v for k, v in raw.terms.items() if k not in ("landscape", "speed")
        }
        attrs["ensemble_z"] = z_scores(raw.terms, self.reference, COMPONENTS)
        attrs["ensemble_seconds"] = round(raw.seconds, 4)
        return Evaluation(values, attrs)
