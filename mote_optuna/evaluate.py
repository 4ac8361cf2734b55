"""``python -m mote_optuna evaluate study.yaml --top-k K | --pareto``: train the picked candidates.

The candidates are the top-k distinct architectures by MOTE, or the Pareto set
(``study.best_trials``). Each is trained as the space's full network (``space.build_full``) on the
evaluation dataset with the study's ``evaluation`` recipe (default NB201's 12-epoch one: SGD,
Nesterov momentum 0.9, lr 0.1 cosine to 0, weight decay 5e-4, batch 256), and its accuracy on a
held-out split is recorded. With ``--truth CSV`` (NB201) the benchmark's recorded 12-epoch
accuracy stands in for the training; the output says which one was used.

Optuna refuses user attrs on finished trials (``UpdateFinishedTrialError``), so the results are
stored in the study user attr ``evaluation``: ``{"trials": {"<number>": {...}}, "final_pick": N}``.
The final pick is the evaluated candidate with the highest accuracy; ``report`` shows ``eval_acc``
and ``final_pick`` columns.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
import torch.nn.functional as F
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from mote_optuna.config import EvaluationConfig, StudyConfig
from mote_optuna.data import ImageArrays, TensorData, load_arrays, to_tensor
from mote_optuna.errors import UserError
from mote_optuna.estimators.base import resolve_device
from mote_optuna.existing_study import load_existing_study
from mote_optuna.keys import ARCH_ATTR, ARCH_KEY_ATTR, EVALUATION_ATTR
from mote_optuna.spaces import SearchSpace, get_space
from mote_optuna.truth import accuracy_by_arch


def candidates(
    study: optuna.Study, objectives: list[str], *, top_k: int | None, pareto: bool
) -> list[FrozenTrial]:
    """Top-k distinct architectures by MOTE (best first), or the Pareto set."""
    if pareto:
        return sorted(study.best_trials, key=lambda t: t.number)
    index = objectives.index("mote") if "mote" in objectives else 0
    sign = -1.0 if study.directions[index] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    ranked = sorted(complete, key=lambda t: (sign * t.values[index], t.number))
    picked: dict[str, FrozenTrial] = {}
    for trial in ranked:
        key = trial.user_attrs.get(ARCH_KEY_ATTR, repr(sorted(trial.params.items())))
        picked.setdefault(key, trial)
        if top_k is not None and len(picked) >= top_k:
            break
    return list(picked.values())


def split(data: ImageArrays, test_fraction: float, seed: int) -> tuple[ImageArrays, ImageArrays]:
    """A seeded, per-label held-out split."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in range(data.num_classes):
        idx = rng.permutation(np.flatnonzero(data.y == label))
        n_test = max(1, round(test_fraction * len(idx))) if len(idx) > 1 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    tr, te = np.concatenate(train), np.concatenate(test)
    return (
        ImageArrays(data.x[tr], data.y[tr], data.class_names),
        ImageArrays(data.x[te], data.y[te], data.class_names),
    )


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop with 4-pixel zero padding and horizontal flip, per image, on x's device."""
    n, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dx = torch.randint(0, 9, (n,), generator=generator).to(x.device)
    dy = torch.randint(0, 9, (n,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    out = padded[batch, chans, rows, cols]
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def train_and_test(
    model: nn.Module, train: TensorData, test: TensorData, recipe: EvaluationConfig
) -> tuple[float, float]:
    """Train ``model`` with ``recipe``; returns (test accuracy %, seconds)."""
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(recipe.seed)
    model = model.to(train.x.device)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        nesterov=recipe.nesterov,
        weight_decay=recipe.weight_decay,
    )
    n = len(train.y)
    steps_per_epoch = max(1, math.ceil(n / recipe.batch_size))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=recipe.epochs * steps_per_epoch, eta_min=0.0
    )
    model.train()
    for _ in range(recipe.epochs):
        order = torch.randperm(n, generator=generator).to(train.x.device)
        for step in range(steps_per_epoch):
            idx = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
            x = train.x[idx]
            if recipe.augment:
                x = _augment(x, generator)
            loss = F.cross_entropy(model(x), train.y[idx])
            if not torch.isfinite(loss):
                raise UserError(
                    f"evaluate: training diverged (loss {loss.item()}); lower evaluation.lr"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(test.y), 1024):
            correct += int((model(test.x[i : i + 1024]).argmax(1) == test.y[i : i + 1024]).sum())
    return 100.0 * correct / max(1, len(test.y)), time.perf_counter() - start


