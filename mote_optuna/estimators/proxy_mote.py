"""The MOTE estimator as the objective uses it: reduced data on the device, a seeded proxy."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from mote_optuna.calibration import calibration_for
from mote_optuna.config import StudyConfig
from mote_optuna.estimators.boxcox import BoxCoxConstants, dominance_warning, fit_boxcox
from mote_optuna.estimators.contract import Evaluation
from mote_optuna.estimators.mote import MoteEstimator, MoteResult, MoteSettings
from mote_optuna.estimators.scorer import build_scoring
from mote_optuna.estimators.settings import CalibrationConfig
from mote_optuna.spaces import SearchSpace, published_boxcox


class ProxyMote:
    """Builds the space's reduced architecture with a fixed seed and scores it with MOTE.

    With ``calibration`` set the Box-Cox constants are not known yet: the study fits them on a
    warm-up population (``raw_terms``, ``fit``) and hands them over with ``load`` before the
    first trial (calibration.Calibrated). ``describe`` (the resume check) names the
    calibration, never the fitted values.
    """

    def __init__(
        self,
        settings: MoteSettings,
        estimator: MoteEstimator,
        dataset: dict[str, Any],
        constants: BoxCoxConstants | None,
        calibration: CalibrationConfig | None = None,
    ) -> None:
        self.settings = settings
        self.estimator = estimator
        self.dataset = dataset
        self.constants = constants
        self.calibration = calibration

    @classmethod
    def from_config(cls, config: StudyConfig, space: SearchSpace) -> ProxyMote:
        calibration = calibration_for(config.estimator, space)
        constants = config.estimator.boxcox or (None if calibration else published_boxcox(space))
        scoring = build_scoring(config.estimator, config.dataset, space, config.device, constants)
        return cls(scoring.settings, scoring.mote, scoring.dataset, constants, calibration)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "mote",
            **self.settings.as_dict(),
            "boxcox": asdict(self.constants) if self.constants and not self.calibration else None,
            **({"calibration": asdict(self.calibration)} if self.calibration else {}),
            "dataset": self.dataset,
        }

    def evaluate(self, space: SearchSpace, arch: Any) -> Evaluation:
        result = self.estimator.score(self.estimator.proxy(space, arch))
        return Evaluation({"mote": result.mote}, result.user_attrs())

    def raw_terms(self, space: SearchSpace, arch: Any) -> MoteResult:
        """The raw landscape and speed terms of ``arch`` (the training of ``evaluate``)."""
        return self.estimator.score(self.estimator.proxy(space, arch), combine=False)

    # calibration.Calibrated: the Box-Cox constants of a space without published ones

    fits = "Box-Cox constants"

    def describe_raw(self, raw: MoteResult) -> str:
        return f"landscape {raw.landscape:.4g}  speed {raw.speed:.4g}  {raw.seconds:.1f} s"

    def fit(self, raws: list[MoteResult]) -> tuple[dict[str, Any], str]:
        constants = fit_boxcox([r.landscape for r in raws], [r.speed for r in raws])
        return asdict(constants), dominance_warning(constants)

    def load(self, fitted: dict[str, Any]) -> None:
        self.constants = BoxCoxConstants(**fitted)
        self.estimator.constants = self.constants

    def describe_fitted(self) -> str:
        c = self.constants
        if c is None:
            return "(none)"
        return (
            f"λ_L {c.lambda_landscape:.4g}, σ_L {c.sigma_landscape:.4g}, "
            f"λ_S {c.lambda_speed:.4g}, σ_S {c.sigma_speed:.4g}"
        )

    def finish(self, raw: MoteResult) -> Evaluation:
        mote = self.estimator.combine(raw.landscape, raw.speed)
        return Evaluation({"mote": mote}, raw.user_attrs())
