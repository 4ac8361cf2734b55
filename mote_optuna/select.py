"""``python -m mote_optuna select STUDY.yaml --top-k K``: MOTE-NAS's top-k stage inside the study.

After the search, the K best distinct architectures by the study's score (``ranking``: best
first, equal scores by lowest trial number, one trial per ``arch_key``) each get one
higher-fidelity value (``fidelity``): ``table``, a benchmark's recorded 12-epoch validation
accuracy (NB201's ``*_valid_acc_12ep``; test columns are refused), costing one query = one
12-epoch training each; or ``train``, real training on the study's own dataset with the study's
``evaluation`` recipe. The final pick is the queried architecture with the highest value (equal
values: the one queried first). K is the budget: never more than K queries.

Few-query mode (``mode: reweight``, ``--few-query``; it uses the labels to steer the search):
with the ``ensemble`` objective, the first ``initial`` queries (default ceil(K/2)) follow the
score; then, before each further query, non-negative weights of the ensemble's terms
(the stored z-scores, trial attr ``ensemble_z``; score Σ w·log Φ(z), uniform weights = the
ensemble) are fitted to rank the queried labels best (Kendall τ-a over ``weight_samples`` seeded
random weight vectors; the uniform vector is tried first and wins ties, RoBoT-style), every
evaluated trial is re-ranked by the re-weighted score, and the best one not yet queried is
queried next (greedy), until K queries are spent.

Optuna refuses user attrs on finished trials, so the values live on the study: the study user
attr ``mote_optuna_select_values`` holds every value by fidelity key and ``arch_key`` (a re-run or
a resumed stage reads them instead of measuring again; each is saved as soon as it is measured),
and ``mote_optuna_selection`` holds the last run (candidates, queries, weights, pick). ``report``
shows them as the trial columns ``select_value`` and ``select_pick``; ``DIR/select.json`` has the
same record.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial
from scipy.special import log_ndtr

from mote_optuna import ranking
from mote_optuna.config import SelectConfig, StudyConfig
from mote_optuna.dashboard import note_selection
from mote_optuna.errors import UserError
from mote_optuna.estimators.ensemble import Z_CLIP
from mote_optuna.existing_study import load_existing_study
from mote_optuna.fidelity import Fidelity, TableFidelity, TrainFidelity
from mote_optuna.keys import SELECT_VALUES_ATTR, SELECTION_ATTR
from mote_optuna.report import report_dir
from mote_optuna.set_flags import SetFlag
from mote_optuna.spaces import SearchSpace, get_space

__all__ = ["add_arguments", "fit_weights", "handler", "kendall_tau_a", "select_study"]

Z_ATTR = "ensemble_z"  # the ensemble's z-scored terms, a trial user attr (estimators/ensemble.py)
Printer = Callable[[str], None]


class ValueStore:
    """The stage's measured values of one fidelity, saved in the study after every query."""

    def __init__(self, study: optuna.Study, key: str) -> None:
        self.study = study
        self.key = key
        self.all: dict[str, dict[str, Any]] = dict(study.user_attrs.get(SELECT_VALUES_ATTR) or {})
        self.values: dict[str, Any] = dict(self.all.get(key, {}))

    def get(self, arch_key: str) -> dict[str, Any] | None:
        return self.values.get(arch_key)

    def put(self, arch_key: str, entry: dict[str, Any]) -> None:
        self.values[arch_key] = entry
        self.all[self.key] = self.values
        self.study.set_user_attr(SELECT_VALUES_ATTR, self.all)


