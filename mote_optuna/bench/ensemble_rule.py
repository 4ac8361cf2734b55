"""``bench ensemble-rule``: choose the ensemble's rule on the tuning samples of several spaces.

Reads the outputs of ``bench correlation --seed 0`` runs (``DIR/cells.jsonl`` and
``DIR/correlation.json``), one per space, and scores every candidate rule on each: the subsets of
``CANDIDATES`` with at least two terms, each with every term kept or with the terms kept by
``agreeing`` on the reference population at each of ``AGREEMENT_THRESHOLDS``, and, when the
subset has a size term (``SIZE_TERMS``), that term counted with each weight of ``SIZE_WEIGHTS``.
A rule's values come from the architectures' raw terms and the reference population alone; the
labels are read only to measure τ here. Only seed-0 runs are accepted: the other seeds are held
out.

The criterion is the one the project's goals set: a score must tell more than the size it could
have counted. A rule's gain on a space is its Kendall τ minus the better of ``params`` and
``flops`` there; the chosen rule maximises the mean gain over the spaces (``--criterion
mean-gain``, each space counts once) or the smallest (``min-gain``; it degenerates when one space
has no rule above its size), then the mean τ. The chosen rule is checked against
``EnsembleRule`` (the study's code path), and the table is written as JSON and markdown.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import log_ndtr

from mote_optuna.bench.correlation import sample_cells
from mote_optuna.bench.correlation.cells import reference_population
from mote_optuna.bench.manifest import MANIFEST_KEY, manifest
from mote_optuna.errors import UserError
from mote_optuna.estimators.ensemble import (
    CANDIDATES,
    RULE,
    SIZE_TERMS,
    Component,
    EnsembleRule,
    agreeing,
    fit_reference,
    z_scores,
)
from mote_optuna.spaces import get_space
from mote_optuna.spaces.base import truth_of

HELP = "choose the ensemble's rule on the seed-0 samples of several spaces together"
AGREEMENT_THRESHOLDS: tuple[float | None, ...] = (None, 0.0, 0.1, 0.2, 0.3)
SIZE_WEIGHTS = (1.0, 2.0, 4.0, 8.0, 16.0)  # powers of two, fixed before the search
TUNING_SEED = 0
RULES_WRITTEN = 200  # the best rules by the criterion written to the JSON (of about 20,000)
CRITERIA = {"mean-gain": "mean_gain_over_size", "min-gain": "min_gain_over_size"}


@dataclass
class Sample:
    """One space's tuning sample: raw terms of the sampled and reference architectures."""

    space: str
    records: list[dict[str, Any]]
    reference: list[dict[str, Any]]
    accuracy: np.ndarray
    size_tau: dict[str, float]  # the free baselines' τ: params, flops

    def z(self) -> dict[str, np.ndarray]:
        """Each candidate term's z-score on the reference scale (independent of the subset);
        NaN for a term the reference cannot scale (too few finite values)."""
        out = {}
        for c in CANDIDATES:
            try:
                fitted = fit_reference(self.reference, (c,))
            except ValueError:
                out[c.name] = np.full(len(self.records), np.nan)
                continue
            out[c.name] = np.array([z_scores(r, fitted, (c,))[c.name] for r in self.records])
        return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, help="bench correlation --seed 0 folders")
    parser.add_argument("--out", type=Path, help="write DIR/ensemble_rule.json and .md")
    parser.add_argument(
        "--truth-dir",
        type=Path,
        help="look the runs' truth CSVs up here by file name (runs made on another machine)",
    )
    parser.add_argument("--top", type=int, default=15, help="rules printed (default 15)")
    parser.add_argument(
        "--criterion",
        choices=sorted(CRITERIA),
        default="mean-gain",
        help="gain in τ over the size baselines to maximise: mean or smallest over the spaces",
    )


