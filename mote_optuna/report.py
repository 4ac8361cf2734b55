"""The Pareto front and all trials as tables (CSV, Parquet) and one self-contained HTML page.

``write_report`` writes to its folder:

- ``pareto.csv``: the feasible Pareto front (``study.best_trials``), best MOTE first;
- ``trials.csv`` and ``trials.parquet``: every trial (state, values, architecture, MOTE terms,
  feasibility, params), plus ``true_acc`` when a ground-truth table is given;
- ``pareto.html``: plotly figures with plotly.js and the data embedded (it opens with no
  network): the Pareto front in 2D (each pair of objectives) and 3D, parallel coordinates over
  the architecture parameters, the MOTE terms against FLOPs and, with ground truth, the true
  accuracy against MOTE. The trials table is embedded as JSON (``<script id="trials-data">``).

Ground truth (``--truth CSV``): the space's benchmark table or any table keyed by ``arch_str``
(``truth.accuracy_by_arch``); ``truth_column`` names the accuracy column (default: the space's
main target). Trials whose architecture the table does not know get no value.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from mote_optuna import keys
from mote_optuna.config import ConstraintsConfig, StudyConfig
from mote_optuna.dashboard import _objectives, latency_line
from mote_optuna.estimators.names import SCORE_NAMES
from mote_optuna.spaces import get_space
from mote_optuna.storage.url import mask_url
from mote_optuna.timings import study_timings
from mote_optuna.truth import accuracy_by_arch

ATTR_COLUMNS = (
    keys.ARCH_ATTR, keys.FLOPS_ATTR, keys.PARAMS_ATTR, keys.LATENCY_ATTR, "landscape_term",
    "speed_term", keys.MOTE_SECONDS_ATTR, keys.TRIAL_SECONDS_ATTR, keys.CACHED_FROM_ATTR,
    keys.FAIL_REASON_ATTR,
)  # fmt: skip


def report_dir(config: StudyConfig) -> Path:
    """Beside the SQLite/journal file (``<dir>/<name>-report``), else ``reports/<name>``."""
    return config.beside_storage("report", "reports")


def trials_frame(study: optuna.Study, objectives: list[str]) -> pd.DataFrame:
    """One row per trial: number, state, objective values, architecture and MOTE details."""
    rows = []
    evaluation = study.user_attrs.get(keys.EVALUATION_ATTR) or {}  # written by `evaluate`
    evaluated = evaluation.get("trials", {})
    selection = study.user_attrs.get(keys.SELECTION_ATTR) or {}  # written by `select`
    selected = {c["trial"]: c["fidelity_value"] for c in selection.get("candidates", [])}
    for trial in study.get_trials(deepcopy=False):
        row: dict[str, object] = {"number": trial.number, "state": trial.state.name}
        values = trial.values if trial.state == TrialState.COMPLETE else None
        for i, name in enumerate(objectives):
            row[name] = values[i] if values else None
        for key in ATTR_COLUMNS:
            if key not in objectives:
                row[key] = trial.user_attrs.get(key)
        row["feasible"] = all(v <= 0 for v in trial.constraints.values()) if values else None
        if evaluated:
            row["eval_acc"] = evaluated.get(str(trial.number), {}).get("eval_acc")
            row["final_pick"] = trial.number == evaluation.get("final_pick")
        if selected:
            row["select_value"] = selected.get(trial.number)
            row["select_pick"] = trial.number == selection["pick"]["trial"]
        row.update({f"param_{k}": v for k, v in trial.params.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def pareto_frame(study: optuna.Study, objectives: list[str]) -> pd.DataFrame:
    """The feasible Pareto front (``study.best_trials``), best MOTE first."""
    numbers = {t.number for t in study.best_trials}
    frame = trials_frame(study, objectives)
    front = frame[frame["number"].isin(numbers)]
    sort_by = objectives[0]
    ascending = study.directions[0] == optuna.study.StudyDirection.MINIMIZE
    columns = ["number", *objectives, "arch"]
    extra = ("eval_acc", "final_pick", "select_value", "select_pick")
    columns += [c for c in extra if c in frame.columns]
    return front.sort_values(sort_by, ascending=ascending)[columns].reset_index(drop=True)


def selection_frame(study: optuna.Study) -> pd.DataFrame | None:
    """The top-k stage's candidates in query order (``select``), or None before it ran."""
    selection = study.user_attrs.get(keys.SELECTION_ATTR)
    if not selection:
        return None
    frame = pd.DataFrame(selection["candidates"])
    frame["pick"] = frame["trial"] == selection["pick"]["trial"]
    return frame[["trial", "score", "fidelity_value", "seconds", "pick", "arch"]]


