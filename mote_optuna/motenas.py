"""MOTE-NAS's coarse-to-fine evolutionary search (MOTE_SPEC §7.1) as an Optuna sampler.

The pool P is every COMPLETE trial of the study. Trials come in generations whose size grows like
the paper's batch B: ``population_size`` (10) trials per generation, plus ``batch_growth`` (10)
every ``growth_every`` (10) generations. Generation 0 is random. Each later generation fixes its
parents when it starts: the top ``parent_fraction`` (10 %, the paper; the released code: 1 %)
of P, at least one, ranked by the MOTE objective. Its trials are then drawn uniformly, without
repetition, from the mutants of those parents that the study has not seen: architectures that
differ from a parent in at most ``max_changes`` parameters (1 = one categorical choice changed or
one integer step, the space's ``neighbours``; 2 = the released code's "encoded distance <= 1" on
NB201, MOTE_SPEC §7.1). When every mutant of the parents is already known, the parent list is
extended down the ranking; a random cell is drawn only when nothing is left. Early generations
are coarse (one or two parents from a small random pool), later ones fine (the neighbourhoods of
many good cells).

It ranks by the ``mote`` objective (``study.metric_names``; else ``objective``; else the first
objective) in that objective's direction, so it runs on single- and multi-objective studies alike.
``parents: front`` ranks by non-dominated sorting over all objectives instead (MOTE breaks ties),
which spreads the search along the Pareto front rather than toward the highest MOTE.
``parent_order: rank`` draws all unseen mutants of the best parent before those of the next one
(a local search around the current best) instead of drawing uniformly from all parents' mutants.

When the study was opened by mote_optuna (user attr ``mote_optuna.space``), the sampler knows the
search space: it proposes only cells the space accepts and treats equivalent cells (same
``space.key``) as already seen. The generation schedule does not depend on ``n_trials``, so a
study's first N trials are the same whatever budget it was started with.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from mote_optuna.compat import fast_non_domination_rank, study_id, study_storage
from mote_optuna.keys import ARCH_KEY_ATTR, META_KEY
from mote_optuna.spaces import InvalidArchitecture, SearchSpace, get_space

MAX_RANDOM_TRIES = 1000


class MoteNasSampler(BaseSampler):
    """MOTE-NAS evolutionary search: growing generations of near mutants of the best cells."""

    def __init__(
        self,
        *,
        seed: int | None = None,
        population_size: int = 10,
        batch_growth: int = 10,
        growth_every: int = 10,
        parent_fraction: float = 0.1,
        max_changes: int = 1,
        objective: str | int | None = None,
        parents: Literal["mote", "front"] = "mote",
        parent_order: Literal["uniform", "rank"] = "uniform",
    ) -> None:
        if population_size < 1 or batch_growth < 0 or growth_every < 1:
            raise ValueError("population_size and growth_every must be >= 1, batch_growth >= 0")
        if not 0.0 < parent_fraction <= 1.0:
            raise ValueError(f"parent_fraction must be in (0, 1], got {parent_fraction}")
        if max_changes not in (1, 2):
            raise ValueError(f"max_changes must be 1 or 2, got {max_changes}")
        if parents not in ("mote", "front"):
            raise ValueError(f"parents must be 'mote' or 'front', got {parents!r}")
        if parent_order not in ("uniform", "rank"):
            raise ValueError(f"parent_order must be 'uniform' or 'rank', got {parent_order!r}")
        self.population_size = population_size
        self.batch_growth = batch_growth
        self.growth_every = growth_every
        self.parent_fraction = parent_fraction
        self.max_changes = max_changes
        self.objective = objective
        self.parents = parents
        self.parent_order = parent_order
        self._rng = np.random.RandomState(seed)
        self._random = RandomSampler(seed=seed)
        self._intersection = IntersectionSearchSpace()
        self._spaces: dict[str, SearchSpace | None] = {}

    # ----------------------------------------------------------------------------------------
    # BaseSampler

    def reseed_rng(self) -> None:
        self._rng.seed()
        self._random.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        space = self._space(study)
        dists = space.distributions() if space is not None else self._intersection.calculate(study)
        return {
            name: dist
            for name, dist in dists.items()
            if isinstance(dist, CategoricalDistribution | IntDistribution) and not dist.single()
        }

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        space = self._space(study)
        trials = study.get_trials(deepcopy=False)
        seen = {self._key(space, t.params, t) for t in trials if t.number != trial.number}
        generation, start = self.generation_of(trial.number)
        if generation > 0:
            pool = [
                t
                for t in trials
                if t.state == TrialState.COMPLETE and t.number < start and t.values is not None
            ]
            ranked = self.rank(study, pool, space)
            n_parents = max(1, round(self.parent_fraction * len(ranked)))
            if self.parent_order == "rank":  # exhaust the best parent's mutants first
                for parent in ranked:
                    candidates = self._mutants([parent], search_space, space, seen)
                    if candidates:
                        return candidates[self._rng.randint(len(candidates))]
            for end in itertools.chain([n_parents], range(n_parents + 1, len(ranked) + 1)):
                candidates = self._mutants(ranked[:end], search_space, space, seen)
                if candidates:
                    return candidates[self._rng.randint(len(candidates))]
        return self._random_params(search_space, space, seen)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    # ----------------------------------------------------------------------------------------
    # the algorithm

    def generation_size(self, generation: int) -> int:
        return self.population_size + self.batch_growth * (generation // self.growth_every)

    def generation_of(self, number: int) -> tuple[int, int]:
        """(generation, number of its first trial) of trial ``number``."""
        generation, start = 0, 0
        while number >= start + self.generation_size(generation):
            start += self.generation_size(generation)
            generation += 1
        return generation, start

    def objective_index(self, study: Study) -> int:
        if isinstance(self.objective, int):
            return self.objective
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            names = study.metric_names
        wanted = self.objective or "mote"
        if names and wanted in names:
            return names.index(wanted)
        if self.objective is not None:
            raise ValueError(f"objective {self.objective!r} is not one of the study's {names}")
        return 0

    def rank(
        self, study: Study, pool: Sequence[FrozenTrial], space: SearchSpace | None
    ) -> list[dict[str, Any]]:
        """Distinct architectures of ``pool``, best first (earlier trials win exact ties)."""
        index = self.objective_index(study)
        sign = [-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in study.directions]
        by_key: dict[Any, FrozenTrial] = {}
        for t in sorted(pool, key=lambda t: t.number):
            by_key.setdefault(self._key(space, t.params, t), t)
        unique = list(by_key.values())
        if not unique:
            return []
        losses = np.array([[s * v for s, v in zip(sign, t.values, strict=True)] for t in unique])
        order_key: list[tuple[float, ...]] = [
            (float(loss[index]), float(t.number)) for loss, t in zip(losses, unique, strict=True)
        ]
        if self.parents == "front" and losses.shape[1] > 1:
            ranks = fast_non_domination_rank(losses)
            order_key = [(float(r), *k) for r, k in zip(ranks, order_key, strict=True)]
        order = sorted(range(len(unique)), key=lambda i: order_key[i])
        return [dict(unique[i].params) for i in order]

    def _mutants(
        self,
        parents: list[dict[str, Any]],
        search_space: dict[str, BaseDistribution],
        space: SearchSpace | None,
        seen: set[Any],
    ) -> list[dict[str, Any]]:
        found: dict[Any, dict[str, Any]] = {}
        frontier = [p for p in parents if set(search_space) <= set(p)]
        for _ in range(self.max_changes):
            step: list[dict[str, Any]] = []
            for params in frontier:
                for name, dist in search_space.items():
                    for value in _alternatives(dist, params[name]):
                        child = {**params, name: value}
                        key = self._key(space, child)
                        if key is None or key in seen or key in found:
                            continue
                        found[key] = child
                        step.append(child)
            frontier = step
        return [found[k] for k in sorted(found, key=repr)]

    def _random_params(
        self,
        search_space: dict[str, BaseDistribution],
        space: SearchSpace | None,
        seen: set[Any],
    ) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for _ in range(MAX_RANDOM_TRIES):
            params = {name: _draw(dist, self._rng) for name, dist in search_space.items()}
            key = self._key(space, params)
            if key is not None and key not in seen:
                return params
        return params  # the space is (nearly) exhausted: repeat a cell

    # ----------------------------------------------------------------------------------------
    # helpers

    def _space(self, study: Study) -> SearchSpace | None:
        sid = f"{id(study_storage(study))}:{study_id(study)}"
        if sid not in self._spaces:
            meta = study.user_attrs.get(META_KEY)
            name = meta.get("space") if isinstance(meta, dict) else None
            # a study opened without mote_optuna has no space: the sampler works on its params
            self._spaces[sid] = get_space(name) if name else None
        return self._spaces[sid]

    @staticmethod
    def _key(
        space: SearchSpace | None, params: dict[str, Any], trial: FrozenTrial | None = None
    ) -> Any:
        """Equivalence key of a cell; None for a cell the space rejects."""
        if trial is not None and ARCH_KEY_ATTR in trial.user_attrs:
            return trial.user_attrs[ARCH_KEY_ATTR]
        if space is None:
            return tuple(sorted(params.items()))
        try:
            return space.key(space.from_params(params))
        except InvalidArchitecture:
            return None


def _alternatives(dist: BaseDistribution, value: Any) -> list[Any]:
    """Values one parameter step away: another choice, or the neighbouring integer steps."""
    if isinstance(dist, CategoricalDistribution):
        return [c for c in dist.choices if c != value]
    if isinstance(dist, IntDistribution):
        return [v for v in (value - dist.step, value + dist.step) if dist.low <= v <= dist.high]
    return []


def _draw(dist: BaseDistribution, rng: np.random.RandomState) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[rng.randint(len(dist.choices))]
    if isinstance(dist, IntDistribution):
        steps = (dist.high - dist.low) // dist.step
        return dist.low + dist.step * int(rng.randint(steps + 1))
    raise TypeError(f"unsupported distribution {dist!r}")
