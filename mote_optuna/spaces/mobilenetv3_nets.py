"""The networks of the MobileNetV3-like spaces (``mobilenetv3``): the full network, torchvision's
``MobileNetV3`` from ``InvertedResidualConfig`` rows on the fixed skeleton, and the proxy.

Proxy — the Rescaled reduced architecture of the authors' code (``MobileMetaModel`` and the
rescaling in ``Cell2MobileMetaModel``, MOTE_SPEC §6) at 32x32: stem conv3x3 (⌊8α⌋) + BN without
activation, five cells with ⌊16α⌋, ⌊16α⌋, ⌊32α⌋, ⌊32α⌋, ⌊32α⌋ outputs and strides 2, 1, 2, 1, 1,
GAP, dense. A cell is 1x1 conv-BN-GELU to ``t * C_in``, depthwise kxk (stride) conv-BN-GELU,
optional SE on the expanded tensor (GAP, 1x1 conv to C/4 + ReLU, 1x1 conv + hard-sigmoid, scale),
1x1 conv-BN to ``C_out``, plus the input (identity when the shape allows, else a strided 1x1
conv-BN). GELU is the tanh approximation, BN and init are Keras' (``KERAS_BN``, ``keras_init``).
Rescaling: build at α = 1, take its FLOPs in units of 1024² MACs, F, and rebuild with
α = 2 - F/2 (heavier candidates get narrower proxies). Deviations:

* the released cells search an expansion *type* and fix t = 2; here t is the block's expansion
  ratio and the depthwise kernel is the block's kernel (the searched choices must reach the proxy);
* ``width`` scales the code's widths by ``width / 32`` (32 = the code's widest cell), after the
  rescaling (α is computed at width 32, so the rule keeps its calibration);
* the rule is α = 2 - F/2 only up to F = 2 and α = 2/F beyond (``alpha_rule``): the code's
  proxies have F ≈ 1.6-2 (t = 2), but expansions 4 and 6 give F up to ≈ 7, where the literal
  rule turns negative; 2/F continues it with the same value and slope at F = 2. Sampled
  candidates get α ≈ 0.36-0.74 (median 0.55; OFA space ≈ 0.40-0.53), so the proxies are about
  half as wide as the code's (α ≈ 1.03-1.2 there);
* FLOPs are ``cost.count_flops`` MACs (conv/linear only), not the TF profiler's float_ops / 2;
* ``mobilenetv3-ofa``: stage s of the proxy is ``depth_s`` cells (first one strided, SE as in OFA's
  stage), one per active block, and F is taken per five cells (F * 5 / cells) before the rule;
* padding is PyTorch's symmetric ``k // 2``, not TF's asymmetric "same" for strided convs.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import nn
from torchvision.models.mobilenetv3 import (
    InvertedResidualConfig,
    MobileNetV3,
)
from torchvision.ops.misc import Conv2dNormActivation, SqueezeExcitation

from mote_optuna.compat_torchvision import make_divisible, mobilenet_v3_large_blocks
from mote_optuna.cost import count_flops
from mote_optuna.spaces.layers import KERAS_BN, keras_init

# (input_channels, kernel, expanded_channels, out_channels, use_se, activation "RE"/"HS", stride)
BlockRow = tuple[int, int, int, int, bool, str, int]

STEM_CHANNELS = 16
FIRST_BLOCK: BlockRow = (16, 3, 16, 16, False, "RE", 1)
LAST_CHANNEL = 1280
STAGE_WIDTHS = (24, 40, 80, 112, 160)
STAGE_STRIDES = (2, 2, 2, 1, 2)
STAGE_ACTS = ("RE", "RE", "HS", "HS", "HS")


# --------------------------------------------------------------------------------------------
# full network


def build_network(
    rows: Sequence[BlockRow],
    *,
    num_classes: int = 1000,
    last_channel: int = LAST_CHANNEL,
    dropout: float = 0.2,
) -> MobileNetV3:
    """torchvision's MobileNetV3 with these inverted-residual rows (stem width = rows[0][0])."""
    configs = []
    for row in rows:
        c_in, kernel, expanded, c_out, use_se, act, stride = row
        cnf = InvertedResidualConfig(c_in, kernel, expanded, c_out, use_se, act, stride, 1, 1.0)
        got = (cnf.input_channels, cnf.expanded_channels, cnf.out_channels)
        if got != (c_in, expanded, c_out):
            raise ValueError(f"channels of {row} are not multiples of 8")
        configs.append(cnf)
    return MobileNetV3(configs, last_channel, num_classes=num_classes, dropout=dropout)


def reference_large_rows() -> tuple[list[BlockRow], int]:
    """torchvision's ``mobilenet_v3_large`` configuration as rows, and its last channel."""
    setting, last_channel = mobilenet_v3_large_blocks()
    rows: list[BlockRow] = [
        (
            c.input_channels,
            c.kernel,
            c.expanded_channels,
            c.out_channels,
            c.use_se,
            "HS" if c.use_hs else "RE",
            c.stride,
        )
        for c in setting
    ]
    return rows, last_channel


