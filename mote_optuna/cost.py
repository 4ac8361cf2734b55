"""FLOPs and parameters of a full-size network.

Unit: ``flops`` is millions of multiply-accumulates (MMACs) of the forward pass of one image, i.e.
``torch.utils.flop_counter`` FLOPs / 2. That is the convention of NAS-Bench-201 and of the
MobileNet papers ("400 MFLOPs"), so published numbers compare directly. ``params`` is millions of
parameters (all of them, trainable or not; BatchNorm affine included, buffers excluded).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class Cost:
    flops: float  # millions of multiply-accumulates per image
    params: float  # millions
    latency: float | None = None  # ms of the full network, when the study measures latency

    def metrics(self) -> dict[str, float]:
        """The cost objectives: flops, params and (when measured) latency."""
        out = {"flops": self.flops, "params": self.params}
        if self.latency is not None:
            out["latency"] = self.latency
        return out

    def usage(self) -> dict[str, float | None]:
        """The value each constraint budget (``ConstraintsConfig.budgets``) is compared with."""
        return {"max_flops": self.flops, "max_params": self.params, "max_latency_ms": self.latency}


def count_params(model: nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


def count_flops(model: nn.Module, resolution: int) -> float:
    """Forward MMACs for one ``3 x resolution x resolution`` image (flop_counter FLOPs / 2)."""
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, resolution, resolution))
    model.train(was_training)
    return counter.get_total_flops() / 2 / 1e6


def measure(model: nn.Module, resolution: int) -> Cost:
    return Cost(flops=count_flops(model, resolution), params=count_params(model))
