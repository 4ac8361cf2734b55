"""``python -m mote_optuna evaluate study.yaml --top-k K | --pareto``: train the picked candidates.

The candidates are the top-k distinct architectures by the study's score (``ranking``), or the
Pareto set (``study.best_trials``). Each gets a value from a ``fidelity``: trained as the space's
full network on the evaluation dataset with the study's ``evaluation`` recipe
(``TrainFidelity``), or, with ``--truth CSV`` (NB201), the benchmark's recorded 12-epoch accuracy
(``TableFidelity``, any column, test included: this command reports, it does not select; the
``select`` stage picks on validation accuracy). The output says which one was used.

Optuna refuses user attrs on finished trials (``UpdateFinishedTrialError``), so the results are
stored in the study user attr ``evaluation``: ``{"trials": {"<number>": {...}}, "final_pick": N}``.
The final pick is the evaluated candidate with the highest accuracy; ``report`` shows ``eval_acc``
and ``final_pick`` columns.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from mote_optuna import ranking
from mote_optuna.config import StudyConfig
from mote_optuna.errors import UserError
from mote_optuna.existing_study import load_existing_study
from mote_optuna.fidelity import Fidelity, TableFidelity, TrainFidelity
from mote_optuna.keys import EVALUATION_ATTR
from mote_optuna.spaces import get_space


def candidates(
    study: optuna.Study, objectives: list[str], *, top_k: int | None, pareto: bool
) -> list[FrozenTrial]:
    """Top-k distinct architectures by the study's score (``ranking``), or the Pareto set."""
    if pareto:
        return sorted(study.best_trials, key=lambda t: t.number)
    return ranking.top_k(study, objectives, top_k or 0)


def evaluate_study(
    study: optuna.Study,
    config: StudyConfig,
    *,
    top_k: int | None = None,
    pareto: bool = False,
    truth: Path | None = None,
    truth_column: str = "cifar10_test_acc_12ep",
    out: Any = print,
) -> dict[str, Any]:
    """Evaluate the candidates, store the results in the study and return them."""
    if (top_k is None) == (not pareto):
        raise UserError("evaluate: give exactly one of --top-k K or --pareto")
    if top_k is not None and top_k < 1:
        raise UserError(f"evaluate: --top-k must be at least 1, got {top_k}")
    space = get_space(config.space)
    picked = candidates(study, config.objectives, top_k=top_k, pareto=pareto)
    if not picked:
        raise UserError(f"evaluate: study {config.name!r} has no completed trials yet")
    recipe = config.evaluation
    fidelity: Fidelity = (
        TableFidelity(space, truth, truth_column, validation_only=False)
        if truth is not None
        else TrainFidelity(config, space, recipe)
    )
    out(f"evaluating {len(picked)} candidates of {config.name!r}; accuracy from {fidelity.source}")
    results: dict[str, dict[str, Any]] = {}
    for trial in picked:
        arch_str = ranking.arch_string(space, trial)
        acc, seconds = fidelity.measure(space, space.from_params(trial.params), arch_str)
        results[str(trial.number)] = {
            "eval_acc": round(float(acc), 4),
            "eval_source": fidelity.source,
            "eval_seconds": round(seconds, 2),
            "arch": arch_str,
        }
        out(f"  trial {trial.number:<5} {arch_str}  acc {acc:.2f} %  ({seconds:.1f} s)")
    stored = dict(study.user_attrs.get(EVALUATION_ATTR) or {})
    trials = {**stored.get("trials", {}), **results}
    best = max(trials, key=lambda n: (trials[n]["eval_acc"], -int(n)))
    record = {
        "trials": trials,
        "final_pick": int(best),
        "recipe": {k: v for k, v in asdict(recipe).items() if k != "dataset"},
    }
    study.set_user_attr(EVALUATION_ATTR, record)
    out(
        f"final pick: trial {best} {trials[best]['arch']} at {trials[best]['eval_acc']:.2f} % "
        f"({trials[best]['eval_source']})"
    )
    return record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--top-k", type=int, help="train the K best distinct cells by MOTE")
    group.add_argument("--pareto", action="store_true", help="train the Pareto set")
    parser.add_argument(
        "--truth", type=Path, help="NB201 ground truth CSV: use its recorded accuracy instead"
    )
    parser.add_argument(
        "--truth-column", default="cifar10_test_acc_12ep", help="accuracy column of --truth"
    )


def handler(args: argparse.Namespace, config: StudyConfig) -> int:
    study = load_existing_study(config)
    evaluate_study(
        study,
        config,
        top_k=args.top_k,
        pareto=args.pareto,
        truth=args.truth,
        truth_column=args.truth_column,
    )
    return 0