class Stage:
    """One run of the stage: queries candidates within the budget and tracks the pick."""

    def __init__(
        self, space: SearchSpace, fidelity: Fidelity, store: ValueStore, budget: int, out: Printer
    ) -> None:
        self.space, self.fidelity, self.store = space, fidelity, store
        self.budget, self.out = budget, out
        self.queried: list[dict[str, Any]] = []
        self.new_queries = 0
        self.start = time.perf_counter()

    @property
    def done(self) -> bool:
        return len(self.queried) >= self.budget

    def has(self, trial: FrozenTrial) -> bool:
        return any(c["trial"] == trial.number for c in self.queried)

    def pick(self) -> dict[str, Any]:
        """The highest value; equal values: the one queried first."""
        return max(self.queried, key=lambda c: c["fidelity_value"])

    def query(self, trial: FrozenTrial, score: float) -> None:
        """One query: the stored value of the architecture, else a new measurement."""
        key = ranking.arch_key(trial)
        arch_str = ranking.arch_string(self.space, trial)
        entry = self.store.get(key)
        if entry is None:
            arch = self.space.from_params(trial.params)
            value, seconds = self.fidelity.measure(self.space, arch, arch_str)
            entry = {"value": value, "seconds": round(seconds, 2), "arch": arch_str,
                     "trial": trial.number}  # fmt: skip
            self.store.put(key, entry)
            self.new_queries += 1
            how = f"{seconds:.1f} s"
        else:
            how = "stored"
        self.queried.append(
            {
                "trial": trial.number,
                "arch": arch_str,
                "score": score,
                "fidelity_value": float(entry["value"]),
                "seconds": float(entry["seconds"]),
            }
        )
        best = self.pick()
        self.out(
            f"query {len(self.queried)}/{self.budget}  trial {trial.number:<5} {arch_str}  "
            f"{entry['value']:.2f} ({how}; {time.perf_counter() - self.start:.1f} s so far)  "
            f"pick: trial {best['trial']} {best['fidelity_value']:.2f}"
        )


