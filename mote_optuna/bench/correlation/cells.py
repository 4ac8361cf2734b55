"""``bench correlation``, the scoring: MOTE and the baselines of each cell (``Scorer``), kept in
a resumable cache (``DIR/cells.jsonl``, one JSON line per cell, refused when the settings
differ), the ensemble's reference population, and the run-to-run spread of MOTE. What a run
scores with is a ``Run``, resolved from the command line by the bench's handler."""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats
from tqdm import tqdm

from mote_optuna.cost import measure
from mote_optuna.data import DatasetConfig
from mote_optuna.errors import UserError
from mote_optuna.estimators import proxies
from mote_optuna.estimators.boxcox import fit_boxcox
from mote_optuna.estimators.contract import resolve_device
from mote_optuna.estimators.mote import (
    Diverged,
    MoteEstimator,
    MoteSettings,
    code_terms,
    combine_code,
)
from mote_optuna.estimators.scorer import build_scoring
from mote_optuna.estimators.settings import EstimatorConfig
from mote_optuna.estimators.zero_cost import NASWOT_BATCH
from mote_optuna.spaces import get_space, published_boxcox
from mote_optuna.spaces.base import truth_of
from mote_optuna.spaces.sampling import distinct_samples

# Bump when a zero-cost term changes: a cache of an older version gets its zero-cost terms
# recomputed (``refresh_zero_cost``; MOTE's terms, which do not depend on them, are kept).
# 3: AZ-NAS's expressivity clamps the covariance's eigenvalues at 0 (az_nas.spectral_entropy).
ZERO_COST_VERSION = 3


@dataclass(frozen=True)
class Run:
    """What one ``bench correlation`` run scores the cells with."""

    space: str  # a registered space or an import path module:Class
    estimator: EstimatorConfig
    dataset: DatasetConfig
    reference: int  # the ensemble's reference population: its size and seed
    reference_seed: int
    device: str
    memory_format: str  # auto (as a study decides), nchw or channels_last
    baseline_batch: int  # images of the zero-cost minibatch
    baselines: bool  # SynFlow and grad-norm of the full network


