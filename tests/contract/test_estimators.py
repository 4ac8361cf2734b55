"""The estimator contract (``estimators.contract.Estimator``), checked on every registered one.

Each estimator of ``estimators.registry`` is built the way a study builds it (``make_estimator``
from a validated study file) at the ``tiny`` budget on the project's ``digits`` data set, on CPU
with one thread; one that calibrates (``calibration.Calibrated``) fits on a 3-architecture warm-up
first (the second estimator loads the fitted values, as a resumed study does). The ``table`` kind
reads a small table written to tmp_path. Scores must be finite and the same for the same seed,
from two separately built estimators.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from mote_optuna.config import StudyConfig, config_from_dict
from mote_optuna.estimators.contract import Estimator, Evaluation
from mote_optuna.estimators.names import ESTIMATOR_KINDS, SCORE_NAMES
from mote_optuna.estimators.registry import BY_KIND, BY_SCORE, make_estimator
from mote_optuna.spaces import SearchSpace, get_space

ESTIMATORS = [*BY_KIND, *BY_SCORE]
SPACE = "nb201"
# The score table's cells: the first three are the warm-up, the last one is scored. Few
# convolutions, so that the ensemble's zero-cost terms of the full network stay fast.
ARCHS = (
    "|skip_connect~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_1x1~2|",
    "|avg_pool_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|avg_pool_3x3~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_1x1~2|",
)


def _archs(space: SearchSpace) -> list[Any]:
    return [space.from_str(text) for text in ARCHS]


def _config(name: str, tmp_path: Path, space: SearchSpace) -> StudyConfig:
    estimator: dict[str, Any] = {"budget": "tiny"}
    objectives = ["mote", "flops", "params"]
    if name in BY_SCORE:
        objectives[0] = name
        estimator["calibration"] = {"population": 3, "seed": 0}
    else:
        estimator["kind"] = name
    if name == "table":
        table = tmp_path / "scores.csv"
        rows = [f"{space.to_str(a)},{0.5 + i / 10}\n" for i, a in enumerate(_archs(space))]
        table.write_text("arch_str,mote\n" + "".join(rows))
        estimator["table"] = str(table)
    fields = {
        "name": f"contract-{name}",
        "storage": f"sqlite:///{tmp_path / 'study.db'}",
        "space": space.name,
        "objectives": objectives,
        "estimator": estimator,
        "dataset": {"name": "digits"},
        "device": "cpu",
    }
    return config_from_dict(fields, "<contract>")


def _calibrate(estimator: Estimator, space: SearchSpace) -> dict[str, Any] | None:
    """Fit an estimator that needs it on a 3-architecture warm-up, as
    ``calibration.ensure_calibrated`` does; the fitted values go through JSON (the study)."""
    if getattr(estimator, "calibration", None) is None:
        return None
    raws = [estimator.raw_terms(space, arch) for arch in _archs(space)[:3]]  # type: ignore[attr-defined]
    fitted, _warning = estimator.fit(raws)  # type: ignore[attr-defined]
    fitted = json.loads(json.dumps(fitted))
    estimator.load(fitted)  # type: ignore[attr-defined]
    return fitted


def test_registry_names_are_the_config_names() -> None:
    assert set(BY_KIND) == set(ESTIMATOR_KINDS)
    assert {"mote", *BY_SCORE} == set(SCORE_NAMES)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_finite_and_deterministic_scores(name: str, tmp_path: Path) -> None:
    space = get_space(SPACE)
    config = _config(name, tmp_path, space)
    arch = _archs(space)[-1]
    first_estimator = make_estimator(config, space)
    fitted = _calibrate(first_estimator, space)
    second_estimator = make_estimator(config, space)  # a resumed study, or another worker
    if fitted is not None:
        second_estimator.load(fitted)  # type: ignore[attr-defined]
    results: list[Evaluation] = []
    for estimator in (first_estimator, second_estimator):
        json.dumps(estimator.describe())  # stored in the study: JSON
        results.append(estimator.evaluate(space, arch))
    first, second = results
    score = name if name in BY_SCORE else "mote"
    assert score in first.values
    assert all(math.isfinite(v) for v in first.values.values()), first.values
    assert first.values == second.values
