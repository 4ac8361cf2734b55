"""optuna-dashboard for a mote_optuna study: the server, the study note and the pushed figures.

``python -m mote_optuna dashboard study.yaml`` calls :func:`serve`. It runs
:func:`optuna_dashboard.run_server` in this process rather than the ``optuna-dashboard`` CLI in a
subprocess, because then

- the storage is the one :func:`mote_optuna.storage.make_storage` opens: ``journal:PATH`` URLs,
  the SQLite timeout, and a PostgreSQL password read from ``$MOTE_OPTUNA_DB_PASSWORD``, so the
  password never appears on a command line (``ps``) or in the printed URL;
- the artifact store is the same :func:`mote_optuna.artifacts.make_artifact_store` the workers
  upload to, with no path to spell twice.

Optuna-5 constraints (``Trial.set_constraint``) are invisible to optuna-dashboard 0.21
(OPTUNA_NOTES §2), so :func:`push_figures` stores plotly figures in the study with
:func:`optuna_dashboard.save_plotly_graph_object`: the hypervolume history, optuna's Pareto
front (which colours infeasible trials itself) and a FLOPs-params map of every measured
candidate coloured by feasibility (candidates over budget end PRUNED, so no Pareto plot shows
them). Fixed ids make each push replace the previous figure. ``run`` pushes them at the end of a
run, ``report`` refreshes them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import socket
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import optuna
import torch
import yaml
from optuna.trial import FrozenTrial, TrialState

from mote_optuna.artifacts import artifact_dir, make_artifact_store
from mote_optuna.config import StudyConfig
from mote_optuna.errors import UserError
from mote_optuna.existing_study import load_existing_study
from mote_optuna.keys import ARCH_ATTR, FLOPS_ATTR, LATENCY_ATTR, PARAMS_ATTR
from mote_optuna.storage.factory import make_storage
from mote_optuna.storage.secrets import known_secrets, mask_secrets
from mote_optuna.storage.url import mask_url

__all__ = [
    "FIGURE_IDS",
    "note_selection",
    "push_figures",
    "reference_point",
    "save_study_note",
    "serve",
    "study_note",
]

FIGURE_IDS = ("hypervolume-history", "pareto-front", "feasibility")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


# --------------------------------------------------------------------------------------------
# Study note


def package_version() -> str:
    """mote_optuna's installed version ("unknown" when it runs from a bare checkout)."""
    try:
        return version("mote_optuna")
    except PackageNotFoundError:
        return "unknown"


def _machine() -> dict[str, str]:
    if torch.cuda.is_available():
        accelerator = ", ".join(
            torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
        )
    else:
        accelerator = "none (CPU)"
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "accelerator": accelerator,
        "python": platform.python_version(),
        "optuna": optuna.__version__,
        "torch": torch.__version__,
    }


def _config_dict(config: StudyConfig) -> dict[str, Any]:
    raw = dataclasses.asdict(config)
    raw.pop("source", None)
    raw["storage"] = mask_url(config.storage_url)
    return raw


def _objectives(config: StudyConfig) -> str:
    pairs = zip(config.objectives, config.directions, strict=True)
    return ", ".join(f"{name} ({direction})" for name, direction in pairs)


def study_note(
    config: StudyConfig,
    estimator: dict[str, Any] | None = None,
    *,
    artifacts: str | None = None,
    latency: dict[str, Any] | None = None,
) -> str:
    """The study's markdown note: config, machine, estimator budget and latency runtime/table."""
    machine = "\n".join(f"| {key} | {value} |" for key, value in _machine().items())
    config_yaml = yaml.safe_dump(_config_dict(config), sort_keys=False).rstrip()
    budget = json.dumps(estimator or {}, indent=2, sort_keys=True, default=str)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    text = f"""# {config.name}

Created {now} by mote_optuna {package_version()} from `{config.source}`.
Objectives: {_objectives(config)}.
Storage: `{mask_url(config.storage_url)}`. Artifacts: `{artifacts or artifact_dir(config)}`.

## Machine

| | |
|---|---|
{machine}

## Estimator budget

```json
{budget}
```

{_latency_section(latency)}## Study file (after --set overrides)

```yaml
{config_yaml}
```

Constraints are Optuna-5 constraints, which this dashboard does not show: see the plotly
figures "feasibility" and "pareto-front" on the study page (refreshed by `run` and `report`).
"""
    return mask_secrets(text, known_secrets(config.storage_url))


