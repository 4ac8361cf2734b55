"""estimator.kind: table — scores from a CSV, through the real runner, storage and report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from nb201_synthetic import write_tables
from optuna.trial import TrialState

from mote_optuna.config import config_from_dict
from mote_optuna.cost import measure
from mote_optuna.errors import UserError
from mote_optuna.estimators.table import TableEstimator
from mote_optuna.report import pareto_frame, trials_frame
from mote_optuna.spaces import get_space
from mote_optuna.spaces.nb201 import NB201Space
from mote_optuna.storage import make_storage
from mote_optuna.study import run_study


def _config(tmp_path: Path, scores: Path, **extra: object) -> object:
    raw = {
        "name": "table",
        "storage": f"journal:{tmp_path / 'table.log'}",  # journal: fewer disk syncs than SQLite
        "sampler": {"name": "random", "seed": 0},
        "n_trials": 8,
        "estimator": {"kind": "table", "table": str(scores)},
    }
    raw.update(extra)
    return config_from_dict(raw, "test")


def test_table_study_runs_and_resumes(tmp_path: Path) -> None:
    _, scores = write_tables(tmp_path)
    config = _config(tmp_path, scores)
    study = run_study(config, out=lambda s: None)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 8
    trial = complete[0]
    # the table's flops/params columns are used, and its extra columns become attrs
    assert trial.values[1] == trial.user_attrs["flops"]
    assert {"landscape_term", "speed_term", "mote_seconds"} <= set(trial.user_attrs)
    # resume to 12: the first 8 trials stay, 4 are added
    config.n_trials = 12
    study = run_study(config, out=lambda s: None)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 12
    assert [t.values for t in study.trials[:8]] == [t.values for t in complete]
    frame = trials_frame(study, config.objectives)
    assert len(frame) >= 12 and len(pareto_frame(study, config.objectives)) >= 1


def test_changed_table_refuses_resume(tmp_path: Path) -> None:
    _, scores = write_tables(tmp_path)
    run_study(_config(tmp_path, scores, n_trials=2), out=lambda s: None)
    scores.write_text(scores.read_text().replace(",5.0,", ",5.5,", 1))
    with pytest.raises(UserError, match="other settings"):
        run_study(_config(tmp_path, scores, n_trials=4), out=lambda s: None)


def test_missing_key_error_is_one_line(tmp_path: Path) -> None:
    _, scores = write_tables(tmp_path, drop=15000)
    with pytest.raises(UserError) as info:
        run_study(_config(tmp_path, scores), out=lambda s: None)
    message = str(info.value)
    assert "\n" not in message and "no score for |" in message and "table_missing: skip" in message


def test_missing_key_skip_prunes_with_reason(tmp_path: Path) -> None:
    _, scores = write_tables(tmp_path, drop=8000)
    config = _config(tmp_path, scores, n_trials=3)
    config.estimator.table_missing = "skip"
    study = run_study(config, out=lambda s: None)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert pruned, "about half of the random cells are not in the table"
    assert all("not in score table" in t.user_attrs["fail_reason"] for t in pruned)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 3


def test_bad_columns_give_clear_errors(tmp_path: Path) -> None:
    _, scores = write_tables(tmp_path)
    config = _config(tmp_path, scores)
    config.estimator.table_columns = {"mote": "nope"}
    with pytest.raises(UserError, match=r"column 'nope' is not in scores\.csv"):
        TableEstimator.from_config(config, NB201Space())
    config.estimator.table_columns = {"score": "mote"}
    with pytest.raises(UserError, match="unknown role"):
        TableEstimator.from_config(config, NB201Space())


def test_nb201_cost_formula_matches_measured_network() -> None:
    space = NB201Space()
    arch = ("nor_conv_3x3", "avg_pool_3x3", "nor_conv_1x1", "none", "nor_conv_3x3", "skip_connect")
    measured = measure(space.build_full(arch), 32)
    formula = space.analytic_cost(arch)
    assert formula.flops == pytest.approx(measured.flops, rel=1e-9)
    assert formula.params == pytest.approx(measured.params, rel=1e-9)


def test_in_memory_objective_without_cost_columns_uses_formula(tmp_path: Path) -> None:
    from mote_optuna.objective import Objective

    _, scores = write_tables(tmp_path)
    frame_path = tmp_path / "only_mote.csv"
    import pandas as pd

    pd.read_csv(scores)[["arch_str", "mote"]].to_csv(frame_path, index=False)
    config = _config(tmp_path, frame_path, n_trials=3)
    space = NB201Space()
    estimator = TableEstimator.from_config(config, space)
    study = optuna.create_study(directions=config.directions)
    study.optimize(Objective(config, space, estimator), n_trials=3)
    for t in study.trials:
        cost = space.analytic_cost(space.from_params(t.params))
        assert t.values[1] == pytest.approx(cost.flops)


@pytest.mark.parametrize(("count", "complete", "distinct"), [("trials", 4, 2), ("distinct", 6, 4)])
def test_count_says_what_n_trials_counts(
    tmp_path: Path, count: str, complete: int, distinct: int
) -> None:
    _, scores = write_tables(tmp_path)
    config = _config(tmp_path, scores, n_trials=4, count=count)
    space = NB201Space()
    study = optuna.create_study(
        study_name="table",
        storage=make_storage(config.storage_url, workers=1),
        directions=config.directions,
    )
    cell = space.to_params(space.sample(np.random.default_rng(5)))
    for _ in range(3):  # the same cell three times: scored once, then told its stored values
        study.enqueue_trial(cell)
    study = run_study(config, out=lambda s: None)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == complete
    assert len({t.user_attrs["arch_key"] for t in done}) == distinct
    assert sum("cached_from" in t.user_attrs for t in done) == 2


def test_architecture_strings_keep_their_leading_zeros(tmp_path: Path) -> None:
    """NAS-Bench-Macro's codes start with zeros: the key column is read as text."""
    space = get_space("nb-macro")
    arch = space.from_str("01021220")
    table = tmp_path / "scores.csv"
    pd.DataFrame({"arch_str": ["01021220", "22222222"], "mote": [1.5, 2.0]}).to_csv(
        table, index=False
    )
    config = config_from_dict(
        {"name": "t", "space": "nb-macro", "estimator": {"kind": "table", "table": str(table)}}
    )
    estimator = TableEstimator.from_config(config, space)
    assert estimator.evaluate(space, arch).values == {"mote": 1.5}
