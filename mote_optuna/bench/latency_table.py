"""``bench latency-table DIR...``: the per-device table over seeds of ``bench latency
--published`` runs (their ``latency.json``), with issue 22's goals, as markdown and JSON.

Goals, per device column (phone columns in whole milliseconds are reported, not judged):
τ ≥ 0.90, τ ≥ FLOPs' τ + 0.10 and a mean relative error ≤ 10 % on NB201; τ ≥ 0.85 on anb.
Every figure is a mean over the runs (seeds) given, printed from their files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from mote_optuna.bench.output import markdown_table, write_outputs
from mote_optuna.errors import UserError

HELP = "per-device table over seeds of `bench latency --published` runs, with the goals"
COLUMNS = ("kendall_tau", "spearman_rho", "mean_relative_error", "flops_kendall_tau",
           "ceiling_kendall_tau")  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, help="folders with latency.json")
    parser.add_argument("--out", type=Path, required=True, help="folder of table.md, table.json")


def goal_met(space: str, row: dict[str, Any]) -> bool | None:
    """Issue 22's goal for one device's means; None where it is reported only."""
    if row["whole_ms"]:
        return None
    if space == "anb":
        return bool(row["kendall_tau"] >= 0.85)
    return bool(
        row["kendall_tau"] >= 0.90
        and row["kendall_tau"] >= row["flops_kendall_tau"] + 0.10
        and row["mean_relative_error"] <= 0.10
    )


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for space in sorted({r["space"] for r in records}):
        runs = [r for r in records if r["space"] == space]
        for column, first in runs[0]["devices"].items():
            per_seed = [r["devices"][column] for r in runs if column in r["devices"]]
            row: dict[str, Any] = {"space": space, "device": first["device"], "column": column}
            row["seeds"] = sorted(r["seed"] for r in runs if column in r["devices"])
            row["n_fit"] = first["n_fit"]
            for name in COLUMNS:
                row[name] = float(np.mean([d[name] for d in per_seed]))
            row["min_kendall_tau"] = float(min(d["kendall_tau"] for d in per_seed))
            row["whole_ms"] = bool(first["whole_ms"])
            row["goal_met"] = goal_met(space, row)
            rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    header = ["space", "device", "fitted on", "τ (mean)", "τ (min)", "ρ", "rel. error",
              "FLOPs τ", "ceiling τ", "goal"]  # fmt: skip
    goals = {True: "met", False: "missed", None: "reported (whole ms)"}
    lines = [markdown_table(header, [
        [r["space"], r["device"], r["n_fit"], f"{r['kendall_tau']:.3f}",
         f"{r['min_kendall_tau']:.3f}", f"{r['spearman_rho']:.3f}",
         f"{100 * r['mean_relative_error']:.1f} %", f"{r['flops_kendall_tau']:.3f}",
         f"{r['ceiling_kendall_tau']:.3f}", goals[r["goal_met"]]]
        for r in rows
    ])]  # fmt: skip
    for space in sorted({r["space"] for r in rows}):
        judged = [r for r in rows if r["space"] == space and r["goal_met"] is not None]
        met = sum(r["goal_met"] for r in judged)
        lines.append(f"\n{space}: goal met on {met} of {len(judged)} judged device columns.")
    return "\n".join(lines)


def handler(args: argparse.Namespace) -> int:
    records = []
    for run in args.runs:
        path = run / "latency.json"
        if not path.is_file():
            raise UserError(f"{run}: no latency.json (a `bench latency --published` output)")
        record = json.loads(path.read_text())
        if "devices" not in record:
            raise UserError(f"{path}: not a `bench latency --published` output (no devices)")
        records.append(record)
    rows = summarize(records)
    text = markdown(rows)
    write_outputs(args.out, "table", {"rows": rows}, text)
    return 0


ENTRY = (HELP, add_arguments, handler)
