"""``bench correlation``: rank correlation of MOTE and baselines with benchmark ground truth.

Samples N distinct cells of the truth table (seeded), or takes those listed in ``--cells``, scores
each with MOTE at one budget, and computes baselines on the same cells (params, FLOPs, SynFlow,
NASWOT, grad-norm of the full network). Reports Kendall τ and Spearman ρ against the 200-epoch
test accuracy on CIFAR-10, CIFAR-100 and ImageNet16-120, and seconds per cell. Every cell is
appended to ``DIR/cells.jsonl`` as soon as it is scored, so an interrupted run resumes where it
stopped.

Both speed clocks are measured on the same training run, so ``mote_wall`` and ``mote_flops``
compare the clocks without retraining. With ``--released`` the terms are also compared with the
MOTE authors' released terms on the same cells (fidelity of the port).

The estimator and its data are a study's: ``--study FILE`` takes its ``estimator:`` and
``dataset:`` sections, and ``--set estimator.FIELD=VALUE`` overrides them as ``run --set`` does
(the same validation). ``--data NPZ`` is ``dataset: {name: npz, path: NPZ}``; the older
estimator flags (``ALIASES``, e.g. ``--epochs 3``) are the ``--set`` they stand for.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mote_optuna.bench.correlation.cells import Run, reference_archs, score_cells, spread
from mote_optuna.bench.correlation.stats import print_table, summarise, write_plot
from mote_optuna.bench.manifest import MANIFEST_KEY, manifest
from mote_optuna.config import StudyConfig, apply_override, config_from_dict, load_config
from mote_optuna.errors import UserError
from mote_optuna.estimators.az_nas import AZ_NAS_BATCH
from mote_optuna.estimators.ensemble import MIN_FINITE
from mote_optuna.estimators.mote import MoteSettings
from mote_optuna.estimators.settings import REFERENCE_POPULATION
from mote_optuna.estimators.zero_cost import NASWOT_BATCH
from mote_optuna.set_flags import SetFlag
from mote_optuna.spaces import get_space
from mote_optuna.spaces.base import truth_of

# The estimator flags of earlier versions, each the ``--set`` it stands for (commands in docs/).
ALIASES = {
    "--budget": "estimator.budget",
    "--epochs": "estimator.epochs",
    "--batch-size": "estimator.batch_size",
    "--images-per-label": "estimator.images_per_label",
    "--landscape-points": "estimator.landscape_points",
    "--landscape-mode": "estimator.landscape_mode",
    "--speed-clock": "estimator.speed_clock",
    "--width": "estimator.width",
    "--resolution": "estimator.resolution",
    "--lr": "estimator.lr",
    "--formula": "estimator.formula",
    "--estimator-seed": "estimator.seed",
}
SECTIONS = ("estimator", "dataset")  # what the bench takes of a study
HELP = "Kendall τ / Spearman ρ of MOTE and baselines vs a benchmark's accuracy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--truth", type=Path, required=True, help="ground-truth CSV")
    parser.add_argument(
        "--study", type=Path, help="a study file: its estimator: and dataset: sections"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override estimator.FIELD or dataset.FIELD, as run --set does (repeatable)",
    )
    parser.add_argument(
        "--data", type=Path, help="npz with x (uint8) and y (= dataset name npz at this path)"
    )
    parser.add_argument(
        "--space",
        default="nb201",
        help="a registered space with a ground-truth table (nb201, nb101, nb-macro, anb) or an "
        "import path module:Class",
    )
    parser.add_argument("--n", type=int, default=200, help="number of distinct cells")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cell sample")
    parser.add_argument(
        "--tuning-n",
        type=int,
        default=0,
        help="for a held-out seed: leave out the tuning sample (the first N of seed 0's draw)",
    )
    parser.add_argument(
        "--cells",
        type=Path,
        help="score these cells instead of a seeded sample: a text file, one arch string of "
        "--truth per line (e.g. the largest cells, where a search spends its trials)",
    )
    for flag, dotted in ALIASES.items():
        parser.add_argument(flag, dest="set", action=SetFlag, field=dotted)
    parser.add_argument(
        "--reference",
        type=int,
        default=REFERENCE_POPULATION,
        help="size of the ensemble's reference population, drawn as a study's warm-up "
        f"(default {REFERENCE_POPULATION}, a study's default; at least {MIN_FINITE})",
    )
    parser.add_argument(
        "--reference-seed", type=int, default=0, help="seed of the reference population"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: local_pool.py has the why)",
    )
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


def study_settings(study: Path | None, data: Path | None, overrides: list[str]) -> StudyConfig:
    """The study file (else a study of defaults) with ``data`` as its dataset and ``overrides``
    applied, validated as ``run --set`` is; only its ``SECTIONS`` are overridden."""
    for item in overrides:
        if item.partition("=")[0].strip().split(".")[0] not in SECTIONS:
            raise UserError(
                f"--set {item!r}: bench correlation takes estimator.FIELD=VALUE or "
                "dataset.FIELD=VALUE"
            )
    if data is not None:
        if not data.is_file():
            raise UserError(f"--data {data}: no such file")
        overrides = ["dataset.name=npz", f"dataset.path={json.dumps(str(data))}", *overrides]
    if study is not None:
        config = load_config(study, overrides)
    else:
        where = "bench correlation"
        raw: dict[str, Any] = {"name": "bench-correlation"}
        for item in overrides:
            apply_override(raw, item, where)
        config = config_from_dict(raw, where)
    if config.estimator.kind != "mote":
        raise UserError(
            f"{config.source}: estimator.kind: bench correlation trains MOTE ('mote'), "
            f"got {config.estimator.kind!r}"
        )
    return config


def sample_cells(truth: pd.DataFrame, n: int, seed: int, tuning_n: int = 0) -> pd.DataFrame:
    """N distinct rows, seeded; the first k of a sample of n are the sample of k (a prefix).
    ``tuning_n``: leave out the tuning sample, the first ``tuning_n`` rows of seed 0's draw (for
    a held-out seed; the rest of the draw keeps its order, so a cache stays valid)."""
    order = np.random.default_rng(seed).permutation(len(truth))
    if tuning_n and seed != 0:
        tuning = set(np.random.default_rng(0).permutation(len(truth))[:tuning_n].tolist())
        order = np.array([i for i in order if i not in tuning], dtype=int)
    if n > len(order):
        raise UserError(f"--n {n}: the truth table has only {len(order)} cells to draw from")
    return truth.iloc[order[:n]].reset_index(drop=True)


def listed_cells(truth: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The rows of ``truth`` named in ``path`` (one arch string per line), in its order."""
    if not path.is_file():
        raise UserError(f"--cells {path}: no such file")
    names = list(dict.fromkeys(line.strip() for line in path.read_text().splitlines()))
    names = [n for n in names if n]
    known = set(truth.arch_str)
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UserError(
            f"--cells {path}: {len(unknown)} of {len(names)} lines are not an arch_str of --truth "
            f"(first: {unknown[0] if unknown else 'the file is empty'}); write one per line"
        )
    return truth.set_index("arch_str").loc[names].reset_index()


