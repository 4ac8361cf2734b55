"""Small helpers shared by the tests (imported as ``from helpers import ...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
# Box-Cox constants that skip a study's calibration warm-up (estimator.boxcox)
UNIT_BOXCOX = {
    "lambda_landscape": 1.0,
    "sigma_landscape": 1.0,
    "lambda_speed": 1.0,
    "sigma_speed": 1.0,
}


def write_study(path: Path, **fields: Any) -> Path:
    """Write a study YAML at ``path``: a tiny, fast NB201 study unless fields override it."""
    study: dict[str, Any] = {
        "name": "t",
        "storage": f"sqlite:///{path.parent / 'study.db'}",
        "space": "nb201",
        "sampler": {"name": "random", "seed": 0},
        "n_trials": 3,
        "estimator": {"budget": "tiny"},
        "dataset": {"name": "digits"},
        "device": "cpu",
        "workers": {"local": 1},  # one trial at a time: tests/test_local_pool.py runs several
    }
    study.update(fields)
    path.write_text(yaml.safe_dump(study))
    return path


class CountingEstimator:
    """Wraps an estimator and counts the architectures it was asked to evaluate (trained)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def evaluate(self, space: Any, arch: Any) -> Any:
        self.calls += 1
        return self.inner.evaluate(space, arch)


class ProcessProbe:
    """An estimator that reports the process it runs in (picklable: local_pool.py sends it)."""

    def describe(self) -> dict[str, Any]:
        return {"name": "probe"}

    def evaluate(self, space: Any, arch: Any) -> Any:
        import os

        import torch

        from mote_optuna.estimators.contract import Evaluation

        return Evaluation(
            values={"threads": float(torch.get_num_threads()), "mote": 1.0},
            attrs={"pid": os.getpid(), "wait_policy": os.environ.get("OMP_WAIT_POLICY")},
        )


class StallingProbe(ProcessProbe):
    """The first evaluation writes its pid to ``marker`` and stalls (for a test to kill it)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def evaluate(self, space: Any, arch: Any) -> Any:
        import os
        import time

        if not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            time.sleep(120)
        return super().evaluate(space, arch)
