"""Real training of a full network, for ``evaluate`` and the ``train`` fidelity of ``select``.

A seeded per-label held-out split of the dataset, then SGD with the study's ``evaluation`` recipe
(default NB201's 12-epoch one: Nesterov momentum 0.9, lr 0.1 cosine to 0, weight decay 5e-4,
batch 256, random crop and flip); the accuracy is measured on the held-out split.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mote_optuna.config import EvaluationConfig
from mote_optuna.data import ImageArrays, TensorData
from mote_optuna.errors import UserError

__all__ = ["split", "train_and_test"]


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
    """Train ``model`` with ``recipe``; returns (held-out accuracy %, seconds)."""
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
                raise UserError(f"training diverged (loss {loss.item()}); lower evaluation.lr")
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