def handler(args: argparse.Namespace) -> int:
    if args.reference < MIN_FINITE:
        raise UserError(
            f"--reference {args.reference}: the ensemble's reference population needs at least "
            f"{MIN_FINITE} networks to scale each term"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    config = study_settings(args.study, args.data, args.set)
    run = Run(
        space=args.space,
        estimator=config.estimator,
        dataset=config.dataset,
        reference=args.reference,
        reference_seed=args.reference_seed,
        device=args.device,
        memory_format=args.memory_format,
        baseline_batch=args.baseline_batch,
        baselines=not args.no_baselines,
    )
    settings = MoteSettings.from_config(run.estimator)
    space = get_space(args.space)
    truth = truth_of(space).read_truth(args.truth)
    if args.cells is not None:
        cells = listed_cells(truth, args.cells)
    else:
        cells = sample_cells(truth, args.n, args.seed, args.tuning_n)
    released = pd.read_csv(args.released) if args.released else None
    cache = score_cells(run, cells, args.out)
    result = summarise(
        cells,
        cache,
        settings,
        released,
        space,
        reference_archs(run),
        scores_csv=args.out / "scores.csv",
    )
    result.update(
        {
            "args": {k: str(v) for k, v in vars(args).items() if k != "handler"},
            "space": space.name,
            MANIFEST_KEY: manifest(args.argv),
        }
    )
    if args.spread_cells:
        result["spread"] = spread(run, cells, args.spread_cells, args.spread_repeats)
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