def evaluate_study(
    study: optuna.Study,
    config: StudyConfig,
    *,
    top_k: int | None = None,
    pareto: bool = False,
    truth: Path | None = None,
    truth_column: str = "cifar10_test_acc_12ep",
    out: Any = print,
) -> dict[str, Any]:
    """Evaluate the candidates, store the results in the study and return them."""
    if (top_k is None) == (not pareto):
        raise UserError("evaluate: give exactly one of --top-k K or --pareto")
    if top_k is not None and top_k < 1:
        raise UserError(f"evaluate: --top-k must be at least 1, got {top_k}")
    space = get_space(config.space)
    picked = candidates(study, config.objectives, top_k=top_k, pareto=pareto)
    if not picked:
        raise UserError(f"evaluate: study {config.name!r} has no completed trials yet")
    recipe = config.evaluation
    if truth is not None:
        lookup = accuracy_by_arch(space, truth, truth_column)[0].to_dict()
        source = f"truth {truth.name}:{truth_column} (recorded, not trained)"
    else:
        dataset_config = recipe.dataset or config.dataset
        device = resolve_device(config.device)
        arrays = load_arrays(dataset_config)
        train_arrays, test_arrays = split(arrays, recipe.test_fraction, recipe.seed)
        res = space.full_net.resolution
        train = to_tensor(train_arrays, resolution=res, device=device)
        test = to_tensor(test_arrays, resolution=res, device=device)
        source = (
            f"trained: {recipe.epochs} epochs on {dataset_config.name} ({len(train.y)} train / "
            f"{len(test.y)} held-out images, {device.type})"
        )
    out(f"evaluating {len(picked)} candidates of {config.name!r}; accuracy from {source}")
    results: dict[str, dict[str, Any]] = {}
    for trial in picked:
        arch_str = trial.user_attrs.get(ARCH_ATTR) or space.to_str(space.from_params(trial.params))
        if truth is not None:
            if arch_str not in lookup:
                raise UserError(f"evaluate: {arch_str} is not in {truth} (column arch_str)")
            acc, seconds = lookup[arch_str], 0.0
        else:
            torch.manual_seed(recipe.seed)
            model = _build(space, space.from_params(trial.params), train.num_classes)
            acc, seconds = train_and_test(model, train, test, recipe)
        results[str(trial.number)] = {
            "eval_acc": round(float(acc), 4),
            "eval_source": source,
            "eval_seconds": round(seconds, 2),
            "arch": arch_str,
        }
        out(f"  trial {trial.number:<5} {arch_str}  acc {acc:.2f} %  ({seconds:.1f} s)")
    stored = dict(study.user_attrs.get(EVALUATION_ATTR) or {})
    trials = {**stored.get("trials", {}), **results}
    best = max(trials, key=lambda n: (trials[n]["eval_acc"], -int(n)))
    record = {
        "trials": trials,
        "final_pick": int(best),
        "recipe": {k: v for k, v in asdict(recipe).items() if k != "dataset"},
    }
    study.set_user_attr(EVALUATION_ATTR, record)
    out(
        f"final pick: trial {best} {trials[best]['arch']} at {trials[best]['eval_acc']:.2f} % "
        f"({trials[best]['eval_source']})"
    )
    return record


def _build(space: SearchSpace, arch: Any, num_classes: int) -> nn.Module:
    return space.build_full(arch, num_classes=num_classes)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--top-k", type=int, help="train the K best distinct cells by MOTE")
    group.add_argument("--pareto", action="store_true", help="train the Pareto set")
    parser.add_argument(
        "--truth", type=Path, help="NB201 ground truth CSV: use its recorded accuracy instead"
    )
    parser.add_argument(
        "--truth-column", default="cifar10_test_acc_12ep", help="accuracy column of --truth"
    )


def handler(args: argparse.Namespace, config: StudyConfig) -> int:
    study = load_existing_study(config)
    evaluate_study(
        study,
        config,
        top_k=args.top_k,
        pareto=args.pareto,
        truth=args.truth,
        truth_column=args.truth_column,
    )
    return 0
