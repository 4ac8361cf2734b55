"""``bench latency-table DIR...``: the per-device table over seeds of ``bench latency
--published`` runs (their ``latency.json``), with issue 22's goals, as markdown and JSON.

Goals, per device column (phone columns in whole milliseconds are reported, not judged):
τ ≥ 0.90, τ ≥ FLOPs' τ + 0.10 and a mean relative error ≤ 10 % on NB201; τ ≥ 0.85 on anb.
Every figure is a mean over the runs (seeds) given, printed from their files. ``--reference
DIR...`` adds, per device, the mean τ of other runs (e.g. fitted on 100 networks beside runs
fitted on 20: issue 22's stretch) and the difference.
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
    parser.add_argument(
        "--reference", nargs="+", type=Path, default=[], help="runs to compare τ with"
    )


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


def add_reference(rows: list[dict[str, Any]], reference: list[dict[str, Any]]) -> None:
    """Each row gets the reference runs' mean τ for its device, and how many networks those
    were fitted on."""
    by_key = {(r["space"], r["column"]): r for r in summarize(reference)}
    for row in rows:
        ref = by_key.get((row["space"], row["column"]))
        row["reference_kendall_tau"] = ref["kendall_tau"] if ref else None
        row["reference_n_fit"] = ref["n_fit"] if ref else None


def markdown(rows: list[dict[str, Any]]) -> str:
    header = ["space", "device", "fitted on", "τ (mean)", "τ (min)", "ρ", "rel. error",
              "FLOPs τ", "ceiling τ", "goal"]  # fmt: skip
    compared = any(r.get("reference_kendall_tau") is not None for r in rows)
    if compared:
        header += ["reference τ (fitted on)", "τ - reference τ"]
    goals = {True: "met", False: "missed", None: "reported (whole ms)"}
    body = []
    for r in rows:
        line = [r["space"], r["device"], r["n_fit"], f"{r['kendall_tau']:.3f}",
                f"{r['min_kendall_tau']:.3f}", f"{r['spearman_rho']:.3f}",
                f"{100 * r['mean_relative_error']:.1f} %", f"{r['flops_kendall_tau']:.3f}",
                f"{r['ceiling_kendall_tau']:.3f}", goals[r["goal_met"]]]  # fmt: skip
        if compared:
            ref = r.get("reference_kendall_tau")
            line += (
                [f"{ref:.3f} ({r['reference_n_fit']})", f"{r['kendall_tau'] - ref:+.3f}"]
                if ref is not None
                else ["", ""]
            )
        body.append(line)
    lines = [markdown_table(header, body)]
    for space in sorted({r["space"] for r in rows}):
        judged = [r for r in rows if r["space"] == space and r["goal_met"] is not None]
        met = sum(r["goal_met"] for r in judged)
        lines.append(f"\n{space}: goal met on {met} of {len(judged)} judged device columns.")
    return "\n".join(lines)


def read_runs(runs: list[Path]) -> list[dict[str, Any]]:
    records = []
    for run in runs:
        path = run / "latency.json"
        if not path.is_file():
            raise UserError(f"{run}: no latency.json (a `bench latency --published` output)")
        record = json.loads(path.read_text())
        if "devices" not in record:
            raise UserError(f"{path}: not a `bench latency --published` output (no devices)")
        records.append(record)
    return records


def handler(args: argparse.Namespace) -> int:
    rows = summarize(read_runs(args.runs))
    if args.reference:
        add_reference(rows, read_runs(args.reference))
    text = markdown(rows)
    write_outputs(args.out, "table", {"rows": rows}, text)
    return 0


ENTRY = (HELP, add_arguments, handler)
