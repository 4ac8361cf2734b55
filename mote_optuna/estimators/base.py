"""The estimator contract (``contract``) and factory (``registry``) under the names the rest of
the package imports them by."""

from __future__ import annotations

from mote_optuna.estimators.contract import Estimator, Evaluation, resolve_device
from mote_optuna.estimators.registry import make_estimator

__all__ = ["Estimator", "Evaluation", "make_estimator", "resolve_device"]
