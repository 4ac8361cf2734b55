"""``bench table``: the multi-seed, multi-space table of several ``bench correlation`` runs.

Reads each run's ``correlation.json``, groups them by space and by the seed of the sample, and
prints, per space, target and statistic (Kendall τ, Spearman ρ), one column per seed and the mean
over the held-out seeds (every seed but ``--tuned-seed``), with the median seconds per
architecture. The same table goes to ``DIR/table.json`` and ``DIR/table.md`` (the markdown that
docs/BENCHMARKS.md quotes); nothing is averaged by hand.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from mote_optuna.bench.manifest import MANIFEST_KEY, manifest
from mote_optuna.errors import UserError

HELP = "τ and ρ per score, space, target and seed from bench correlation runs; held-out means"
# The scores every space has, first; then the others a run has, in this order.
MAIN_SCORES = ("ensemble", "az_nas", "mote", "params", "flops")
OTHER_SCORES = (
    "landscape", "speed", "az_expressivity", "az_progressivity", "az_trainability",
    "live_flops", "live_params", "meco", "naswot", "synflow", "grad_norm", "released_mote",
)  # fmt: skip
STATS = (("kendall_tau", "τ"), ("spearman_rho", "ρ"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", type=Path, nargs="+", help="bench correlation --out folders")
    parser.add_argument("--tuned-seed", type=int, default=0, help="the seed tuned on (default 0)")
    parser.add_argument("--out", type=Path, help="write table.json and table.md here")
    parser.add_argument(
        "--all-scores", action="store_true", help=f"every score, not only {', '.join(MAIN_SCORES)}"
    )


def load_runs(paths: list[Path]) -> dict[str, dict[int, dict[str, Any]]]:
    """space -> seed -> correlation.json; two runs of one space and seed are an error."""
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    for path in paths:
        file = path / "correlation.json" if path.is_dir() else path
        try:
            result = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(
                f"bench table: {file}: not a bench correlation output ({exc})"
            ) from None
        space = result.get("space") or result["args"].get("space", "nb201")
        seed = int(result["args"]["seed"])
        if seed in runs.setdefault(space, {}):
            raise UserError(f"bench table: two runs of {space} seed {seed}; give one of them")
        runs[space][seed] = result
    return runs


def build_table(
    runs: dict[str, dict[int, dict[str, Any]]], tuned_seed: int, all_scores: bool = False
) -> dict[str, Any]:
    """Per space: seeds, held-out seeds, per target and statistic each score's values by seed
    and the held-out mean, and the seconds per architecture."""
    table: dict[str, Any] = {}
    for space, by_seed in sorted(runs.items()):
        seeds = sorted(by_seed)
        held_out = [s for s in seeds if s != tuned_seed]
        present = set.intersection(*(set(r["scores"]) for r in by_seed.values()))
        order = [*MAIN_SCORES, *(OTHER_SCORES if all_scores else ())]
        names = [n for n in order if n in present]
        targets = next(iter(by_seed.values()))["targets"]
        entry: dict[str, Any] = {"seeds": seeds, "held_out": held_out, "stats": {}}
        for stat, _ in STATS:
            for target in targets:
                rows = {}
                for name in names:
                    values = {
                        s: by_seed[s]["scores"][name][stat].get(target, math.nan) for s in seeds
                    }
                    held = [values[s] for s in held_out]
                    mean = float(np.nanmean(held)) if held else math.nan
                    rows[name] = {"by_seed": values, "held_out_mean": mean}
                entry["stats"][f"{stat}.{target}"] = rows
        entry["n"] = {s: by_seed[s]["n"] for s in seeds}
        entry["seconds_per_arch"] = {
            s: by_seed[s]["seconds_per_arch"].get("ensemble_median", math.nan) for s in seeds
        }
        table[space] = entry
    return table


def markdown(table: dict[str, Any], tuned_seed: int) -> str:
    lines: list[str] = []
    for space, entry in table.items():
        seeds = entry["seeds"]
        header = [f"seed {s}" + (" (tuned)" if s == tuned_seed else "") for s in seeds]
        for key, rows in entry["stats"].items():
            stat, target = key.split(".", 1)
            label = dict(STATS)[stat]
            lines += [f"**{space}, {label} {target}**", ""]
            lines.append("| score | " + " | ".join(header) + " | held-out mean |")
            lines.append("|---" * (len(seeds) + 2) + "|")
            for name, row in rows.items():
                cells = " | ".join(_fmt(row["by_seed"][s]) for s in seeds)
                lines.append(f"| {name} | {cells} | {_fmt(row['held_out_mean'])} |")
            lines.append("")
        n = ", ".join(f"seed {s}: {entry['n'][s]}" for s in seeds)
        sec = ", ".join(f"seed {s}: {_fmt(entry['seconds_per_arch'][s], 2)}" for s in seeds)
        lines += [f"{space}: architectures scored ({n}); ensemble seconds per architecture, "
                  f"median, all parts ({sec})", ""]  # fmt: skip
    return "\n".join(lines)


def _fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def handler(args: argparse.Namespace) -> int:
    table = build_table(load_runs(args.runs), args.tuned_seed, args.all_scores)
    text = markdown(table, args.tuned_seed)
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        payload = {
            "tuned_seed": args.tuned_seed,
            "spaces": table,
            MANIFEST_KEY: manifest(args.argv),
        }
        (args.out / "table.json").write_text(json.dumps(payload, indent=1))
        (args.out / "table.md").write_text(text + "\n")
        print(f"wrote {args.out / 'table.json'}, {args.out / 'table.md'}")
    return 0


ENTRY = (HELP, add_arguments, handler)
