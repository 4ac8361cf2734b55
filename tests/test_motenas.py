"""The MOTE-NAS sampler: valid cells, its distance rule, direction, and the other MO samplers."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable

import optuna
import pytest
from optuna.trial import TrialState

from mote_optuna.config import SamplerConfig
from mote_optuna.motenas import MoteNasSampler
from mote_optuna.samplers import make_sampler
from mote_optuna.spaces import suggest
from mote_optuna.spaces.nb201 import OPS, NB201Space

SPACE = NB201Space()


def _score(arch: tuple[str, ...]) -> float:
    bonus = 0.1 * (arch[0] == OPS[2])
    return 2.0 * arch.count("nor_conv_3x3") + arch.count("nor_conv_1x1") + bonus


def _study(sampler: optuna.samplers.BaseSampler, directions: list[str]) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(directions=directions, sampler=sampler)
    study.set_user_attr("mote_optuna", {"space": "nb201"})  # as study.open_study writes it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["flops", "mote", "params"][: len(directions)])
    return study


def _objective() -> Callable[[optuna.Trial], tuple[float, ...]]:
    def objective(trial: optuna.Trial) -> tuple[float, ...]:
        arch = suggest(SPACE, trial)
        trial.set_user_attr("arch_key", SPACE.key(arch))
        n = sum(op != "none" for op in arch)
        return (float(n), _score(arch), float(arch.count("nor_conv_3x3")))

    return objective


def _changes(a: dict, b: dict) -> int:
    return sum(a[k] != b[k] for k in a)


@pytest.mark.parametrize(("max_changes", "parent_fraction"), [(1, 0.1), (2, 0.1), (1, 0.01)])
def test_valid_cells_and_distance_rule(max_changes: int, parent_fraction: float) -> None:
    # 0.01: one parent, whose 24 one-edge mutants run out, so the parents extend down the ranking
    sampler = MoteNasSampler(seed=1, max_changes=max_changes, parent_fraction=parent_fraction)
    study = _study(sampler, ["minimize", "maximize", "minimize"])
    study.optimize(_objective(), n_trials=120)  # long enough to exhaust the best's mutants
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 120
    keys = [t.user_attrs["arch_key"] for t in trials]
    assert len(set(keys)) == len(keys), "never proposes a cell equivalent to a seen one"
    for t in trials:
        assert set(t.params) == {f"edge_{i}" for i in range(6)}
        assert all(t.params[f"edge_{i}"] in OPS for i in range(6))
        SPACE.from_params(t.params)  # valid
    for t in trials[10:]:  # generations >= 1: within max_changes of one of the parents
        generation, start = sampler.generation_of(t.number)
        assert generation >= 1
        pool = [p for p in trials if p.number < start]
        ranked = sampler.rank(study, pool, SPACE)
        n_parents = max(1, round(sampler.parent_fraction * len(ranked)))
        nearest = min(_changes(t.params, p) for p in ranked)
        assert 1 <= nearest <= max_changes
        if min(_changes(t.params, p) for p in ranked[:n_parents]) > max_changes:
            # parents are extended down the ranking only when their mutants are exhausted
            seen = {p.user_attrs["arch_key"] for p in trials if p.number < t.number}
            unseen = set().union(*(_mutant_keys(p, max_changes) for p in ranked[:n_parents]))
            assert unseen <= seen, f"trial {t.number} left parents with unseen mutants"


def _mutant_keys(parent: dict, max_changes: int) -> set[str]:
    """Keys of the valid cells within ``max_changes`` edge changes of ``parent``."""
    keys = set()
    for k in range(1, max_changes + 1):
        for names in itertools.combinations(sorted(parent), k):
            for ops in itertools.product(OPS, repeat=k):
                if any(parent[n] == op for n, op in zip(names, ops, strict=True)):
                    continue
                mutant = {**parent, **dict(zip(names, ops, strict=True))}
                keys.add(SPACE.key(SPACE.from_params(mutant)))
    return keys


def test_ranks_by_mote_objective_and_direction() -> None:
    best_up, best_down = [], []
    for sign, store in ((1.0, best_up), (-1.0, best_down)):
        direction = "maximize" if sign > 0 else "minimize"
        study = _study(MoteNasSampler(seed=0), ["minimize", direction, "minimize"])
        study.optimize(_objective(), n_trials=80)  # the same score, the other direction
        store.extend(_score(SPACE.from_params(t.params)) for t in study.trials)
    # searching for high scores finds higher ones than searching for low scores, and vice versa
    assert max(best_up) > max(best_down)
    assert min(best_down) < min(best_up)
    assert max(best_up) >= 11.0  # 6 x conv3x3 scores 12: the search climbs near the top


def test_generation_schedule_and_prefix_independence() -> None:
    sampler = MoteNasSampler(seed=0)
    sizes = [sampler.generation_size(g) for g in range(12)]
    assert sizes[:10] == [10] * 10 and sizes[10:] == [20, 20]
    assert sampler.generation_of(0) == (0, 0)
    assert sampler.generation_of(10) == (1, 10)
    assert sampler.generation_of(100) == (10, 100)
    assert sampler.generation_of(120) == (11, 120)
    a = _study(MoteNasSampler(seed=3), ["maximize"])
    b = _study(MoteNasSampler(seed=3), ["maximize"])

    def single(trial: optuna.Trial) -> float:
        return _score(suggest(SPACE, trial))

    a.optimize(single, n_trials=25)
    b.optimize(single, n_trials=40)
    assert [t.params for t in a.trials] == [t.params for t in b.trials[:25]]


def test_works_without_space_metadata() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", sampler=MoteNasSampler(seed=0))
    study.optimize(lambda t: _score(suggest(SPACE, t)), n_trials=30)
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params)) == len(params)


def test_make_sampler_builds_it_and_checks_options() -> None:
    sampler = make_sampler(SamplerConfig(name="motenas", seed=0, options={"parents": "front"}))
    assert isinstance(sampler, MoteNasSampler) and sampler.parents == "front"
    with pytest.raises(Exception, match="parent_fraction"):
        make_sampler(SamplerConfig(name="motenas", options={"parent_fraction": 2.0}))


@pytest.mark.parametrize("name", ["nsga3", "gp", "motenas"])
def test_samplers_run_on_three_objective_study(name: str) -> None:
    sampler = make_sampler(SamplerConfig(name=name, seed=0))
    study = _study(sampler, ["minimize", "maximize", "minimize"])
    study.optimize(_objective(), n_trials=12)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 12
    assert study.best_trials
