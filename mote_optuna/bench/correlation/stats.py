"""``bench correlation``, the statistics: every score of the scored cells (MOTE by both speed
clocks, the paper's formula, the baselines, the ensemble on the reference scale), their Kendall τ
and Spearman ρ against the benchmark's accuracies, the table printed and the bar chart."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import boxcox as boxcox_with

from mote_optuna.errors import UserError
from mote_optuna.estimators.az_nas import rank_aggregate
from mote_optuna.estimators.boxcox import BoxCoxConstants, fit_boxcox
from mote_optuna.estimators.ensemble import MOTE_TERMS
from mote_optuna.estimators.ensemble import RULE as ENSEMBLE_RULE
from mote_optuna.estimators.mote import MoteSettings, code_terms, combine_code
from mote_optuna.estimators.settings import CalibrationConfig
from mote_optuna.spaces import SearchSpace, published_boxcox
from mote_optuna.spaces.base import truth_of

AZ_PROXIES = ("az_expressivity", "az_progressivity", "az_trainability")  # published (noise)
AZR_PROXIES = ("azr_expressivity", "azr_progressivity", "azr_trainability")  # real images


def score_table(
    records: list[dict[str, Any]],
    settings: MoteSettings,
    space: SearchSpace,
    reference: list[dict[str, Any]] | None = None,
) -> dict[str, np.ndarray]:
    """Every score, larger is better, one value per record; ``ensemble`` on the scale of the
    ``reference`` records (the population a study's warm-up would score), and ``mote`` with the
    space's published Box-Cox constants or, as a study fits them, on the first
    ``CalibrationConfig().population`` reference records."""
    constants = study_constants(space, reference or [], settings)

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
        *AZR_PROXIES,
        "live_flops",
        "live_params",
    ):
        if any(name in r for r in records):
            scores[name] = col(name)
    for aggregate, names in (("az_nas", AZ_PROXIES), ("azr_nas", AZR_PROXIES)):
        if all(name in scores for name in names):
            # AZ-NAS's rank aggregation over the sample, complexity = the full network's FLOPs
            scores[aggregate] = rank_aggregate([scores[n] for n in names] + [scores["flops"]])
    if reference:
        fitted = ENSEMBLE_RULE.fit(reference)
        scores["ensemble"] = np.array([ENSEMBLE_RULE.value(r, fitted) for r in records])
    return scores


def study_constants(
    space: SearchSpace, reference: list[dict[str, Any]], settings: MoteSettings
) -> BoxCoxConstants:
    """MOTE's constants as a study of ``space`` uses them: published, else fitted on its
    warm-up (the reference population's prefix of the calibration's default size)."""
    published = published_boxcox(space)
    if published is not None:
        return published
    warmup = reference[: CalibrationConfig().population]
    clock = "wall_seconds" if settings.speed_clock == "wall" else "flops_clock"
    terms = [code_terms(r["landscape_losses"], r["train_losses"], r[clock]) for r in warmup]
    return fit_boxcox([t[0] for t in terms], [t[1] for t in terms])


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


def _ensemble_seconds(records: list[dict[str, Any]]) -> float:
    """Median seconds of every part of the ensemble as a study computes it: the zero-cost terms,
    and MOTE's training when the rule's pool has a MOTE term."""
    trains = any(c.name in MOTE_TERMS for c in ENSEMBLE_RULE.pool)
    seconds = [
        r["zero_cost_seconds"] + (r["seconds"] if trains else 0.0)
        for r in records
        if "zero_cost_seconds" in r
    ]
    return _pct(seconds, 50)


def summarise(
    cells: pd.DataFrame,
    cache: dict[str, dict[str, Any]],
    settings: MoteSettings,
    released: pd.DataFrame | None,
    space: SearchSpace,
    reference: list[str] | None = None,
    scores_csv: Path | None = None,
) -> dict[str, Any]:
    """τ and ρ of every score; ``scores_csv``: also write each cell's scores there (no label)."""
    targets = truth_of(space).truth_targets
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
            "ensemble_median": _ensemble_seconds(records),
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
    targets = result["targets"]
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
    for target in result["targets"]:
        fig.add_bar(
            name=f"τ {target}",
            x=names,
            y=[result["scores"][n]["kendall_tau"].get(target) for n in names],
        )
    sec = result["seconds_per_arch"]
    fig.update_layout(
        barmode="group",
        title=(
            f"Kendall τ vs {', '.join(result['targets'].values())}, "
            f"{result['n']} cells; MOTE "
            f"{sec['median']:.2f} s/cell median ({result['settings']})"
        ),
        yaxis_title="Kendall τ",
        title_font_size=11,
    )
    fig.write_html(path, include_plotlyjs=True)
    return True