class Scorer:
    """MOTE and the baselines for one cell on one device."""

    def __init__(self, run: Run) -> None:
        self.space = get_space(run.space)
        self.settings = MoteSettings.from_config(run.estimator)
        self.device = resolve_device(run.device)
        self.channels_last = _channels_last(run)
        scoring = build_scoring(
            run.estimator,
            run.dataset,
            self.space,
            run.device,
            published_boxcox(self.space),  # None: MOTE is combined in stats, on the reference
            channels_last=self.channels_last,
        )
        self.estimator = scoring.mote
        self.zero_cost = scoring.zero_cost(run.baseline_batch)
        self.batch = self.zero_cost.batch
        self.baselines = run.baselines

    def _sync(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def mote(self, arch_str: str, seed: int | None = None) -> dict[str, Any]:
        arch = self.space.from_str(arch_str)
        estimator = self.estimator
        if seed is not None and seed != self.settings.seed:
            settings = replace(self.settings, seed=seed)
            estimator = MoteEstimator(
                settings,
                self.estimator.data,
                self.estimator.constants,
                channels_last=self.estimator.channels_last,
            )
        start, cpu_start = self._sync(), time.process_time()
        model = estimator.proxy(self.space, arch)
        try:
            result = estimator.score(model, combine=estimator.constants is not None)
        except Diverged as exc:
            return {"arch": arch_str, "diverged": str(exc), "seconds": self._sync() - start}
        seconds = self._sync() - start
        return {
            "arch": arch_str,
            "cpu_seconds": time.process_time() - cpu_start,
            "mote": result.mote,
            "landscape": result.landscape,
            "speed": result.speed,
            "train_losses": result.train_losses,
            "landscape_losses": result.landscape_losses,
            "seconds": seconds,
            **result.extra,
        }

    def zero_cost_terms(self, arch: Any) -> dict[str, float]:
        """The ensemble's zero-cost terms of ``arch`` (``ZeroCostTerms``) and their seconds."""
        start = self._sync()
        out = self.zero_cost(arch)
        out["zero_cost_seconds"] = self._sync() - start
        return out

    def baseline(self, arch_str: str, known: dict[str, float] | None = None) -> dict[str, float]:
        """Params and FLOPs of the full network (``known``: the truth table's, when it has them),
        the zero-cost terms of the ensemble (``ZeroCostTerms``) and, unless ``--no-baselines``,
        SynFlow and grad-norm of the freshly initialised full network."""
        arch = self.space.from_str(arch_str)
        torch.manual_seed(self.settings.seed)
        net = self.space.build_full(arch)
        if known and all(math.isfinite(known.get(k, math.nan)) for k in ("params", "flops")):
            out = {"params": known["params"], "flops": known["flops"]}
        else:
            cost = measure(net, self.space.full_net.resolution)
            out = {"params": cost.params, "flops": cost.flops}
        out.update(self.zero_cost_terms(arch))
        if not self.baselines:
            return out
        start = self._sync()
        net = net.to(self.device)
        out["synflow"] = proxies.synflow(net, self.batch.x.shape[-1])
        x, y = self.batch.x[:NASWOT_BATCH], self.batch.y[:NASWOT_BATCH]
        out["grad_norm"] = proxies.grad_norm(net, x, y)
        out["baseline_seconds"] = self._sync() - start
        return out


def _cache_header(run: Run) -> dict[str, Any]:
    header = {
        "settings": MoteSettings.from_config(run.estimator).as_dict(),
        "data": os.path.basename(run.dataset.path) if run.dataset.path else run.dataset.name,
        "space": run.space,
        "device": run.device,
        "baselines": run.baselines,
        "baseline_batch": run.baseline_batch,
        "zero_cost": ZERO_COST_VERSION,
    }
    choice = _channels_last(run)
    if choice is None:  # as a study decides it (estimators/scorer.py, MoteEstimator)
        choice = resolve_device(run.device).type == "cpu" and get_space(run.space).channels_last
    if choice:
        header["channels_last"] = True  # same ranking, float rounding differs from NCHW
    return header


def _channels_last(run: Run) -> bool | None:
    """``--memory-format``: None (auto) decides as a study does (``scorer.build_scoring``)."""
    return None if run.memory_format == "auto" else run.memory_format == "channels_last"


def load_cache(
    path: Path, header: dict[str, Any], refreshable: str | None = None
) -> tuple[dict[str, dict[str, Any]], bool]:
    """Cells already scored with the same settings, and whether the header's ``refreshable``
    version is older than ``header``'s (the caller recomputes what it versions); any other
    different setting is an error."""
    if not path.exists():
        return {}, False
    cells: dict[str, dict[str, Any]] = {}
    older = False
    with path.open() as fh:
        for number, line in enumerate(fh):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut by an interruption
                continue
            if number == 0:
                stored = record.get("header") or {}
                if refreshable is not None and stored.get(refreshable, 0) < header[refreshable]:
                    older = True  # an older version is refreshed; a newer one is refused
                    stored = {**stored, refreshable: header[refreshable]}
                if stored != header:
                    raise UserError(
                        f"{path} was written with other settings ({record.get('header')}); "
                        "use another --out or delete it"
                    )
                continue
            cells[record["arch"]] = record
    return cells, older


def refresh_zero_cost(
    path: Path, header: dict[str, Any], cache: dict[str, dict[str, Any]], scorer: Scorer
) -> None:
    """Recompute the zero-cost terms of every cached cell (their MOTE terms are kept) and
    rewrite the cache under ``header``, through a temporary file, so an interruption loses
    nothing."""
    for arch, record in tqdm(cache.items(), desc=f"zero-cost v{header['zero_cost']}"):
        record.update(scorer.zero_cost_terms(scorer.space.from_str(arch)))
    partial = path.with_suffix(".refresh")
    lines = [json.dumps(r) + "\n" for r in [{"header": header}, *cache.values()]]
    partial.write_text("".join(lines))
    os.replace(partial, path)


def append_record(path: Path, record: dict[str, Any]) -> None:
    """One JSON line, flushed to disk; a line cut by an interruption is closed first."""
    cut = path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with path.open("a") as fh:
        fh.write(("\n" if cut else "") + json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def score_cells(run: Run, cells: pd.DataFrame, out: Path) -> dict[str, dict[str, Any]]:
    """The cells and the reference population scored, kept in ``out/cells.jsonl`` (the
    zero-cost terms of a cache of an older version recomputed first)."""
    out.mkdir(parents=True, exist_ok=True)
    cache_path = out / "cells.jsonl"
    header = _cache_header(run)
    cache, older = load_cache(cache_path, header, refreshable="zero_cost")
    if not cache_path.exists() or cache_path.stat().st_size == 0:
        append_record(cache_path, {"header": header})
    reference = reference_archs(run)
    wanted = list(dict.fromkeys([*cells.arch_str, *reference]))
    todo = [a for a in wanted if a not in cache]
    scorer = Scorer(run) if todo or older else None
    if older and scorer is not None:
        print(f"{cache_path}: zero-cost terms of an older version; recomputing them")
        refresh_zero_cost(cache_path, header, cache, scorer)
    if todo and scorer is not None:
        target = next(iter(truth_of(scorer.space).truth_targets.values()))
        truth = dict(zip(cells.arch_str, cells[target], strict=True))
        known: dict[str, dict[str, float]] = {a: {} for a in reference}
        known |= {
            a: {"params": float(p), "flops": float(f)}
            for a, p, f in zip(
                cells.arch_str,
                cells.get("params", pd.Series(np.nan, index=cells.index)),
                cells.get("flops", pd.Series(np.nan, index=cells.index)),
                strict=True,
            )
        }
        bar = tqdm(todo, desc="cells", initial=len(wanted) - len(todo), total=len(wanted))
        for arch in bar:
            record = scorer.mote(arch)
            record.update(scorer.baseline(arch, known[arch]))
            append_record(cache_path, record)
            cache[arch] = record
            done = [a for a in truth if a in cache and "mote" in cache[a]]
            if len(done) >= 5:  # the landscape term: MOTE may need the reference's constants
                tau = stats.kendalltau(
                    [cache[a]["landscape"] for a in done], [truth[a] for a in done]
                ).statistic
                bar.set_postfix(tau_landscape=f"{tau:.3f}", sec=f"{record['seconds']:.1f}")
    return cache


def reference_archs(run: Run) -> list[str]:
    """The ensemble's reference population of the run (--reference-seed, --reference)."""
    return reference_population(run.space, run.reference_seed, run.reference)


def reference_population(space_name: str, seed: int, size: int) -> list[str]:
    """The warm-up a study with ``calibration.seed`` = ``seed`` and ``population`` = ``size``
    would draw (no constraints), as arch strings."""
    space = get_space(space_name)
    draws = distinct_samples(space, seed)
    return [space.to_str(arch) for arch, _ in itertools.islice(draws, size)]


def spread(run: Run, cells: pd.DataFrame, size: int, repeats: int) -> dict[str, Any]:
    """Run-to-run spread of MOTE for the first ``size`` cells: the same seed ``repeats`` times,
    then ``repeats`` seeds."""
    scorer = Scorer(run)
    settings = scorer.settings
    out: dict[str, Any] = {"cells": {}}
    archs = list(cells.arch_str[:size])
    jobs = [(a, mode, k) for a in archs for mode in ("same_seed", "seeds") for k in range(repeats)]
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        a: {"same_seed": [], "seeds": []} for a in archs
    }
    for arch, mode, k in tqdm(jobs, desc="spread"):
        seed = settings.seed if mode == "same_seed" else settings.seed + k
        raw[arch][mode].append(scorer.mote(arch, seed=seed))
    constants = published_boxcox(scorer.space) or fit_boxcox(
        [r["landscape"] for runs in raw.values() for r in runs["seeds"] if "mote" in r],
        [r["speed"] for runs in raw.values() for r in runs["seeds"] if "mote" in r],
    )
    for arch in archs:
        entry: dict[str, Any] = {}
        for mode, runs in raw[arch].items():
            ok = [r for r in runs if "mote" in r]
            for clock in ("wall", "flops"):
                values = []
                for r in ok:
                    t = r["wall_seconds"] if clock == "wall" else r["flops_clock"]
                    values.append(
                        combine_code(
                            *code_terms(r["landscape_losses"], r["train_losses"], t), constants
                        )
                    )
                entry[f"{mode}_{clock}"] = {
                    "values": values,
                    "mean": float(np.mean(values)),
                    "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                }
        out["cells"][arch] = entry
    for key in ("same_seed_wall", "same_seed_flops", "seeds_wall", "seeds_flops"):
        stds = [e[key]["std"] for e in out["cells"].values()]
        out[f"median_std_{key}"] = float(np.median(stds))
    motes = [
        cells_mean for e in out["cells"].values() for cells_mean in [e["seeds_flops"]["mean"]]
    ]
    out["std_of_cell_means_flops"] = float(np.std(motes, ddof=1)) if len(motes) > 1 else 0.0
    return out
