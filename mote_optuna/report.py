"""The Pareto front and all trials as pandas tables, CSV files and a plotly page."""

from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import TrialState

from mote_optuna.config import StudyConfig

ATTR_COLUMNS = (
    "arch", "flops", "params", "landscape_term", "speed_term", "mote_seconds",
    "trial_seconds", "cached_from", "fail_reason",
)  # fmt: skip


def report_dir(config: StudyConfig) -> Path:
    """Beside the SQLite/journal file (``<dir>/<name>-report``), else ``reports/<name>``."""
    url = config.storage_url
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).parent / f"{config.name}-report"
    if url.startswith("journal:"):
        return Path(url.removeprefix("journal:")).parent / f"{config.name}-report"
    return Path("reports") / config.name


def trials_frame(study: optuna.Study, objectives: list[str]) -> pd.DataFrame:
    """One row per trial: number, state, objective values, architecture and MOTE details."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        row: dict[str, object] = {"number": trial.number, "state": trial.state.name}
        values = trial.values if trial.state == TrialState.COMPLETE else None
        for i, name in enumerate(objectives):
            row[name] = values[i] if values else None
        for key in ATTR_COLUMNS:
            if key not in objectives:
                row[key] = trial.user_attrs.get(key)
        row["feasible"] = all(v <= 0 for v in trial.constraints.values()) if values else None
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
    return front.sort_values(sort_by, ascending=ascending)[columns].reset_index(drop=True)


def write_report(study: optuna.Study, config: StudyConfig, out_dir: Path) -> dict[str, Path]:
    """Write pareto.csv, trials.csv and pareto.html (a self-contained plotly page) to out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "pareto": out_dir / "pareto.csv",
        "trials": out_dir / "trials.csv",
        "html": out_dir / "pareto.html",
    }
    pareto_frame(study, config.objectives).to_csv(paths["pareto"], index=False)
    trials_frame(study, config.objectives).to_csv(paths["trials"], index=False)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if complete and 2 <= len(config.objectives) <= 3:
        figure = optuna.visualization.plot_pareto_front(study, target_names=config.objectives)
        figure.update_layout(title=f"Pareto front of {config.name} ({len(complete)} trials)")
        figure.write_html(paths["html"], include_plotlyjs=True)
    else:
        paths.pop("html")
    return paths
