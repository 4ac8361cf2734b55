"""``bench correlation``: rank correlation of MOTE and baselines with benchmark ground truth.

Samples N distinct cells of the truth table (seeded), scores each with MOTE at one budget, and
computes baselines on the same cells (params, FLOPs, SynFlow, NASWOT, grad-norm of the full
network). Reports Kendall τ and Spearman ρ against the 200-epoch test accuracy on CIFAR-10,
CIFAR-100 and ImageNet16-120, and seconds per cell. Every cell is appended to ``DIR/cells.jsonl``
as soon as it is scored, so an interrupted run resumes where it stopped.

Both speed clocks are measured on the same training run, so ``mote_wall`` and ``mote_flops``
compare the clocks without retraining. With ``--released`` the terms are also compared with the
MOTE authors' released terms on the same cells (fidelity of the port).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from mote_optuna.calibration import distinct_samples
from mote_optuna.config import REFERENCE_POPULATION, DatasetConfig, EstimatorConfig
from mote_optuna.cost import measure
from mote_optuna.data import load_arrays, per_label_subset, to_tensor
from mote_optuna.errors import UserError
from mote_optuna.estimators import proxies
from mote_optuna.estimators.boxcox import fit_boxcox
from mote_optuna.estimators.contract import resolve_device
from mote_optuna.estimators.ensemble import COMPONENTS as ENSEMBLE_COMPONENTS
from mote_optuna.estimators.ensemble import RULE as ENSEMBLE_RULE
from mote_optuna.estimators.ensemble import ensemble_value, fit_reference
from mote_optuna.estimators.mote import (
    BOXCOX_CONSTANTS,
    BUDGETS,
    Diverged,
    MoteEstimator,
    MoteSettings,
    code_terms,
    combine_code,
)
from mote_optuna.estimators.zero_cost import (
    AZ_NAS_BATCH,
    NASWOT_BATCH,
    ZeroCostTerms,
    proxy_batch,
)
from mote_optuna.spaces import get_space

TARGETS = {
    "cifar10": "cifar10_test_acc_200ep",
    "cifar100": "cifar100_test_acc_200ep",
    "imagenet16": "imagenet16_test_acc_200ep",
}
# --space nb101: NASLib's NB101 subset (nb101_subset_naslib.csv) has the 108-epoch validation
# accuracy only; its cells are the JSON adjacency/operations columns (prepare_truth).
TARGETS_BY_SPACE = {"nb201": TARGETS, "nb101": {"cifar10": "cifar10_valid_acc_108ep"}}
_SETTING_ARGS = {  # CLI flag dest -> (type, help)
    "epochs": (int, "training epochs E"),
    "batch_size": (int, "batch size (training and landscape)"),
    "images_per_label": (int, "training images per label taken from --data"),
    "landscape_points": (int, "points on the θ_init -> θ path (11 = G 10)"),
    "landscape_mode": (str, "train (1 epoch per point, released code), forward or eval"),
    "speed_clock": (str, "wall or flops (both are always measured; this one is 'mote')"),
    "width": (int, "channels of the reduced architecture"),
    "resolution": (int, "input resolution"),
    "lr": (float, "Adam learning rate"),
}
AZ_PROXIES = ("az_expressivity", "az_progressivity", "az_trainability")
ZERO_COST_VERSION = 1  # bump when a zero-cost term changes: the cache is then refused
HELP = "Kendall τ / Spearman ρ of MOTE and baselines vs NAS-Bench-201 accuracy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--truth", type=Path, required=True, help="ground-truth CSV")
    parser.add_argument("--data", type=Path, required=True, help="npz with x (uint8) and y")
    parser.add_argument("--space", default="nb201", choices=sorted(TARGETS_BY_SPACE))
    parser.add_argument("--n", type=int, default=200, help="number of distinct cells")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cell sample")
    parser.add_argument("--budget", default="lite", choices=sorted(BUDGETS))
    for name, (kind, text) in _SETTING_ARGS.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, dest=name, type=kind, default=None, help=f"override: {text}")
    parser.add_argument(
        "--reference",
        type=int,
        default=REFERENCE_POPULATION,
        help="size of the ensemble's reference population, drawn as a study's warm-up "
        f"(default {REFERENCE_POPULATION}, a study's default)",
    )
    parser.add_argument(
        "--reference-seed", type=int, default=0, help="seed of the reference population"
    )
    parser.add_argument("--formula", default="code", choices=["code", "paper"])
    parser.add_argument("--estimator-seed", type=int, default=0, help="init and batch order")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (and cache)")
    parser.add_argument("--released", type=Path, help="released MOTE terms CSV (fidelity)")
    parser.add_argument(
        "--no-baselines", action="store_true", help="skip SynFlow/NASWOT/grad-norm (faster)"
    )
    parser.add_argument(
        "--spread-cells",
        type=int,
        default=0,
        help="also score the first K cells --spread-repeats times (same seed, then seeds 0..)",
    )
    parser.add_argument("--spread-repeats", type=int, default=5)
    parser.add_argument(
        "--memory-format",
        choices=["auto", "nchw", "channels_last"],
        default="auto",
        help="proxy and batches; auto = channels_last on CPU (faster there), NCHW on GPU",
    )
    parser.add_argument(
        "--baseline-batch",
        type=int,
        default=AZ_NAS_BATCH,
        help=f"images of the zero-cost minibatch (default {AZ_NAS_BATCH}, AZ-NAS's; NASWOT and "
        f"grad-norm use its first {NASWOT_BATCH})",
    )


def settings_from_args(args: argparse.Namespace) -> MoteSettings:
    overrides = {name: getattr(args, name) for name in _SETTING_ARGS}
    config = EstimatorConfig(
        budget=args.budget, formula=args.formula, seed=args.estimator_seed, **overrides
    )
    return MoteSettings.from_config(config)


def prepare_truth(truth: pd.DataFrame, space: str) -> pd.DataFrame:
    """NB101: ``arch_str`` (the space's string) from the adjacency/operations columns, one row per
    module (NB101 hash ``key``; numeric columns of duplicate rows, other seeds, are averaged)."""
    if space != "nb101" or "arch_str" in truth:
        return truth
    from mote_optuna.spaces.nb101 import NB101Space, arch_from_csv

    nb101 = NB101Space()
    archs = [arch_from_csv(a, o) for a, o in zip(truth.adjacency, truth.operations, strict=True)]
    truth = truth.assign(
        arch_str=[nb101.to_str(a) for a in archs], key=[nb101.key(a) for a in archs]
    )
    numeric = truth.select_dtypes("number").columns
    first = truth.groupby("key", sort=False).first()
    first[numeric] = truth.groupby("key", sort=False)[list(numeric)].mean()
    return first.reset_index()


def sample_cells(truth: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """N distinct rows, seeded; the first k of a sample of n are the sample of k (a prefix)."""
    if n > len(truth):
        raise UserError(f"--n {n}: the truth table has only {len(truth)} cells")
    order = np.random.default_rng(seed).permutation(len(truth))[:n]
    return truth.iloc[order].reset_index(drop=True)


class Scorer:
    """MOTE and the baselines for one cell on one device."""

    def __init__(self, args: argparse.Namespace, settings: MoteSettings) -> None:
        self.space = get_space(args.space)
        self.settings = settings
        self.device = resolve_device(args.device)
        arrays = load_arrays(DatasetConfig(name="npz", path=str(args.data)))
        subset = per_label_subset(arrays, settings.images_per_label, settings.seed)
        self.data = to_tensor(subset, resolution=settings.resolution, device=self.device)
        self.channels_last = _channels_last(args, self.device)
        self.estimator = MoteEstimator(
            settings,
            self.data,
            BOXCOX_CONSTANTS.get(self.space.name),
            channels_last=self.channels_last,
        )
        res = self.space.full_net.resolution
        self.batch = proxy_batch(arrays, args.baseline_batch, settings.seed, res, self.device)
        self.zero_cost = ZeroCostTerms(self.space, self.batch, settings.seed)
        self.num_classes = arrays.num_classes
        self.baselines = not args.no_baselines

    def _sync(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def mote(self, arch_str: str, seed: int | None = None) -> dict[str, Any]:
        arch = self.space.from_str(arch_str)
        estimator = self.estimator
        if seed is not None and seed != self.settings.seed:
            from dataclasses import replace

            settings = replace(self.settings, seed=seed)
            estimator = MoteEstimator(
                settings, self.data, self.estimator.constants, channels_last=self.channels_last
            )
        start, cpu_start = self._sync(), time.process_time()
        torch.manual_seed(estimator.settings.seed)
        model = self.space.build_proxy(
            arch, num_classes=self.num_classes, width=self.settings.width
        )
        try:
            result = estimator.score(model)
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
        start = self._sync()
        out.update(self.zero_cost(arch))
        out["zero_cost_seconds"] = self._sync() - start
        if not self.baselines:
            return out
        start = self._sync()
        net = net.to(self.device)
        out["synflow"] = proxies.synflow(net, self.space.full_net.resolution)
        x, y = self.batch.x[:NASWOT_BATCH], self.batch.y[:NASWOT_BATCH]
        out["grad_norm"] = proxies.grad_norm(net, x, y)
        out["baseline_seconds"] = self._sync() - start
        return out


def _cache_header(args: argparse.Namespace, settings: MoteSettings) -> dict[str, Any]:
    header = {
        "settings": settings.as_dict(),
        "data": os.path.basename(str(args.data)),
        "space": args.space,
        "device": str(args.device),
        "baselines": not args.no_baselines,
        "baseline_batch": args.baseline_batch,
        "zero_cost": ZERO_COST_VERSION,
    }
    if _channels_last(args, resolve_device(args.device)):
        header["channels_last"] = True  # same ranking, float rounding differs from NCHW
    return header


def _channels_last(args: argparse.Namespace, device: torch.device) -> bool:
    choice = getattr(args, "memory_format", "auto")
    return choice == "channels_last" or (choice == "auto" and device.type == "cpu")


def load_cache(path: Path, header: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Cells already scored with the same settings; a different setting is an error."""
    if not path.exists():
        return {}
    cells: dict[str, dict[str, Any]] = {}
    with path.open() as fh:
        for number, line in enumerate(fh):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut by an interruption
                continue
            if number == 0:
                if record.get("header") != header:
                    raise UserError(
                        f"{path} was written with other settings ({record.get('header')}); "
                        "use another --out or delete it"
                    )
                continue
            cells[record["arch"]] = record
    return cells


def _append(path: Path, record: dict[str, Any]) -> None:
    """One JSON line, flushed to disk; a line cut by an interruption is closed first."""
    cut = path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with path.open("a") as fh:
        fh.write(("\n" if cut else "") + json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def score_cells(
    args: argparse.Namespace, settings: MoteSettings, cells: pd.DataFrame
) -> dict[str, dict[str, Any]]:
    from tqdm import tqdm

    args.out.mkdir(parents=True, exist_ok=True)
    cache_path = args.out / "cells.jsonl"
    header = _cache_header(args, settings)
    cache = load_cache(cache_path, header)
    if not cache_path.exists() or cache_path.stat().st_size == 0:
        _append(cache_path, {"header": header})
    reference = reference_archs(args)
    wanted = list(dict.fromkeys([*cells.arch_str, *reference]))
    todo = [a for a in wanted if a not in cache]
    if todo:
        scorer = Scorer(args, settings)
        target = TARGETS_BY_SPACE[args.space]["cifar10"]
        truth = dict(zip(cells.arch_str, cells[target], strict=True))
        known: dict[str, dict[str, float]] = {a: {} for a in reference}
        known |= {
            a: {"params": float(p), "flops": float(f)}
            for a, p, f in zip(
                cells.arch_str,
                cells.get("params_M_cifar10", pd.Series(np.nan, index=cells.index)),
                cells.get("flops_M_cifar10", pd.Series(np.nan, index=cells.index)),
                strict=True,
            )
        }
        bar = tqdm(todo, desc="cells", initial=len(wanted) - len(todo), total=len(wanted))
        for arch in bar:
            record = scorer.mote(arch)
            record.update(scorer.baseline(arch, known[arch]))
            _append(cache_path, record)
            cache[arch] = record
            done = [a for a in truth if a in cache and "mote" in cache[a]]
            if len(done) >= 5:
                tau = stats.kendalltau(
                    [cache[a]["mote"] for a in done], [truth[a] for a in done]
                ).statistic
                bar.set_postfix(tau_c10=f"{tau:.3f}", sec=f"{record['seconds']:.1f}")
    return cache


def reference_archs(args: argparse.Namespace) -> list[str]:
    """The ensemble's reference population: the warm-up a study with ``calibration.seed`` =
    ``--reference-seed`` and ``population`` = ``--reference`` would draw (no constraints)."""
    space = get_space(args.space)
    draws = distinct_samples(space, args.reference_seed)
    return [space.to_str(arch) for arch, _ in itertools.islice(draws, args.reference)]


def score_table(
    records: list[dict[str, Any]],
    settings: MoteSettings,
    space: str = "nb201",
    reference: list[dict[str, Any]] | None = None,
) -> dict[str, np.ndarray]:
    """Every score, larger is better, one value per record; ``ensemble`` on the scale of the
    ``reference`` records (the population a study's warm-up would score)."""
    from scipy.special import boxcox as boxcox_with

    constants = BOXCOX_CONSTANTS.get(space, BOXCOX_CONSTANTS["nb201"])

    def col(name: str) -> np.ndarray:
        return np.array([r.get(name, np.nan) for r in records], dtype=float)

    def code_mote(clock: str) -> tuple[np.ndarray, np.ndarray]:
        motes, speeds = [], []
        for r in records:
            t = r["wall_seconds"] if clock == "wall" else r["flops_clock"]
            landscape, speed = code_terms(r["landscape_losses"], r["train_losses"], t)
            motes.append(combine_code(landscape, speed, constants))
            speeds.append(speed)
        return np.array(motes), np.array(speeds)

    mote_wall, speed_wall = code_mote("wall")
    mote_flops, speed_flops = code_mote("flops")
    chosen = settings.speed_clock
    landscape = np.array([sum(1.0 / v for v in r["landscape_losses"]) for r in records])
    # The paper's formula: ΣCE and Σ l_e/t_e, each Box-Cox'd with its MLE λ on this sample.
    paper_l = np.array([sum(r["landscape_losses"]) for r in records])
    if chosen == "wall":
        paper_s = col("paper_speed_wall")
    else:
        paper_s = np.array(
            [sum(r["train_losses"]) / (r["flops_clock"] / len(r["train_losses"])) for r in records]
        )
    _, lam_l = stats.boxcox(paper_l)
    _, lam_s = stats.boxcox(paper_s)
    paper = -(boxcox_with(paper_l, lam_l) + boxcox_with(paper_s, lam_s))
    scores = {
        "mote": mote_wall if chosen == "wall" else mote_flops,
        "mote_wall": mote_wall,
        "mote_flops": mote_flops,
        "landscape": landscape,
        "speed": speed_wall if chosen == "wall" else speed_flops,
        "speed_wall": speed_wall,
        "speed_flops": speed_flops,
        "paper_formula": paper,
        "tse": -np.array([sum(r["train_losses"]) for r in records]),
        # λ, σ fitted on these cells' own terms (estimators.boxcox; no accuracy used)
        "mote_calibrated": _calibrated(landscape, speed_wall if chosen == "wall" else speed_flops),
        "params": col("params"),
        "flops": col("flops"),
    }
    for name in (
        "synflow",
        "naswot",
        "grad_norm",
        "meco",
        *AZ_PROXIES,
        "live_flops",
        "live_params",
    ):
        if any(name in r for r in records):
            scores[name] = col(name)
    if all(name in scores for name in AZ_PROXIES):
        # AZ-NAS's non-linear rank aggregation over the sample, complexity = FLOPs
        parts = [scores[name] for name in AZ_PROXIES] + [scores["flops"]]
        scores["az_nas"] = sum(np.log(stats.rankdata(p) / len(p)) for p in parts)
    if reference:
        fitted = fit_reference(reference, ENSEMBLE_COMPONENTS)
        scores["ensemble"] = np.array(
            [ensemble_value(r, fitted, ENSEMBLE_COMPONENTS, ENSEMBLE_RULE) for r in records]
        )
    return scores


def _fit(landscape: np.ndarray, speed: np.ndarray) -> Any:
    try:
        return fit_boxcox(landscape, speed)
    except UserError:  # too few cells
        return None


def _calibrated(landscape: np.ndarray, speed: np.ndarray) -> np.ndarray:
    fitted = _fit(landscape, speed)
    if fitted is None:
        return np.full(len(landscape), np.nan)
    return np.array([combine_code(v, w, fitted) for v, w in zip(landscape, speed, strict=True)])


def _corr(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return math.nan, math.nan
    tau = stats.kendalltau(x[ok], y[ok]).statistic
    rho = stats.spearmanr(x[ok], y[ok]).statistic
    return float(tau), float(rho)


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def summarise(
    cells: pd.DataFrame,
    cache: dict[str, dict[str, Any]],
    settings: MoteSettings,
    released: pd.DataFrame | None,
    space: str = "nb201",
    reference: list[str] | None = None,
    scores_csv: Path | None = None,
) -> dict[str, Any]:
    """τ and ρ of every score; ``scores_csv``: also write each cell's scores there (no label)."""
    targets = TARGETS_BY_SPACE[space]
    reference_records = [cache[a] for a in reference or [] if "mote" in cache.get(a, {})]
    rows = [(i, cache[a]) for i, a in enumerate(cells.arch_str) if "mote" in cache.get(a, {})]
    diverged = [a for a in cells.arch_str if "diverged" in cache.get(a, {})]
    idx = [i for i, _ in rows]
    records = [r for _, r in rows]
    truth = cells.iloc[idx]
    scores = score_table(records, settings, space, reference_records)
    for column in truth.columns:  # the truth table's own proxies and costs (NB101 CSV)
        if column.startswith("zc_") or column in ("params_M_naslib", "flops_M_naslib"):
            name = column.removeprefix("zc_").removesuffix("_M_naslib")
            scores[f"csv_{name}"] = truth[column].to_numpy(dtype=float)
    if released is not None:
        rel = released.set_index("arch_str").reindex(truth.arch_str)
        scores["released_mote"] = rel["mote"].to_numpy(dtype=float)
    if scores_csv is not None:
        pd.DataFrame(scores, index=pd.Index(truth.arch_str, name="arch_str")).to_csv(scores_csv)
    result: dict[str, Any] = {
        "n": len(records),
        "n_requested": len(cells),
        "diverged": diverged,
        "settings": settings.as_dict(),
        "seconds_per_arch": {
            "median": _pct([r["seconds"] for r in records], 50),
            "p90": _pct([r["seconds"] for r in records], 90),
            "mean": float(np.mean([r["seconds"] for r in records])) if records else math.nan,
            # CPU time of this process (all its threads): the cost without the other load
            "cpu_median": _pct([r["cpu_seconds"] for r in records if "cpu_seconds" in r], 50),
            "cpu_p90": _pct([r["cpu_seconds"] for r in records if "cpu_seconds" in r], 90),
            "baselines_median": _pct(
                [r["baseline_seconds"] for r in records if "baseline_seconds" in r], 50
            ),
            # every part of the ensemble: MOTE's training and the zero-cost terms
            "ensemble_median": _pct(
                [
                    r["seconds"] + r["zero_cost_seconds"]
                    for r in records
                    if "zero_cost_seconds" in r
                ],
                50,
            ),
        },
        "reference": {"n": len(reference_records), "archs": reference or []},
        "scores": {},
        "targets": targets,
    }
    fitted = _fit(scores["landscape"], scores["speed"])  # the constants of mote_calibrated
    if fitted is not None:
        result["calibrated_boxcox"] = {k: round(v, 4) for k, v in vars(fitted).items()}
    for name, values in scores.items():
        taus, rhos = {}, {}
        for target, column in targets.items():
            if column in truth:
                taus[target], rhos[target] = _corr(values, truth[column].to_numpy(dtype=float))
        result["scores"][name] = {"kendall_tau": taus, "spearman_rho": rhos}
    if released is not None:
        rel = released.set_index("arch_str").reindex(truth.arch_str)
        pairs = {
            "landscape": ("landscape", "landscape_term"),
            "speed_wall": ("speed_wall", "speed_term"),
            "speed_flops": ("speed_flops", "speed_term"),
            "mote_wall": ("mote_wall", "mote"),
            "mote_flops": ("mote_flops", "mote"),
        }
        fidelity = {}
        for name, (ours, theirs) in pairs.items():
            tau, rho = _corr(scores[ours], rel[theirs].to_numpy(dtype=float))
            fidelity[name] = {"kendall_tau": tau, "spearman_rho": rho}
        result["fidelity_vs_released"] = fidelity
    return result


def print_table(result: dict[str, Any]) -> None:
    sec = result["seconds_per_arch"]
    print(
        f"\n{result['n']} cells; MOTE seconds per cell: median {sec['median']:.2f}, "
        f"p90 {sec['p90']:.2f}; CPU seconds median {sec['cpu_median']:.2f}, "
        f"p90 {sec['cpu_p90']:.2f}"
        f" (baselines median {sec['baselines_median']:.2f}); ensemble, all parts: median "
        f"{sec.get('ensemble_median', math.nan):.2f}"
    )
    targets = result.get("targets", TARGETS)
    print(f"{'score':<15}" + "".join(f"{'τ ' + t:>14}{'ρ ' + t:>14}" for t in targets))
    for name, value in result["scores"].items():
        line = f"{name:<15}"
        for target in targets:
            tau = value["kendall_tau"].get(target, math.nan)
            rho = value["spearman_rho"].get(target, math.nan)
            line += f"{tau:>14.3f}{rho:>14.3f}"
        print(line)
    if "calibrated_boxcox" in result:
        fitted = result["calibrated_boxcox"]
        print(f"\nmote_calibrated: Box-Cox constants fitted on these cells {fitted}")
    if "fidelity_vs_released" in result:
        print("\nfidelity: τ / ρ of our term vs the released term on the same cells")
        for name, value in result["fidelity_vs_released"].items():
            print(f"{name:<15}{value['kendall_tau']:>14.3f}{value['spearman_rho']:>14.3f}")


def write_plot(result: dict[str, Any], path: Path) -> bool:
    """A grouped bar chart of τ per score; False (and no file) where plotly is not installed."""
    try:
        import plotly.graph_objects as go
    except ImportError:
        return False

    names = list(result["scores"])
    fig = go.Figure()
    for target in result.get("targets", TARGETS):
        fig.add_bar(
            name=f"τ {target}",
            x=names,
            y=[result["scores"][n]["kendall_tau"].get(target) for n in names],
        )
    sec = result["seconds_per_arch"]
    fig.update_layout(
        barmode="group",
        title=(
            f"Kendall τ vs {', '.join(result.get('targets', TARGETS).values())}, "
            f"{result['n']} cells; MOTE "
            f"{sec['median']:.2f} s/cell median ({result['settings']})"
        ),
        yaxis_title="Kendall τ",
        title_font_size=11,
    )
    fig.write_html(path, include_plotlyjs=True)
    return True


def spread(
    args: argparse.Namespace, settings: MoteSettings, cells: pd.DataFrame
) -> dict[str, Any]:
    """Run-to-run spread of MOTE for the first K cells: same seed repeated, then other seeds."""
    from tqdm import tqdm

    scorer = Scorer(args, settings)
    out: dict[str, Any] = {"cells": {}}
    archs = list(cells.arch_str[: args.spread_cells])
    jobs = [
        (a, mode, k)
        for a in archs
        for mode in ("same_seed", "seeds")
        for k in range(args.spread_repeats)
    ]
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        a: {"same_seed": [], "seeds": []} for a in archs
    }
    for arch, mode, k in tqdm(jobs, desc="spread"):
        seed = settings.seed if mode == "same_seed" else settings.seed + k
        raw[arch][mode].append(scorer.mote(arch, seed=seed))
    constants = BOXCOX_CONSTANTS.get(args.space, BOXCOX_CONSTANTS["nb201"])
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


def handler(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = settings_from_args(args)
    if not args.truth.is_file():
        raise UserError(f"--truth {args.truth}: no such file")
    if not args.data.is_file():
        raise UserError(f"--data {args.data}: no such file")
    truth = prepare_truth(pd.read_csv(args.truth), args.space)
    missing = {"arch_str", TARGETS_BY_SPACE[args.space]["cifar10"]} - set(truth.columns)
    if missing:
        raise UserError(f"--truth {args.truth}: missing columns {sorted(missing)}")
    cells = sample_cells(truth, args.n, args.seed)
    released = pd.read_csv(args.released) if args.released else None
    cache = score_cells(args, settings, cells)
    result = summarise(
        cells,
        cache,
        settings,
        released,
        args.space,
        reference_archs(args),
        scores_csv=args.out / "scores.csv",
    )
    result.update(
        {
            "command": "bench correlation",
            "args": {k: str(v) for k, v in vars(args).items() if k != "handler"},
            "torch_threads": torch.get_num_threads(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )
    if args.spread_cells:
        result["spread"] = spread(args, settings, cells)
    print_table(result)
    if "spread" in result:
        s = result["spread"]
        print(
            "\nspread (median over cells of the std of MOTE): "
            + ", ".join(f"{k[11:]} {v:.4f}" for k, v in s.items() if k.startswith("median_std_"))
            + f"; std of cell means {s['std_of_cell_means_flops']:.4f}"
        )
    (args.out / "correlation.json").write_text(json.dumps(result, indent=1))
    written = [args.out / "correlation.json", args.out / "scores.csv"]
    if write_plot(result, args.out / "correlation.html"):
        written.append(args.out / "correlation.html")
    print("\nwrote " + ", ".join(str(p) for p in written))
    return 0


ENTRY = (HELP, add_arguments, handler)