def load_sample(folder: Path, truth_dir: Path | None = None) -> Sample:
    result_path = folder / "correlation.json"
    if not result_path.is_file():
        raise UserError(f"{folder}: no correlation.json; run bench correlation --out {folder}")
    args = json.loads(result_path.read_text())["args"]
    if int(args["seed"]) != TUNING_SEED:
        raise UserError(f"{folder}: seed {args['seed']}; tune on seed {TUNING_SEED} only")
    space = get_space(args["space"])
    truth_path = Path(args["truth"])
    if truth_dir is not None:
        truth_path = truth_dir / truth_path.name
    cells = sample_cells(truth_of(space).read_truth(truth_path), int(args["n"]), 0)
    cache_path = folder / "cells.jsonl"
    if not cache_path.is_file():
        raise UserError(f"{folder}: no cells.jsonl (the raw terms); copy the run's whole folder")
    lines = cache_path.read_text().splitlines()[1:]
    cache = {r["arch"]: r for r in map(json.loads, lines) if "mote" in r}
    population = reference_population(
        args["space"], int(args["reference_seed"]), int(args["reference"])
    )
    reference = [cache[a] for a in population if a in cache]
    scored = cells[cells.arch_str.isin(cache)]
    target = next(iter(truth_of(space).truth_targets.values()))
    accuracy = scored[target].to_numpy(dtype=float)
    records = [cache[a] for a in scored.arch_str]
    size_tau = {
        name: float(stats.kendalltau([r[name] for r in records], accuracy).statistic)
        for name in ("params", "flops")
    }
    return Sample(space.name, records, reference, accuracy, size_tau)


def candidate_rules() -> list[list[EnsembleRule]]:
    """Every candidate rule, grouped: the rules of a group differ only in the size weight, so
    they keep the same terms on a warm-up."""
    groups: list[list[EnsembleRule]] = []
    for size in range(2, len(CANDIDATES) + 1):
        for pool in itertools.combinations(CANDIDATES, size):
            weights = SIZE_WEIGHTS if SIZE_TERMS & {c.name for c in pool} else (1.0,)
            for agreement in AGREEMENT_THRESHOLDS:
                groups.append([EnsembleRule(_weighted(pool, w), agreement) for w in weights])
    return groups


def _weighted(pool: tuple[Component, ...], weight: float) -> tuple[Component, ...]:
    return tuple(replace(c, weight=weight) if c.name in SIZE_TERMS else c for c in pool)


def kept(rule: EnsembleRule, sample: Sample) -> tuple[Component, ...]:
    if rule.agreement is None:
        return rule.pool
    return agreeing(sample.reference, rule.pool, rule.agreement)


def tau_of(kept_terms: tuple[Component, ...], sample: Sample, z: dict[str, np.ndarray]) -> float:
    """τ of the value of the kept terms; NaN when one of them the reference cannot scale (a
    study would refuse it at calibration)."""
    values = sum(c.weight * log_ndtr(z[c.name]) for c in kept_terms)
    if not np.all(np.isfinite(values)):
        return math.nan
    return float(stats.kendalltau(values, sample.accuracy).statistic)


def name_of(rule: EnsembleRule) -> str:
    terms = "+".join(c.name if c.weight == 1 else f"{c.weight:g}×{c.name}" for c in rule.pool)
    return terms if rule.agreement is None else f"agree>={rule.agreement:g}({terms})"


def evaluate(samples: list[Sample], criterion: str) -> list[dict[str, Any]]:
    zs = [s.z() for s in samples]
    rows: list[dict[str, Any]] = []
    for group in candidate_rules():
        # the terms kept on each warm-up do not depend on the weights: found once per group
        names = [{c.name for c in kept(group[0], s)} for s in samples]
        for rule in group:
            taus = {
                s.space: tau_of(tuple(c for c in rule.pool if c.name in kept_names), s, z)
                for s, z, kept_names in zip(samples, zs, names, strict=True)
            }
            gains = [taus[s.space] - max(s.size_tau.values()) for s in samples]
            if any(math.isnan(g) for g in gains):
                continue
            rows.append(
                {
                    "rule": name_of(rule),
                    "describe": rule.describe(),
                    "tau": taus,
                    "mean_gain_over_size": float(np.mean(gains)),
                    "min_gain_over_size": min(gains),
                    "mean_tau": float(np.mean(list(taus.values()))),
                }
            )
    key = CRITERIA[criterion]
    rows.sort(key=lambda r: (-float(r[key]), -float(r["mean_tau"]), str(r["rule"])))
    return rows


