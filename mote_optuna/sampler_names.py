"""The names a study file may give ``sampler.name``, for ``config`` to validate against without
importing the samplers (Optuna's samplers, MOTE-NAS and, through it, the spaces and torch);
``samplers.SAMPLERS`` maps each to its class (tests/test_config.py checks they agree)."""

from __future__ import annotations

# in the order ``bench search`` runs them by default
SAMPLER_NAMES = ("nsga2", "tpe", "random", "gp", "nsga3", "motenas")
