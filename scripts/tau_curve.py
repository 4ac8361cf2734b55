"""τ versus seconds per cell over several ``bench correlation`` runs (one per budget).

    python scripts/tau_curve.py OUT.html RUN_DIR [RUN_DIR ...]

Prints a markdown table (budget, cells, median and p90 seconds, τ of MOTE / landscape / speed /
params on CIFAR-10) and writes a plotly chart of τ(MOTE, CIFAR-10) against median seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    out, runs = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    rows = []
    for run in runs:
        result = json.loads((run / "correlation.json").read_text())
        s, sec = result["settings"], result["seconds_per_arch"]
        tau = {k: v["kendall_tau"]["cifar10"] for k, v in result["scores"].items()}
        label = (
            f"e{s['epochs']} i{s['images_per_label']} w{s['width']} r{s['resolution']} "
            f"p{s['landscape_points']} {s['landscape_mode']}"
        )
        rows.append((sec["median"], label, result["n"], sec["p90"], tau))
    rows.sort()
    print("| budget | cells | median s | p90 s | τ MOTE | τ landscape | τ speed | τ params |")
    print("|---|---|---|---|---|---|---|---|")
    for median, label, n, p90, tau in rows:
        print(
            f"| {label} | {n} | {median:.2f} | {p90:.2f} | {tau['mote']:.3f} | "
            f"{tau['landscape']:.3f} | {tau['speed']:.3f} | {tau['params']:.3f} |"
        )
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Scatter(
            x=[r[0] for r in rows],
            y=[r[4]["mote"] for r in rows],
            text=[r[1] for r in rows],
            mode="lines+markers+text",
            textposition="top center",
        )
    )
    fig.update_layout(
        xaxis_title="median seconds per cell", yaxis_title="Kendall τ (MOTE vs CIFAR-10)"
    )
    fig.write_html(out, include_plotlyjs=True)


if __name__ == "__main__":
    main()