def save_study_note(
    study: optuna.Study, config: StudyConfig, metadata: dict[str, Any] | None = None
) -> None:
    """Write :func:`study_note` as the study's dashboard note (call once, at study creation)."""
    from optuna_dashboard import save_note

    metadata = metadata or {}
    note = study_note(config, metadata.get("estimator"), latency=metadata.get("latency"))
    save_note(study, note)


SELECTION_HEADING = "## Final pick (top-k stage)"


def note_selection(study: optuna.Study, record: dict[str, Any]) -> None:
    """Put the top-k stage's pick (``select``) at the end of the study's note, replacing the
    section a previous run wrote."""
    from optuna_dashboard import get_note, save_note

    note = get_note(study).split(SELECTION_HEADING)[0].rstrip()
    pick = record["pick"]
    column = f" `{record['column']}`" if record.get("column") else ""
    weights = record.get("weights")
    reweighted = (
        "\n\nFew-query mode (uses labels): ensemble terms re-weighted to "
        + ", ".join(f"{name} {w:g}" for name, w in weights.items())
        if weights
        else ""
    )
    section = (
        f"{SELECTION_HEADING}\n\nTrial {pick['trial']} `{pick['arch']}`: "
        f"{pick['fidelity_value']:.2f} ({record['fidelity']}{column}), the best of "
        f"{record['queries']} queries (budget {record['top_k']}; candidates ranked by "
        f"{record['score']})."
        f"{reweighted}\n"
    )
    save_note(study, f"{note}\n\n{section}" if note else section)


def latency_line(latency: dict[str, Any]) -> str:
    """The study's latency runtime and table (``LatencyMeter.describe``) in a few words."""
    if latency.get("runtime") == "published":
        model = latency.get("model")
        how = f"{model['kind']} fitted on {model['fitted_on']} networks" if model else "its row"
        return f"published {latency['device']} ({how}; table {latency['file_sha256']})"
    how = (
        f"{latency['runtime']}, {latency['threads']} thread(s), batch {latency['batch_size']}, "
        f"{latency.get('clock', 'wall')} clock"
    )
    table = latency.get("table")
    return f"{how}, table {table['digest']}" if table else f"{how}, measured per candidate"


def _latency_section(latency: dict[str, Any] | None) -> str:
    """The runtime and the table in the note, when the study has a latency section."""
    if not latency:
        return ""
    table = latency.get("table")
    detail = (
        f" (key {table['key']}, {table['entries']} entries, overhead {table['overhead_ms']} ms, "
        f"CPU {table['cpu']})"
        if table
        else ""
    )
    return f"## Latency\n\nMilliseconds on {latency_line(latency)}{detail}.\n\n"


# --------------------------------------------------------------------------------------------
# Figures