def selection_summary(study: optuna.Study) -> str | None:
    """One line on the top-k stage: fidelity, queries and the pick (None before it ran)."""
    selection = study.user_attrs.get(keys.SELECTION_ATTR)
    if not selection:
        return None
    pick = selection["pick"]
    column = f" {selection['column']}" if selection.get("column") else ""
    mode = ", few-query mode (uses labels)" if selection["mode"] == "reweight" else ""
    return (
        f"top-k stage ({selection['fidelity']}{column}{mode}): {selection['queries']} queries "
        f"of budget {selection['top_k']}; pick: trial {pick['trial']} {pick['arch']} at "
        f"{pick['fidelity_value']:.2f}"
    )


def timing_summary(study: optuna.Study) -> str:
    """Trial counts by state and the seconds of trained (not cached) COMPLETE trials
    (``timings.study_timings``)."""
    timings = study_timings(study)
    counts = ", ".join(f"{n} {state.lower()}" for state, n in timings.states.items())
    if not timings.trained:
        return f"trials: {counts or 'none'}"
    seconds = pd.Series(timings.trained)
    return (
        f"trials: {counts}; {len(timings.trained)} trained, {timings.cached} cached; "
        f"seconds per trained trial: median {seconds.median():.2f}, "
        f"p90 {seconds.quantile(0.9):.2f}"
    )


def add_truth(frame: pd.DataFrame, truth: pd.Series) -> pd.DataFrame:
    """``frame`` with a ``true_acc`` column looked up by its ``arch`` column (NaN if unknown)."""
    frame = frame.copy()
    frame["true_acc"] = pd.to_numeric(frame["arch"].map(truth), errors="coerce")
    return frame


def write_report(
    study: optuna.Study,
    config: StudyConfig,
    out_dir: Path,
    *,
    truth: Path | None = None,
    truth_column: str | None = None,
    compare: list[tuple[StudyConfig, optuna.Study]] | None = None,
) -> dict[str, Path]:
    """Write pareto.csv, trials.csv, trials.parquet and pareto.html (self-contained) to out_dir.

    With ``truth`` (a CSV keyed by ``arch_str``), the trial tables get ``true_acc``. With
    ``compare`` (other studies), the page shows their feasible fronts beside this one's.
    """
    truth_series, truth_name = (
        accuracy_by_arch(get_space(config.space), truth, truth_column) if truth else (None, None)
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "pareto": out_dir / "pareto.csv",
        "trials": out_dir / "trials.csv",
        "parquet": out_dir / "trials.parquet",
        "html": out_dir / "pareto.html",
    }
    front = pareto_frame(study, config.objectives)
    trials = trials_frame(study, config.objectives)
    if truth_series is not None:
        front = add_truth(front, truth_series)
        trials = add_truth(trials, truth_series)
    front.to_csv(paths["pareto"], index=False)
    trials.to_csv(paths["trials"], index=False)
    trials.to_parquet(paths["parquet"], index=False)
    page = report_html(
        study, config, trials, front, truth_name=truth_name,
        compare=[(config, study), *compare] if compare else None,
    )  # fmt: skip
    paths["html"].write_text(page, encoding="utf-8")
    return paths


# --------------------------------------------------------------------------------------------
# The HTML page