def check_study_path(rule_row: dict[str, Any], samples: list[Sample]) -> None:
    """The winner's τ through ``EnsembleRule.fit``/``value``, the study's code, must agree."""
    d = rule_row["describe"]
    rule = EnsembleRule(tuple(Component(**c) for c in d["pool"]), d["agreement"])
    for s in samples:
        fitted = rule.fit(s.reference)
        values = [rule.value(r, fitted) for r in s.records]
        tau = float(stats.kendalltau(values, s.accuracy).statistic)
        if not math.isclose(tau, rule_row["tau"][s.space], abs_tol=1e-9):
            raise RuntimeError(f"{s.space}: τ {tau} through EnsembleRule, {rule_row['tau']}")


def _line(row: dict[str, Any], spaces: list[str]) -> str:
    taus = " | ".join(f"{row['tau'][s]:.3f}" for s in spaces)
    gains = f"{row['mean_gain_over_size']:+.3f} | {row['min_gain_over_size']:+.3f}"
    return f"| {row['rule']} | {taus} | {gains} | {row['mean_tau']:.3f} |"


def render(record: dict[str, Any]) -> str:
    """``ensemble_rule.md`` from the record: the samples, the size baseline, the current rule and
    the best ``top`` rules by the criterion, and the one chosen."""
    samples = record["samples"]
    spaces = [s["space"] for s in samples]
    head = " | ".join(f"τ {s}" for s in spaces)
    size = " | ".join(f"{max(record['size_tau'][s].values()):.3f}" for s in spaces)
    lines = [
        f"{record['n_rules']} rules on the seed-0 samples of "
        + ", ".join(f"{s['space']} ({s['n']}, reference {s['reference']})" for s in samples),
        "",
        f"| rule | {head} | mean gain over size | smallest gain | mean τ |",
        "|---|" + "---|" * (len(spaces) + 3),
        f"| size: max(params, flops) | {size} | | | |",
    ]
    current = record["current"]
    if current is not None:
        lines.append(_line({**current, "rule": f"now: {current['rule']}"}, spaces))
    lines += [_line(row, spaces) for row in record["rules"][: record["top"]]]
    lines += ["", f"chosen by {record['criterion']}: {record['chosen']['rule']}"]
    if "ceiling" in record:
        lines += [
            "",
            "the family's ceiling: the best rule for one space alone, by that space's labels",
            "",
            "| space | size | best rule | τ | best with equal weights | τ |",
            "|---|---|---|---|---|---|",
        ]
        for space in spaces:
            best, equal = record["ceiling"][space]["any"], record["ceiling"][space]["equal"]
            lines.append(
                f"| {space} | {max(record['size_tau'][space].values()):.3f} "
                f"| {best['rule']} | {best['tau'][space]:.3f} "
                f"| {equal['rule']} | {equal['tau'][space]:.3f} |"
            )
    return "\n".join(lines)


def ceiling(rows: list[dict[str, Any]], spaces: list[str]) -> dict[str, dict[str, Any]]:
    """Per space, the rule with the largest τ there, of all rules and of those with every term
    counted once: what the family can reach on that space when its own labels choose."""
    equal = [r for r in rows if all(c.get("weight", 1.0) == 1.0 for c in r["describe"]["pool"])]
    return {
        space: {
            "any": max(rows, key=lambda r: r["tau"][space]),
            "equal": max(equal, key=lambda r: r["tau"][space]),
        }
        for space in spaces
    }


def handler(args: argparse.Namespace) -> int:
    samples = [load_sample(folder, args.truth_dir) for folder in args.runs]
    spaces = [s.space for s in samples]
    if len(set(spaces)) != len(spaces):
        raise UserError(f"one seed-0 run per space, got {', '.join(spaces)}")
    rows = evaluate(samples, args.criterion)
    check_study_path(rows[0], samples)
    record = {
        "criterion": args.criterion,
        "chosen": rows[0],
        "current": next((r for r in rows if r["describe"] == RULE.describe()), None),
        "samples": [
            {"space": s.space, "n": len(s.records), "reference": len(s.reference)} for s in samples
        ],
        "size_tau": {s.space: s.size_tau for s in samples},
        "n_rules": len(rows),
        "top": args.top,
        "rules": rows[: max(RULES_WRITTEN, args.top)],
        "ceiling": ceiling(rows, spaces),
        MANIFEST_KEY: manifest(args.argv),
    }
    text = render(record)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / "ensemble_rule.json"
        path.write_text(json.dumps(record, indent=1))
        path.with_suffix(".md").write_text(text + "\n")
        print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


ENTRY = (HELP, add_arguments, handler)
