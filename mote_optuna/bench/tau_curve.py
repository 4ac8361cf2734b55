"""``bench tau-curve RUN...``: Kendall τ against seconds per cell over several ``bench
correlation`` runs (one per budget).

One row per run, fastest first: its budget (epochs, images per label, width, resolution,
landscape points and mode), cells, median and p90 seconds per cell, and τ of each ``--scores``
against the ``--target`` dataset. ``DIR/tau_curve.{json,md}``, and ``DIR/tau_curve.html``: a
plotly chart of τ of the first score against median seconds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mote_optuna.bench.output import markdown_table, write_outputs
from mote_optuna.errors import UserError

HELP = "Kendall τ against seconds per cell over bench correlation runs of several budgets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", type=Path, nargs="+", help="bench correlation --out folders")
    parser.add_argument("--scores", default="mote,landscape,speed,params", help="τ of these")
    parser.add_argument("--target", default="cifar10", help="the dataset τ is measured on")
    parser.add_argument("--out", type=Path, required=True, help="folder of tau_curve.{json,md}")


def budget_label(settings: dict[str, Any]) -> str:
    """``e8 i50 w16 r16 p11 train``: a run's budget in one short label."""
    s = settings
    return (
        f"e{s['epochs']} i{s['images_per_label']} w{s['width']} r{s['resolution']} "
        f"p{s['landscape_points']} {s['landscape_mode']}"
    )


def read_run(path: Path, scores: list[str], target: str) -> dict[str, Any]:
    if not (path / "correlation.json").is_file():
        raise UserError(f"{path}: not a bench correlation output (no correlation.json)")
    result = json.loads((path / "correlation.json").read_text())
    missing = [
        s for s in scores if target not in result["scores"].get(s, {}).get("kendall_tau", {})
    ]
    if missing:
        raise UserError(f"{path}: no τ on {target} of {', '.join(missing)}")
    seconds = result["seconds_per_arch"]
    return {
        "run": str(path),
        "budget": budget_label(result["settings"]),
        "cells": result["n"],
        "median_s": seconds["median"],
        "p90_s": seconds["p90"],
        "tau": {s: result["scores"][s]["kendall_tau"][target] for s in scores},
    }


def write_plot(rows: list[dict[str, Any]], score: str, target: str, path: Path) -> None:
    import plotly.graph_objects as go

    figure = go.Figure(
        go.Scatter(
            x=[r["median_s"] for r in rows],
            y=[r["tau"][score] for r in rows],
            text=[r["budget"] for r in rows],
            mode="lines+markers+text",
            textposition="top center",
        )
    )
    figure.update_layout(
        xaxis_title="median seconds per cell", yaxis_title=f"Kendall τ ({score} vs {target})"
    )
    figure.write_html(path, include_plotlyjs=True)


def handler(args: argparse.Namespace) -> int:
    scores = [s.strip() for s in args.scores.split(",") if s.strip()]
    rows = sorted(
        (read_run(path, scores, args.target) for path in args.runs),
        key=lambda r: (r["median_s"], r["budget"]),
    )
    text = markdown_table(
        ["budget", "cells", "median s", "p90 s", *(f"τ {s}" for s in scores)],
        [
            [r["budget"], r["cells"], f"{r['median_s']:.2f}", f"{r['p90_s']:.2f}",
             *(f"{r['tau'][s]:.3f}" for s in scores)]
            for r in rows
        ],
    )  # fmt: skip
    write_outputs(args.out, "tau_curve", {"target": args.target, "rows": rows}, text)
    write_plot(rows, scores[0], args.target, args.out / "tau_curve.html")
    return 0


ENTRY = (HELP, add_arguments, handler)