def report_figures(
    study: optuna.Study, config: StudyConfig, trials: pd.DataFrame
) -> list[tuple[str, Any]]:
    """(title, plotly figure) for every plot the study's trials allow."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    objectives = config.objectives
    complete = trials[trials["state"] == "COMPLETE"]
    out: list[tuple[str, Any]] = []
    if complete.empty:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for i, a in enumerate(objectives):
            for j in range(i + 1, len(objectives)):
                b = objectives[j]
                fig = optuna.visualization.plot_pareto_front(
                    study,
                    targets=_pair(i, j),
                    target_names=[a, b],
                )
                fig.update_layout(title=f"{a} vs {b} (front = {len(objectives)}-objective front)")
                out.append((f"Pareto front: {a} vs {b}", fig))
        if len(objectives) == 3:
            fig = optuna.visualization.plot_pareto_front(study, target_names=objectives)
            fig.update_layout(title="Pareto front in 3D", height=650)
            out.append(("Pareto front in 3D", fig))
        target = objectives.index("mote") if "mote" in objectives else 0
        fig = optuna.visualization.plot_parallel_coordinate(
            study,
            target=lambda t: t.values[target],
            target_name=objectives[target],
        )
        fig.update_layout(title=f"Architecture parameters and {objectives[target]}")
        out.append(("Parallel coordinates over the architecture parameters", fig))
    terms = [c for c in ("mote", "landscape_term", "speed_term", "true_acc") if c in complete]
    terms = [c for c in terms if complete[c].notna().any()]
    if "flops" in complete and complete["flops"].notna().any() and terms:
        fig = make_subplots(rows=1, cols=len(terms), subplot_titles=terms)
        hover = _hover(complete)
        for col, term in enumerate(terms, start=1):
            fig.add_trace(
                go.Scatter(
                    x=complete["flops"], y=complete[term], mode="markers", name=term,
                    text=hover, hoverinfo="text+x+y",
                ),
                row=1, col=col,
            )  # fmt: skip
            fig.update_xaxes(title_text="flops (MMACs)", row=1, col=col)
        fig.update_layout(title="MOTE terms against FLOPs", showlegend=False)
        out.append(("MOTE terms against FLOPs", fig))
    if "true_acc" in complete and "mote" in complete:
        known = complete[complete["true_acc"].notna() & complete["mote"].notna()]
        if len(known):
            rho = known["mote"].corr(known["true_acc"], method="spearman")
            shown = f"Spearman ρ = {rho:.3f}, " if len(known) > 2 and rho == rho else ""
            fig = go.Figure(
                go.Scatter(
                    x=known["mote"], y=known["true_acc"], mode="markers",
                    text=_hover(known),
                    hoverinfo="text+x+y",
                )
            )  # fmt: skip
            fig.update_layout(
                title=f"True accuracy against MOTE ({shown}{len(known)} trials)",
                xaxis_title="mote",
                yaxis_title="true_acc",
            )
            out.append(("True accuracy against MOTE", fig))
    return out


def _score(config: StudyConfig) -> str | None:
    """The study's trained score among its objectives (mote or ensemble), if any."""
    return next((name for name in config.objectives if name in SCORE_NAMES), None)


def _pair(i: int, j: int) -> Callable[[FrozenTrial], tuple[float, float]]:
    """Objectives ``i`` and ``j`` of a trial, as ``plot_pareto_front`` targets."""
    return lambda trial: (trial.values[i], trial.values[j])


def front_frame(study: optuna.Study, config: StudyConfig) -> pd.DataFrame:
    """A study's feasible front with its score and every cost it recorded (for comparisons)."""
    frame = trials_frame(study, config.objectives)
    frame = frame[frame["number"].isin({t.number for t in study.best_trials})]
    wanted = ("number", _score(config), "latency", "flops", "params", "arch")
    columns = [c for c in wanted if c is not None and c in frame and frame[c].notna().any()]
    return frame[columns].sort_values(columns[1]).reset_index(drop=True)


def _budgets(constraints: ConstraintsConfig) -> str:
    budgets = constraints.budgets()
    return ", ".join(f"{k} {v:g}" for k, v in budgets.items()) or "no constraints"


