"""The candidate rules of ``bench ensemble-rule``: a size weight applies to the size terms only."""

from __future__ import annotations

from mote_optuna.bench.ensemble_rule import (
    AGREEMENT_THRESHOLDS,
    SIZE_WEIGHTS,
    candidate_rules,
    name_of,
)
from mote_optuna.estimators.ensemble import CANDIDATES, RULE, SIZE_TERMS


def test_the_size_weights_apply_to_the_size_terms_only() -> None:
    groups = candidate_rules()
    rules = [rule for group in groups for rule in group]
    assert len({name_of(rule) for rule in rules}) == len(rules)  # no rule twice
    for group in groups:
        first = group[0]
        # a group's rules keep the same terms on a warm-up: same names, same filter
        assert all(
            [c.name for c in r.pool] == [c.name for c in first.pool]
            and r.agreement == first.agreement
            for r in group
        )
        sized = any(c.name in SIZE_TERMS for c in first.pool)
        weights = []
        for rule in group:
            assert all(c.weight == 1.0 for c in rule.pool if c.name not in SIZE_TERMS)
            size_weights = {c.weight for c in rule.pool if c.name in SIZE_TERMS} or {1.0}
            assert len(size_weights) == 1  # params and FLOPs alike
            weights += size_weights
        assert weights == (list(SIZE_WEIGHTS) if sized else [1.0])
    # every subset of at least two terms, at every threshold
    pools = {tuple(c.name for c in g[0].pool) for g in groups}
    n = len(CANDIDATES)
    assert len(pools) == 2**n - 1 - n
    assert len(groups) == len(pools) * len(AGREEMENT_THRESHOLDS)
    assert any(name_of(r) == name_of(RULE) for r in rules)  # the chosen rule is a candidate
