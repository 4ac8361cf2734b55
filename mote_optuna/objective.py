"""The one place where a space, an estimator and Optuna meet: trial -> arch -> values + attrs."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import optuna
from optuna.trial import TrialState

from mote_optuna.artifacts import upload_arch_artifacts
from mote_optuna.config import StudyConfig
from mote_optuna.cost import Cost, measure
from mote_optuna.estimators.contract import Estimator
from mote_optuna.estimators.mote import Diverged
from mote_optuna.estimators.names import SCORE_NAMES
from mote_optuna.keys import (
    ARCH_ATTR,
    ARCH_KEY_ATTR,
    CACHED_FROM_ATTR,
    FAIL_REASON_ATTR,
    FLOPS_ATTR,
    LATENCY_ATTR,
    PARAMS_ATTR,
    TRIAL_OWN_ATTRS,
    TRIAL_SECONDS_ATTR,
)
from mote_optuna.latency import LatencySource
from mote_optuna.local_pool import ScoringProcessDied
from mote_optuna.shared_study import SharedStudy
from mote_optuna.spaces import InvalidArchitecture, SearchSpace, suggest
from mote_optuna.spaces.base import HasAnalyticCost


class Objective:
    """Scores one trial: its objectives (mote or ensemble, flops, params) in the study's order.

    - invalid architectures and candidates over a constraint end PRUNED before any training;
    - an architecture equivalent to one already COMPLETE in the study reuses its scores
      (``cached_from``), looked up through the storage so that every worker shares the cache;
      its FLOPs, params and latency are its own full network's (a dead branch is still built);
    - a training run that diverges, or whose pool process dies (local_pool.py), ends FAIL with
      ``fail_reason``; the study goes on.

    With ``shared`` given (``run_study`` gives it; shared_study.py), the objective cooperates
    with other workers on the same storage: the whole trial runs under a heartbeat (journal) and
    first claims a place in the study-wide budget (exactly ``n_trials`` COMPLETE trials: a trial
    the in-flight ones may make surplus waits; one that finds the budget full ends PRUNED, "study
    budget reached ... by other workers", and stops its worker). When no COMPLETE equivalent
    exists but one is RUNNING with a lower number (or has claimed training), the trial waits for
    it (polling, bounded by ``workers.wait_limit_s``) and reuses its values (``cached_from``), or
    trains itself if that one ended PRUNED or FAIL. So no two workers train equivalent
    architectures (SharedStudy.wait_for_twin has the argument).
    """

    def __init__(
        self,
        config: StudyConfig,
        space: SearchSpace,
        estimator: Estimator,
        *,
        shared: SharedStudy | None = None,
        latency: LatencySource | None = None,
    ) -> None:
        self.config = config
        self.space = space
        self.estimator = estimator
        self.shared = shared
        self.latency = latency  # when the study has a latency: section
        self._costs: dict[str, Cost] = {}

    def __call__(self, trial: optuna.Trial) -> list[float]:
        try:
            if self.shared is None:
                return self._score(trial)
            with self.shared.running(trial):  # heartbeat, budget claim
                return self._score(trial)
        except KeyboardInterrupt:
            trial.set_user_attr(FAIL_REASON_ATTR, "interrupted (Ctrl-C); rerun to continue")
            raise

    def _score(self, trial: optuna.Trial) -> list[float]:
        start = time.perf_counter()
        try:
            arch = suggest(self.space, trial)
        except InvalidArchitecture as exc:
            trial.set_user_attr(FAIL_REASON_ATTR, f"invalid architecture: {exc}")
            raise optuna.TrialPruned(f"invalid architecture: {exc}") from None
        key = self.space.key(arch)
        trial.set_user_attr(ARCH_ATTR, self.space.to_str(arch))
        trial.set_user_attr(ARCH_KEY_ATTR, key)
        upload_arch_artifacts(trial, self.space, arch, self.config)  # while RUNNING
        cost = self.cost(arch)
        trial.set_user_attr(FLOPS_ATTR, cost.flops)
        trial.set_user_attr(PARAMS_ATTR, cost.params)
        if cost.latency is not None:
            trial.set_user_attr(LATENCY_ATTR, cost.latency)
        self._check_constraints(trial, cost)

        source = find_evaluated(trial.study, key, exclude=trial.number)
        if source is None and self.shared is not None:
            source = self.shared.wait_for_twin(trial, key)  # an equivalent one in flight
        if source is not None:
            attrs = {k: v for k, v in source.user_attrs.items() if k not in TRIAL_OWN_ATTRS}
            attrs[CACHED_FROM_ATTR] = source.user_attrs.get(CACHED_FROM_ATTR, source.number)
            scores = {name: float(attrs[name]) for name in SCORE_NAMES if name in attrs}
        else:
            try:
                evaluation = self.estimator.evaluate(self.space, arch)
            except Diverged as exc:
                trial.set_user_attr(FAIL_REASON_ATTR, f"training diverged: {exc}")
                return [math.nan] * len(self.config.objectives)
            except ScoringProcessDied as exc:  # local_pool.py: this trial only, the study goes on
                trial.set_user_attr(FAIL_REASON_ATTR, str(exc))
                return [math.nan] * len(self.config.objectives)
            except optuna.TrialPruned as exc:  # e.g. a table estimator skipping a missing key
                trial.set_user_attr(FAIL_REASON_ATTR, str(exc))
                raise
            scores = evaluation.values
            attrs = {**evaluation.attrs, **scores}
        for name, value in attrs.items():
            trial.set_user_attr(name, value)
        trial.set_user_attr(TRIAL_SECONDS_ATTR, round(time.perf_counter() - start, 4))
        metrics = {**scores, **cost.metrics()}
        return [metrics[name] for name in self.config.objectives]

    def cost(self, arch: Any) -> Cost:
        """FLOPs, params and latency of ``arch``'s full network, cached by its string, not its
        canonical key: equivalent cells still differ in the full network (a dead branch is
        computed and counted), and a device measured each one (latency/published.py)."""
        key = self.space.to_str(arch)
        if key not in self._costs:
            known = getattr(self.estimator, "known_cost", None)  # e.g. a table's columns
            cost = known(self.space, arch) if known is not None else None
            if cost is None and isinstance(self.space, HasAnalyticCost):
                cost = self.space.analytic_cost(arch)
            if cost is None:
                spec = self.space.full_net
                cost = measure(self.space.build_full(arch), spec.resolution)
            if self.latency is not None:
                cost = dataclasses.replace(cost, latency=self.latency(arch))
            self._costs[key] = cost
        return self._costs[key]

    def _check_constraints(self, trial: optuna.Trial, cost: Cost) -> None:
        usage = cost.usage()
        for name, margin in self.config.constraints.margins(usage).items():
            trial.set_constraint(name, margin)
        over = self.config.constraints.exceeded(usage)
        if over:
            reason = "over budget: " + ", ".join(over)
            trial.set_user_attr(FAIL_REASON_ATTR, reason)
            raise optuna.TrialPruned(reason)


def find_evaluated(
    study: optuna.Study, key: str, *, exclude: int | None = None
) -> optuna.trial.FrozenTrial | None:
    """The first COMPLETE trial of ``study`` whose architecture has canonical key ``key``."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if trial.number != exclude and trial.user_attrs.get(ARCH_KEY_ATTR) == key:
            return trial
    return None
