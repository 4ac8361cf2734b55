"""The names of the registered estimators, for ``config`` to validate the study file against.

They live apart from ``registry`` (which maps each name to its class) because the estimators import
``config`` for the study's settings; ``registry`` refuses to load when the two disagree.
"""

from __future__ import annotations

# estimator.kind: how the ``mote`` objective is scored (trained proxy, or read from a table)
ESTIMATOR_KINDS = ("mote", "table")
# The trained scores: an estimator's Evaluation.values, stored as trial user attrs of that name.
# ``mote`` comes from the estimator.kind; any other score names the estimator that computes it.
SCORE_NAMES = ("mote", "ensemble")