def compare_figures(studies: list[tuple[StudyConfig, optuna.Study]]) -> list[tuple[str, Any]]:
    """Each study's feasible front, side by side on (latency, score) and (flops, score), where
    the studies share their score (mote or ensemble)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    score = _score(studies[0][0])
    fronts = [(c, front_frame(s, c)) for c, s in studies]
    axes = [x for x in ("latency", "flops") if all(x in f for _, f in fronts)]
    if not axes or score is None or not all(score in f for _, f in fronts):
        return []
    fig = make_subplots(rows=1, cols=len(axes), subplot_titles=[f"{score} vs {x}" for x in axes])
    for k, (config, front) in enumerate(fronts):
        label = f"{config.name} ({_budgets(config.constraints)})"
        for col, x in enumerate(axes, start=1):
            fig.add_trace(
                go.Scatter(
                    x=front[x], y=front[score], mode="markers", name=label,
                    marker={"color": _COLOURS[k % len(_COLOURS)], "size": 9},
                    text=_hover(front), hoverinfo="text+x+y", legendgroup=label,
                    showlegend=col == 1,
                ),
                row=1, col=col,
            )  # fmt: skip
            unit = "ms" if x == "latency" else "MMACs"
            fig.update_xaxes(title_text=f"{x} ({unit})", row=1, col=col)
    fig.update_yaxes(title_text=score)
    names = " vs ".join(c.name for c, _ in fronts)
    fig.update_layout(title=f"Feasible Pareto fronts side by side: {names}")
    return [(f"Fronts compared: {names}", fig)]


_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def _hover(frame: pd.DataFrame) -> list[str]:
    pairs = zip(frame["number"], frame["arch"], strict=True)
    return [f"trial {number}<br>{arch}" for number, arch in pairs]


def _json_records(frame: pd.DataFrame) -> str:
    text = frame.to_json(orient="records", double_precision=10)
    return text.replace("</", "<\\/")  # never close the script element early


def report_html(
    study: optuna.Study,
    config: StudyConfig,
    trials: pd.DataFrame,
    front: pd.DataFrame,
    *,
    truth_name: str | None = None,
    compare: list[tuple[StudyConfig, optuna.Study]] | None = None,
) -> str:
    """One HTML page with plotly.js inlined: no external script, style or data."""
    from plotly.offline import get_plotlyjs

    states = trials["state"].value_counts().to_dict() if len(trials) else {}
    counts = ", ".join(f"{n} {str(s).lower()}" for s, n in sorted(states.items())) or "no trials"
    now = datetime.now(UTC).isoformat(timespec="seconds")
    sections = []
    figures = report_figures(study, config, trials)
    if compare:
        figures = compare_figures(compare) + figures
    for title, fig in figures:
        div = fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            include_mathjax=False,
            config={"displaylogo": False, "responsive": True},
        )
        sections.append(f"<h2>{html.escape(title)}</h2>\n{div}")
    if not sections:
        sections.append("<p>No completed trials yet: no figures.</p>")
    truth_line = (
        f"<p><code>true_acc</code> = <code>{html.escape(truth_name)}</code> from the "
        "ground-truth table, where it knows the architecture.</p>"
        if truth_name
        else ""
    )
    front_table = front.to_html(index=False, escape=True, border=0, classes="front")
    if compare:
        front_table += "".join(
            f"<h3>Feasible front of {html.escape(c.name)} ({html.escape(_objectives(c))}; "
            f"{html.escape(_budgets(c.constraints))})</h3>\n"
            + front_frame(s, c).to_html(index=False, escape=True, border=0, classes="front")
            for c, s in compare[1:]
        )
    selected = selection_frame(study)
    if selected is not None:
        front_table += (
            f"<h2>{html.escape(selection_summary(study) or '')}</h2>\n"
            + selected.to_html(index=False, escape=True, border=0, classes="front")
        )
    latency = (study.user_attrs.get(keys.META_KEY) or {}).get("latency")
    units = "FLOPs in millions of multiply-accumulates, params in millions."
    if latency:
        units += f" Latency in milliseconds: {html.escape(latency_line(latency))}."
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mote_optuna report: {html.escape(config.name)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }}
table.front {{ border-collapse: collapse; font-size: 13px; }}
table.front td, table.front th {{ border-bottom: 1px solid #ddd; padding: 3px 8px; }}
</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<h1>Study {html.escape(config.name)}</h1>
<p>{len(trials)} trials ({html.escape(counts)}); objectives
{html.escape(_objectives(config))};
storage <code>{html.escape(mask_url(config.storage_url))}</code>; generated {now}.
{units}</p>
{truth_line}
<h2>Feasible Pareto front ({len(front)} trials)</h2>
{front_table}
{chr(10).join(sections)}
<script type="application/json" id="trials-data">{_json_records(trials)}</script>
</body>
</html>
"""