def kendall_tau_a(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Kendall τ-a of each row of ``scores`` (S x n) against ``labels`` (n); 0 for n < 2."""
    i, j = np.triu_indices(len(labels), k=1)
    if len(i) == 0:
        return np.zeros(len(scores))
    agree = np.sign(scores[:, i] - scores[:, j]) * np.sign(labels[i] - labels[j])
    return np.asarray(agree.mean(axis=1))


def fit_weights(
    terms: np.ndarray, labels: np.ndarray, *, samples: int, seed: int
) -> tuple[np.ndarray, float]:
    """Non-negative weights (summing to the number of terms) of log Φ of the z-scored ``terms``
    (n x m) that rank ``labels`` best, and their τ-a; uniform weights first, so they win ties."""
    m = terms.shape[1]
    rng = np.random.default_rng(seed)
    weights = np.vstack([np.ones(m), rng.dirichlet(np.ones(m), size=samples) * m])
    taus = kendall_tau_a(weights @ log_ndtr(terms).T, labels)
    best = int(np.argmax(taus))
    return weights[best], float(taus[best])


def _z_terms(trial: FrozenTrial, terms: Sequence[str]) -> np.ndarray:
    z = trial.user_attrs.get(Z_ATTR) or {}
    return np.array([float(z.get(name, -Z_CLIP)) for name in terms])  # missing: the worst


def _reweight(
    stage: Stage, ranked: list[FrozenTrial], settings: SelectConfig, scores: dict[int, float]
) -> dict[str, Any]:
    """Few-query mode: spend the remaining queries on the re-weighted ranking (greedy)."""
    if not all(Z_ATTR in t.user_attrs for t in ranked[: stage.budget]):
        raise UserError(f"select: the few-query mode needs the trial attr {Z_ATTR} (ensemble)")
    initial = min(stage.budget, settings.initial or math.ceil(stage.budget / 2))
    for trial in ranked[:initial]:
        stage.query(trial, scores[trial.number])
    terms = list(ranked[0].user_attrs[Z_ATTR])  # the terms the study's ensemble kept
    z_all = np.vstack([_z_terms(t, terms) for t in ranked])
    row = {t.number: i for i, t in enumerate(ranked)}
    weights, tau = np.ones(len(terms)), 0.0
    while not stage.done and len(stage.queried) < len(ranked):
        rows = [row[c["trial"]] for c in stage.queried]
        labels = np.array([c["fidelity_value"] for c in stage.queried])
        weights, tau = fit_weights(
            z_all[rows], labels, samples=settings.weight_samples, seed=settings.seed
        )
        weighted = log_ndtr(z_all) @ weights
        order = sorted(range(len(ranked)), key=lambda i: (-weighted[i], ranked[i].number))
        following = next(ranked[i] for i in order if not stage.has(ranked[i]))
        shown = ", ".join(f"{name} {w:.2f}" for name, w in zip(terms, weights, strict=True))
        stage.out(f"  re-weighted (τ-a {tau:.2f} on {len(labels)} labels): {shown}")
        stage.query(following, scores[following.number])
    return {
        "weights": {name: round(float(w), 4) for name, w in zip(terms, weights, strict=True)},
        "weights_tau": round(tau, 4),
        "initial": initial,
    }


def _fidelity(config: StudyConfig, space: SearchSpace, settings: SelectConfig) -> Fidelity:
    if settings.fidelity == "train":
        return TrainFidelity(config, space, config.evaluation)
    if not settings.truth:
        raise UserError("select: --fidelity table needs --truth CSV (the benchmark's table)")
    return TableFidelity(space, Path(settings.truth), settings.truth_column, validation_only=True)


def select_study(
    study: optuna.Study, config: StudyConfig, *, out: Printer = print
) -> dict[str, Any]:
    """Run the stage of ``config.select`` on ``study``; store and return its record."""
    settings = config.select
    if settings.top_k is None:
        raise UserError("select: give --top-k K (or select.top_k in the study file)")
    if settings.mode == "reweight" and "ensemble" not in config.objectives:
        raise UserError(
            "select: the few-query mode re-weights the ensemble's terms; the study's objectives "
            "must include ensemble"
        )
    ranked = ranking.ranked_distinct(study, config.objectives)
    if not ranked:
        raise UserError(f"select: study {config.name!r} has no completed trials yet")
    space = get_space(config.space)
    fidelity = _fidelity(config, space, settings)
    index = ranking.score_index(config.objectives)
    scores = {t.number: float(t.values[index]) for t in ranked}
    reweight = settings.mode == "reweight"
    label = " (few-query mode: labels re-weight the ensemble)" if reweight else ""
    out(
        f"top-k stage of {config.name!r}: {settings.top_k} queries of {len(ranked)} distinct "
        f"architectures by {config.objectives[index]}{label}; values from {fidelity.source}"
    )
    stage = Stage(space, fidelity, ValueStore(study, fidelity.key), settings.top_k, out)
    extra: dict[str, Any] = {}
    if reweight:
        extra = _reweight(stage, ranked, settings, scores)
    else:
        for trial in ranked[: settings.top_k]:
            stage.query(trial, scores[trial.number])
    pick = stage.pick()
    record = {
        "study": config.name,
        "fidelity": fidelity.name,
        "column": fidelity.column,
        "source": fidelity.source,
        "mode": settings.mode,
        "score": config.objectives[index],
        "top_k": settings.top_k,
        "queries": len(stage.queried),
        "new_queries": stage.new_queries,
        "cost": f"{len(stage.queried)} x {fidelity.unit}",
        "seconds": round(sum(c["seconds"] for c in stage.queried), 2),
        "candidates": stage.queried,
        "pick": {k: pick[k] for k in ("trial", "arch", "score", "fidelity_value")},
        **extra,
    }
    study.set_user_attr(SELECTION_ATTR, record)
    note_selection(study, record)
    out(
        f"pick: trial {pick['trial']} {pick['arch']} at {pick['fidelity_value']:.2f} "
        f"({len(stage.queried)} queries, {stage.new_queries} new; cost {record['cost']})"
    )
    return record


def write_json(record: dict[str, Any], folder: Path) -> Path:
    """``folder/select.json``: the record of the stage."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "select.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags; each stands for ``--set select.FIELD=VALUE`` (``set_flags.SetFlag``)."""

    def flag(name: str, field: str, text: str, **kwargs: Any) -> None:
        parser.add_argument(
            name, dest="overrides", action=SetFlag, field=f"select.{field}", help=text, **kwargs
        )

    flag("--top-k", "top_k", "budget: K queries (select.top_k)", type=int, metavar="K")
    flag("--fidelity", "fidelity", "select.fidelity", choices=("table", "train"))
    flag("--truth", "truth", "table: the ground-truth CSV (select.truth)", type=Path)
    flag("--truth-column", "truth_column", "table: the validation column (default "
         "cifar10_valid_acc_12ep)", metavar="COLUMN")  # fmt: skip
    flag("--few-query", "mode", "few-query mode: the labels re-weight the ensemble's terms "
         "(select.mode: reweight)", value="reweight")  # fmt: skip
    flag("--out", "out", "folder of select.json (default: report folder)", type=Path)


def handler(args: argparse.Namespace, config: StudyConfig) -> int:
    record = select_study(load_existing_study(config), config)
    folder = Path(config.select.out) if config.select.out else report_dir(config)
    print(f"select: {write_json(record, folder)}")
    return 0
