"""The ``ensemble`` objective: label-free terms of an architecture, combined by one rule (``RULE``)
on every space.

The rule names a pool of terms (MOTE's trained landscape and speed terms, or zero-cost terms of
the full network at initialisation: ``CANDIDATES``) and may keep, per study, only the terms that
agree with the others on the study's warm-up (``agreeing``; no label is read). It was chosen on
the tuning samples of four spaces together (``bench ensemble-rule``). When the kept terms need no
training, a study's trials train nothing (``EnsembleEstimator.raw_terms``).

Each component is standardised against a reference population: the study's seeded warm-up
(``calibration.py``), scored once, stored in the study and loaded by every resume and every
worker, so a trial's value never changes after it is told. A component's z-score is
``(t(x) - center) / scale``, with ``t`` the identity or the logarithm, ``center`` the median and
``scale`` the interquartile range / 1.349 of ``t`` over the reference (robust to the dead cells of
a random population). The ensemble is Σ w log Φ(z) (``logcdf``): like AZ-NAS's Σ log(rank / m)
it punishes a candidate that is weak on any component, but it needs no population at scoring
time, and it stays strictly increasing above the reference's best, so the top of a search is not
tied. A component's weight ``w`` makes its penalty steeper: log Φ(z) is near 0 for a component
well above the reference's median, so a heavy size term mostly sinks the small networks and leaves
the large ones to the other terms.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import log_ndtr
from scipy.stats import kendalltau, rankdata

from mote_optuna.config import StudyConfig
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
from mote_optuna.estimators.settings import REFERENCE_POPULATION, CalibrationConfig
from mote_optuna.estimators.zero_cost import ZeroCostTerms
from mote_optuna.spaces import SearchSpace, published_boxcox

Z_CLIP = 8.0  # |z| beyond this is clipped (a dead cell's -inf NASWOT, a log of 0)
MIN_SCALE = 1e-12
MIN_FINITE = 3  # finite values of a term in the reference population needed to scale it


@dataclass(frozen=True)
class Component:
    """One input of the ensemble: the raw term ``name``, log-transformed or not, counted
    ``weight`` times in the sum."""

    name: str
    log: bool = False
    weight: float = 1.0

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
        if len(finite) < MIN_FINITE:
            raise ValueError(
                f"ensemble: fewer than {MIN_FINITE} finite {c.name} values in the reference"
            )
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
    weights = np.array([c.weight for c in components])
    if rule == "linear":
        return float(weights @ z)
    return float(weights @ log_ndtr(z))


def agreeing(
    raws: Sequence[Mapping[str, float]], pool: Sequence[Component], threshold: float
) -> tuple[Component, ...]:
    """The terms of ``pool`` that agree with the others on ``raws`` (no label is read).

    A term's agreement is Kendall's τ between it and the mean rank of the other remaining terms
    over ``raws`` (the study's warm-up). The least agreeing term is dropped while its agreement is
    below ``threshold`` and more than two terms remain, so a term that ranks a space's networks
    against the consensus of the others (MOTE's landscape on Accel-NASBench, AZ-NAS's
    progressivity on NB101) is left out of that study only."""
    ranks, usable = {}, set()
    for c in pool:
        values = np.array([c.transform(float(r[c.name])) for r in raws], dtype=float)
        ranks[c.name] = rankdata(np.nan_to_num(values, nan=-np.inf))
        if np.isfinite(values).sum() >= MIN_FINITE:
            usable.add(c.name)
    kept = list(pool)
    while len(kept) > 2:
        agreement = {}
        for c in kept:
            others = np.mean([ranks[o.name] for o in kept if o is not c], axis=0)
            tau = kendalltau(ranks[c.name], others).statistic
            # a term without MIN_FINITE finite values on the warm-up cannot be scaled: it goes
            agreement[c.name] = -1.0 if math.isnan(tau) or c.name not in usable else float(tau)
        worst = min(kept, key=lambda c: agreement[c.name])
        if agreement[worst.name] >= threshold:
            break
        kept.remove(worst)
    # a term the warm-up cannot scale is never kept, even as one of the last two (when none can
    # be scaled, ``fit_reference`` says so)
    return tuple([c for c in kept if c.name in usable] or kept)


@dataclass(frozen=True)
class EnsembleRule:
    """Which terms the ensemble combines, and how.

    ``agreement``: None keeps every term of ``pool``; a number keeps the terms that ``agreeing``
    keeps on the study's warm-up. The fitted reference (``fit``) names the terms it kept, so a
    study stores its choice once and every resume and worker scores with the same terms."""

    pool: tuple[Component, ...]
    agreement: float | None = None
    combine: str = "logcdf"

    def fit(self, raws: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
        chosen = self.pool if self.agreement is None else agreeing(raws, self.pool, self.agreement)
        return fit_reference(raws, chosen)

    def components(self, fitted: Mapping[str, Any]) -> tuple[Component, ...]:
        return tuple(c for c in self.pool if c.name in fitted)

    def value(self, raw: Mapping[str, float], fitted: Mapping[str, Mapping[str, float]]) -> float:
        return ensemble_value(raw, fitted, self.components(fitted), self.combine)

    def describe(self) -> dict[str, Any]:
        return {
            "pool": [asdict(c) for c in self.pool],
            "agreement": self.agreement,
            "combine": self.combine,
        }


# The rule, chosen by ``bench ensemble-rule`` on the seed-0 samples of NB201, NB101,
# NAS-Bench-Macro and Accel-NASBench together (the largest mean gain in Kendall τ over the better
# size baseline; docs/BENCHMARKS.md, "One rule for every space") and held out on seeds 1-4. Of
# the candidates, MOTE's terms did not pay on the four spaces together (``mote`` stays an
# objective). The size term counts 8 times: its steep penalty sinks the small networks, and the
# other terms rank the large ones (chosen from the weights 1, 2, 4, 8 and 16). The filter at 0.2
# leaves out, per study, each term whose τ with the others' mean rank on the warm-up is below 0.2
# (no label is read): on NAS-Bench-Macro it leaves the size out.
RULE = EnsembleRule(
    pool=(
        Component("live_params", log=True, weight=8.0),  # the live network's size
        Component("az_expressivity"),  # AZ-NAS as published (noise input, az_nas.py)
        Component("azr_trainability"),  # the real-image variant's trainability
        Component("meco", log=True),
        Component("naswot"),
    ),
    agreement=0.2,
)
# Every term a rule may draw on: MOTE's two terms and the zero-cost terms (ZeroCostTerms).
CANDIDATES: tuple[Component, ...] = (
    Component("landscape", log=True),
    Component("speed", log=True),
    Component("live_flops", log=True),
    Component("live_params", log=True),
    Component("az_expressivity"),
    Component("az_progressivity"),
    Component("az_trainability"),
    Component("azr_trainability"),
    Component("meco", log=True),
    Component("naswot"),
)


MOTE_TERMS = frozenset({"landscape", "speed"})  # the terms that need MOTE's short training
SIZE_TERMS = frozenset(
    {"live_params", "live_flops"}
)  # the live network's size (weighed by a rule)


@dataclass
class EnsembleRaw:
    """Every term of one architecture before the reference scale is applied; ``mote`` is None
    when the study's terms need no training (``EnsembleEstimator.raw_terms``)."""

    terms: dict[str, float]
    mote: MoteResult | None
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
            "rule": RULE.describe(),
            "zero_cost_batch": AZ_NAS_BATCH,
            "calibration": asdict(self.calibration),
            "dataset": self.dataset,
        }

    def raw_terms(self, space: SearchSpace, arch: Any) -> EnsembleRaw:
        """Every term the study may combine: all of the rule's pool on the warm-up, and once the
        reference is fitted only those it kept (no training when there is no MOTE term)."""
        start = time.perf_counter()
        terms: dict[str, float] = {}
        result = None
        names = {c.name for c in RULE.pool} if self.reference is None else set(self.reference)
        if MOTE_TERMS & names:
            result = self.mote.score(self.mote.proxy(space, arch), combine=False)
            terms.update(landscape=result.landscape, speed=result.speed)
        terms.update(self.zero_cost(arch))
        return EnsembleRaw(terms, result, time.perf_counter() - start)

    def evaluate(self, space: SearchSpace, arch: Any) -> Evaluation:
        return self.finish(self.raw_terms(space, arch))

    # calibration.Calibrated: the reference scale of each component

    def describe_raw(self, raw: EnsembleRaw) -> str:
        terms = "  ".join(f"{c.name} {raw.terms[c.name]:.4g}" for c in RULE.pool)
        return f"{terms}  {raw.seconds:.1f} s"

    def fit(self, raws: list[EnsembleRaw]) -> tuple[dict[str, Any], str]:
        try:
            fitted = RULE.fit([r.terms for r in raws])
        except ValueError as exc:
            raise UserError(
                f"calibration: {exc}; raise estimator.calibration.population"
            ) from None
        left_out = [c.name for c in RULE.pool if c.name not in fitted]
        if not left_out:
            return fitted, ""
        names = ", ".join(left_out)
        return fitted, f"terms left out (they disagree with the others on the warm-up): {names}"

    def load(self, fitted: dict[str, Any]) -> None:
        self.reference = {name: dict(v) for name, v in fitted.items()}

    def describe_fitted(self) -> str:
        ref = self.reference or {}
        return ", ".join(f"{name} {v['center']:.4g}±{v['scale']:.3g}" for name, v in ref.items())

    def finish(self, raw: EnsembleRaw) -> Evaluation:
        if self.reference is None:
            raise RuntimeError("ensemble: no reference loaded (calibration.ensure_calibrated)")
        values = {"ensemble": RULE.value(raw.terms, self.reference)}
        attrs: dict[str, Any] = {}
        if raw.mote is not None:
            attrs = raw.mote.user_attrs()
            attrs.pop("mote")
            if self.mote_constants is not None:  # for comparison; not an objective of this study
                attrs["mote"] = combine_code(
                    raw.mote.landscape, raw.mote.speed, self.mote_constants
                )
        attrs["zero_cost"] = {k: v for k, v in raw.terms.items() if k not in MOTE_TERMS}
        attrs["ensemble_z"] = z_scores(raw.terms, self.reference, RULE.components(self.reference))
        attrs["ensemble_seconds"] = round(raw.seconds, 4)
        return Evaluation(values, attrs)