def build_reference_large(num_classes: int = 1000) -> MobileNetV3:
    """MobileNetV3-Large rebuilt through ``build_network`` (equal to torchvision's)."""
    rows, last_channel = reference_large_rows()
    return build_network(rows, num_classes=num_classes, last_channel=last_channel)


def stage_rows(stages: Sequence[Sequence[tuple[int, int, bool]]]) -> list[BlockRow]:
    """Rows for per-stage lists of (expand, kernel, se) blocks on the fixed skeleton."""
    rows: list[BlockRow] = [FIRST_BLOCK]
    c_in = FIRST_BLOCK[3]
    for s, blocks in enumerate(stages):
        for b, (expand, kernel, se) in enumerate(blocks):
            stride = STAGE_STRIDES[s] if b == 0 else 1
            expanded = make_divisible(c_in * expand, 8)
            rows.append((c_in, kernel, expanded, STAGE_WIDTHS[s], se, STAGE_ACTS[s], stride))
            c_in = STAGE_WIDTHS[s]
    return rows


# --------------------------------------------------------------------------------------------
# Rescaled reduced architecture (proxy)

_BN = partial(nn.BatchNorm2d, **KERAS_BN)
_GELU = partial(nn.GELU, approximate="tanh")
PROXY_WIDTHS = (16, 16, 32, 32, 32)
PROXY_STRIDES = (2, 1, 2, 1, 1)
PROXY_STEM = 8


class MobileCell(nn.Module):
    """The authors' MobileCell with a 1x1 expansion (module docstring)."""

    def __init__(
        self, c_in: int, c_out: int, *, expand: int, kernel: int, se: bool, stride: int
    ) -> None:
        super().__init__()
        hidden = max(1, int(c_in * expand))
        layers: list[nn.Module] = [
            Conv2dNormActivation(
                c_in, hidden, 1, norm_layer=_BN, activation_layer=_GELU, inplace=None
            ),
            Conv2dNormActivation(
                hidden,
                hidden,
                kernel,
                stride=stride,
                groups=hidden,
                norm_layer=_BN,
                activation_layer=_GELU,
                inplace=None,
            ),
        ]
        if se:
            layers.append(
                SqueezeExcitation(hidden, max(1, hidden // 4), scale_activation=nn.Hardsigmoid)
            )
        layers.append(
            Conv2dNormActivation(hidden, c_out, 1, norm_layer=_BN, activation_layer=None)
        )
        self.body = nn.Sequential(*layers)
        self.shortcut: nn.Module = (
            nn.Identity()
            if c_in == c_out and stride == 1
            else Conv2dNormActivation(
                c_in, c_out, 1, stride=stride, norm_layer=_BN, activation_layer=None
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class RescaledNet(nn.Module):
    """Stem, five stages of one or more MobileCells, GAP, dense; widths times ``scale``."""

    def __init__(
        self,
        stages: Sequence[Sequence[tuple[int, int, bool]]],
        *,
        scale: float,
        num_classes: int,
    ) -> None:
        super().__init__()
        stem = max(1, int(PROXY_STEM * scale))
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 3, padding=1, bias=False), _BN(stem))
        cells: list[nn.Module] = []
        c_in = stem
        for s, blocks in enumerate(stages):
            c_out = max(1, int(PROXY_WIDTHS[s] * scale))
            for b, (expand, kernel, se) in enumerate(blocks):
                stride = PROXY_STRIDES[s] if b == 0 else 1
                cells.append(
                    MobileCell(c_in, c_out, expand=expand, kernel=kernel, se=se, stride=stride)
                )
                c_in = c_out
        self.cells = nn.Sequential(*cells)
        self.head = nn.Linear(c_in, num_classes)
        keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cells(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))


def alpha_rule(flops: float) -> float:
    """The code's α = 2 - F/2 up to F = 2, continued as α = 2/F (same value and slope at F = 2).

    F is in units of 1024² MACs. The released space's proxies have F ≈ 1.6-2, where this is the
    code's rule; the searched expansions here reach F ≈ 7, where the literal rule is negative.
    """
    return 2.0 - flops / 2.0 if flops <= 2.0 else 2.0 / flops


def rescale_alpha(stages: Sequence[Sequence[tuple[int, int, bool]]], num_classes: int) -> float:
    """α for a candidate: ``alpha_rule`` of its α = 1 proxy's FLOPs per five cells."""
    with torch.random.fork_rng(devices=[]):  # the probe's init leaves the caller's RNG alone
        probe = RescaledNet(stages, scale=1.0, num_classes=num_classes)
    cells = sum(len(blocks) for blocks in stages)
    return alpha_rule(count_flops(probe, 32) * 1e6 / 1024**2 * 5 / cells)


def build_rescaled_proxy(
    stages: Sequence[Sequence[tuple[int, int, bool]]], *, num_classes: int, width: int = 32
) -> RescaledNet:
    alpha = rescale_alpha(stages, num_classes)
    return RescaledNet(stages, scale=alpha * width / 32, num_classes=num_classes)