def reference_point(study: optuna.Study) -> list[float] | None:
    """A hypervolume reference point: the worst value of each objective, 10 % further out."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not trials:
        return None
    point = []
    for i, direction in enumerate(study.directions):
        column = [t.values[i] for t in trials]
        low, high = min(column), max(column)
        margin = 0.1 * (high - low) or 0.1 * abs(high) or 1.0
        minimize = direction == optuna.study.StudyDirection.MINIMIZE
        point.append(high + margin if minimize else low - margin)
    return point


def _feasible(trial: FrozenTrial) -> bool:
    return all(v <= 0 for v in trial.constraints.values())


def feasibility_figure(study: optuna.Study, config: StudyConfig) -> Any:
    """FLOPs vs params (vs latency, when the study has it) of every measured candidate,
    coloured feasible / over budget / front."""
    import plotly.graph_objects as go

    y_attr = LATENCY_ATTR if config.latency is not None else PARAMS_ATTR
    front = {t.number for t in study.best_trials}
    groups: dict[str, list[FrozenTrial]] = {"Pareto front": [], "feasible": [], "over budget": []}
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        if not isinstance(attrs.get(FLOPS_ATTR), int | float) or y_attr not in attrs:
            continue
        if not _feasible(trial):
            groups["over budget"].append(trial)
        elif trial.number in front:
            groups["Pareto front"].append(trial)
        elif trial.state == TrialState.COMPLETE:
            groups["feasible"].append(trial)
    colours = {"Pareto front": "#d62728", "feasible": "#1f77b4", "over budget": "#7f7f7f"}
    symbols = {"Pareto front": "diamond", "feasible": "circle", "over budget": "x"}
    figure = go.Figure()
    for name, trials in groups.items():
        figure.add_trace(
            go.Scatter(
                x=[t.user_attrs[FLOPS_ATTR] for t in trials],
                y=[t.user_attrs[y_attr] for t in trials],
                mode="markers",
                name=f"{name} ({len(trials)})",
                marker={"color": colours[name], "size": 9, "symbol": symbols[name]},
                text=[f"trial {t.number}<br>{t.user_attrs.get(ARCH_ATTR, '')}" for t in trials],
                hoverinfo="text+x+y",
            )
        )
    budget = config.constraints
    if budget.max_flops is not None:
        figure.add_vline(x=budget.max_flops, line_dash="dash", annotation_text="max_flops")
    y_budget = budget.max_latency_ms if y_attr == LATENCY_ATTR else budget.max_params
    if y_budget is not None:
        name = "max_latency_ms" if y_attr == LATENCY_ATTR else "max_params"
        figure.add_hline(y=y_budget, line_dash="dash", annotation_text=name)
    figure.update_layout(
        title=f"Feasibility of {config.name}: FLOPs vs {y_attr} of every measured candidate",
        xaxis_title="flops (MMACs)",
        yaxis_title="latency (ms)" if y_attr == LATENCY_ATTR else "params (M)",
    )
    return figure


def figures(study: optuna.Study, config: StudyConfig) -> dict[str, Any]:
    """The dashboard figures by id (those that the study's trials allow)."""
    out: dict[str, Any] = {}
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        point = reference_point(study)
        if complete and point is not None and len(config.objectives) >= 2:
            figure = optuna.visualization.plot_hypervolume_history(study, reference_point=point)
            shown = ", ".join(
                f"{n}={v:.4g}" for n, v in zip(config.objectives, point, strict=True)
            )
            figure.update_layout(title=f"Hypervolume history (reference point {shown})")
            out["hypervolume-history"] = figure
        if complete and 2 <= len(config.objectives) <= 3:
            figure = optuna.visualization.plot_pareto_front(study, target_names=config.objectives)
            figure.update_layout(title=f"Pareto front of {config.name} (feasible trials only)")
            out["pareto-front"] = figure
    measured = study.get_trials(deepcopy=False)
    if any(isinstance(t.user_attrs.get(FLOPS_ATTR), int | float) for t in measured):
        out["feasibility"] = feasibility_figure(study, config)
    return out


def push_figures(study: optuna.Study, config: StudyConfig) -> list[str]:
    """Store :func:`figures` in the study for optuna-dashboard; returns the ids pushed."""
    from optuna_dashboard import save_plotly_graph_object

    pushed = []
    for graph_id, figure in figures(study, config).items():
        save_plotly_graph_object(study, figure, graph_object_id=graph_id)
        pushed.append(graph_id)
    return pushed


# --------------------------------------------------------------------------------------------
# Server


def dashboard_url(host: str, port: int, study_id: int | None = None) -> str:
    shown = f"[{host}]" if ":" in host else host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else shown
    path = f"/dashboard/studies/{study_id}" if study_id is not None else "/dashboard"
    return f"http://{shown}:{port}{path}"


def serve(
    config: StudyConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    out: Callable[[str], None] = print,
) -> None:
    """Serve optuna-dashboard for ``config``'s study and its artifacts until interrupted."""
    from optuna_dashboard import run_server

    if not 0 < port < 65536:
        raise UserError(f"--port {port}: use a port number from 1 to 65535")
    load_existing_study(config)  # a clear error when there is no such study; creates nothing
    storage = make_storage(config.storage_url, workers=1)
    study_id = storage.get_study_id_from_name(config.name)
    store = None if config.artifacts == "off" else make_artifact_store(config)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port"
            ) from None
    if host not in _LOOPBACK:
        out(
            f"warning: listening on {host}: optuna-dashboard has no login, anyone who can reach "
            "this port can read and edit the study"
        )
    out(f"optuna-dashboard for study {config.name!r} ({mask_url(config.storage_url)})")
    out(f"artifacts: {artifact_dir(config)}")
    out(
        f"open {dashboard_url(host, port, study_id)}   (Ctrl-C stops it)",
    )
    run_server(storage, host=host, port=port, artifact_store=store)
