"""The layers every space shares: Keras-style BatchNorm and initialisation (as the MOTE authors'
code sets them) and MOTE's reduced network around a space's cell (MOTE_SPEC §4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

import torch
from torch import nn


class BatchNormArgs(TypedDict):
    momentum: float
    eps: float


# BatchNorm as the authors' Keras code sets it (momentum 0.997 in Keras terms, eps 1e-4).
KERAS_BN: BatchNormArgs = {"momentum": 0.003, "eps": 1e-4}


class ReducedNet(nn.Module):
    """MOTE's reduced architecture (MOTE_SPEC §4): conv-BN stem, cell, 4x4 pool, cell, GAP, FC."""

    def __init__(
        self, make_cell: Callable[[int], nn.Module], *, width: int, num_classes: int
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width, **KERAS_BN)
        )
        self.cell1 = make_cell(width)
        self.pool = nn.AvgPool2d(4, stride=4)
        self.cell2 = make_cell(width)
        self.head = nn.Linear(width, num_classes)
        keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cell2(self.pool(self.cell1(self.stem(x))))
        return self.head(x.mean(dim=(2, 3)))


def keras_init(model: nn.Module) -> None:
    """Keras defaults, as the authors' code uses them: glorot-uniform kernels, zero biases."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
