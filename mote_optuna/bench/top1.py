"""The top-1 of a search: the true accuracy of the architecture its score ranks first.

One rule for every bench (``bench search``, ``bench study-search``, ``bench top1-curve``):
**ties are averaged.** When several distinct architectures share the best score exactly, the
top-1's accuracy is the mean true accuracy over those tied architectures: what a random choice
among them gives in expectation. A search cannot tell tied architectures apart, so crediting it
with the luckiest (or the earliest) of them would report an order it did not choose. The
architecture shown as "the" top-1 is the first of the tied ones in the caller's order (for a
study: the lowest trial number, ``ranking.ranked_distinct``); ``tied`` says how many share it.
A NaN score is never best.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import optuna
import pandas as pd

from mote_optuna.errors import UserError
from mote_optuna.keys import ARCH_ATTR
from mote_optuna.ranking import arch_key, ranked_distinct, score_index

__all__ = ["Top1", "study_top1", "tied_best", "top1_accuracy"]


def tied_best(scores: np.ndarray) -> np.ndarray:
    """Mask of the entries equal to the highest score (higher is better)."""
    scores = np.asarray(scores, dtype=float)
    if np.isnan(scores).all():  # also an empty array
        raise ValueError("top-1 of no scored architecture")
    return scores == np.nanmax(scores)


def top1_accuracy(scores: np.ndarray, accuracy: np.ndarray) -> float:
    """The top-1's true accuracy: the mean of ``accuracy`` over the cells tied at the best."""
    return float(np.asarray(accuracy, dtype=float)[tied_best(scores)].mean())


@dataclass(frozen=True)
class Top1:
    arch: str  # the first of the tied architectures (lowest trial number)
    value: float  # the best score, as the study stored it
    accuracy: float  # mean true accuracy over the tied architectures (module rule)
    tied: int  # distinct architectures sharing the best score
    distinct: int  # distinct architectures the study completed


def study_top1(study: optuna.Study, objectives: list[str], accuracy: pd.Series) -> Top1:
    """A study's top-1 by its score (``ranking.score_index``), with ``accuracy`` by arch string."""
    ranked = ranked_distinct(study, objectives)
    if not ranked:
        raise UserError(f"study {study.study_name}: no COMPLETE trial to take a top-1 from")
    index = score_index(objectives)
    sign = 1.0 if study.directions[index] == optuna.study.StudyDirection.MAXIMIZE else -1.0
    archs = [str(t.user_attrs.get(ARCH_ATTR, arch_key(t))) for t in ranked]
    unknown = [a for a in archs if a not in accuracy.index]
    if unknown:
        raise UserError(f"study {study.study_name}: {unknown[0]} is not in the truth table")
    scores = np.array([sign * t.values[index] for t in ranked])
    tied = tied_best(scores)
    return Top1(
        arch=archs[0],
        value=float(ranked[0].values[index]),
        accuracy=top1_accuracy(scores, accuracy.loc[archs].to_numpy(dtype=float)),
        tied=int(tied.sum()),
        distinct=len(ranked),
    )
