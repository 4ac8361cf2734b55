"""The networks of Accel-NASBench (``anb``): the full network, its closed-form cost, and the proxy.

Full network — ``AccelNASBenchNet`` of afzalxo/ANB-DatasetCollection (``models/accelbenchnet.py``,
``activation_fn = relu`` as its configs set it, ``mode = "train"`` as its training script builds
it), an EfficientNet-B0 skeleton: stem Conv3x3(3→32, stride 2)-BN-ReLU; 7 blocks with strides
``STRIDES``, input widths ``IN_CHANNELS`` and output widths ``OUT_CHANNELS``, block i repeating its
MBConv layer ``l`` times (only the first layer has the block's stride and input width, the others
are ``out→out``, stride 1); head Conv1x1(320→1280)-BN-ReLU, GAP, Dropout(0.2), Linear(1280→1000).
An MBConv layer (``MBConv``): Conv1x1(in→in·e)-BN-ReLU unless e = 1, depthwise Convkxk (stride,
padding k//2)-BN-ReLU, optional SE on the expanded tensor with a squeeze width of
``max(1, in // 4)`` of the *layer's input* width (ReLU, hard-sigmoid gate, biased 1x1 convs),
Conv1x1(→out)-BN; convs without bias; the input is added when the stride is 1 and in == out,
after stochastic depth (probability 0.2 · layer index / layer count, as the source). The source's
init: Kaiming-normal (fan out) convs, uniform(±1/√out) linear weights, zero biases.

Proxy — MOTE's Rescaled reduced architecture (MOTE_SPEC §6, as ``mobilenetv3_nets``) with this
space's own layer: stem Conv3x3 (stride 2, as the full stem) + BN without activation, then for
each block min(l, ``PROXY_MAX_DEPTH`` = 2) cells (so depth 1 and deeper blocks differ in the
proxy; 3 and 4 look like 2), GAP, dense. A cell is the block's ``MBConv`` (its e, k, SE and ReLU;
no residual when the shape changes, as in the full network) with Keras BN and init (``layers``).
Widths at ``width = 32`` are ``PROXY_WIDTHS`` (stem 8, like the MobileNetV3 proxy; the full
widths 16..320 compressed into 8..48). The proxy keeps the full network's first two halvings
(stem, block 2; ``PROXY_STRIDES``) and drops the later three: a 16 px input runs block 1 at 8x8
and the rest at 4x4 (32 px: 16x16, 8x8), where a 5x5 depthwise kernel still differs from a 3x3.
Small maps keep the cells cheap: torch's NCHW depthwise backward on CPU costs several ms per cell
at 16x16 (a 5x5 one up to 10x a 1x1 conv). Rescaling as the MobileNetV3 proxy: build at α = 1,
F = its MACs at 32 px in units of 1024² per five cells, α = ``alpha_rule(F)``, rebuild with widths
× α · width / 32 (the rule widens cheap proxies, so smaller maps alone do not shorten training).
At ``lite`` a candidate costs about twice a ``mobilenetv3`` one (its ~13 cells against 5). No
stochastic depth and no dropout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import torch
from torch import nn
from torchvision.ops import StochasticDepth
from torchvision.ops.misc import Conv2dNormActivation, SqueezeExcitation

from mote_optuna.cost import Cost, count_flops
from mote_optuna.spaces.layers import KERAS_BN, keras_init
from mote_optuna.spaces.mobilenetv3_nets import alpha_rule

STRIDES = (1, 2, 2, 2, 1, 2, 1)
IN_CHANNELS = (32, 16, 24, 40, 80, 112, 192)
OUT_CHANNELS = (16, 24, 40, 80, 112, 192, 320)
STEM_CHANNELS = IN_CHANNELS[0]
HEAD_CHANNELS = 4 * OUT_CHANNELS[-1]  # the source's last_channel = None: 4 x 320
DROPOUT = 0.2
STOCHASTIC_DEPTH = 0.2

PROXY_STEM = 8
PROXY_WIDTHS = (8, 16, 16, 24, 32, 40, 48)
PROXY_STEM_STRIDE = 2
PROXY_STRIDES = (1, 2, 1, 1, 1, 1, 1)
PROXY_MAX_DEPTH = 2

# One block of the space: (expansion e, kernel k, depth l, squeeze-excitation).
Block = tuple[int, int, int, bool]


class Layer(NamedTuple):
    """One MBConv layer of a network: its widths, choices and stride."""

    c_in: int
    c_out: int
    expand: int
    kernel: int
    se: bool
    stride: int


def layers(blocks: Sequence[Block], widths: Sequence[int], strides: Sequence[int]) -> list[Layer]:
    """The MBConv layers of ``blocks`` on a skeleton: ``widths`` is the first block's input width,
    then each block's output width. Only a block's first layer has its stride and input width."""
    out: list[Layer] = []
    for (e, k, depth, se), c_out, stride in zip(blocks, widths[1:], strides, strict=True):
        for j in range(depth):
            c_in = widths[0] if not out else out[-1].c_out
            out.append(Layer(c_in, c_out, e, k, se, stride if j == 0 else 1))
    return out


def full_layers(blocks: Sequence[Block]) -> list[Layer]:
    """The full network's MBConv layers."""
    return layers(blocks, (STEM_CHANNELS, *OUT_CHANNELS), STRIDES)


class MBConv(nn.Module):
    """The source's MBConv layer with ReLU and a hard-sigmoid SE gate (module docstring)."""

    def __init__(self, layer: Layer, *, norm: Callable[..., nn.Module], drop: float = 0.0) -> None:
        super().__init__()
        c_in, c_out, expand, kernel, se, stride = layer
        hidden = c_in * expand
        conv = partial(Conv2dNormActivation, norm_layer=norm, activation_layer=nn.ReLU)
        parts: list[nn.Module] = [conv(c_in, hidden, 1)] if expand != 1 else []
        parts.append(conv(hidden, hidden, kernel, stride=stride, groups=hidden))
        if se:
            parts.append(SqueezeExcitation(hidden, max(1, c_in // 4), nn.ReLU, nn.Hardsigmoid))
        parts.append(conv(hidden, c_out, 1, activation_layer=None))
        self.block = nn.Sequential(*parts)
        self.use_residual = stride == 1 and c_in == c_out
        self.stochastic_depth = StochasticDepth(drop, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_residual:
            out = self.stochastic_depth(out) + x
        return out


# --------------------------------------------------------------------------------------------
# full network


class AccelNet(nn.Module):
    """The full Accel-NASBench network (module docstring), torchvision EfficientNet's layout."""

    def __init__(self, blocks: Sequence[Block], *, num_classes: int = 1000) -> None:
        super().__init__()
        relu = partial(Conv2dNormActivation, activation_layer=nn.ReLU)
        all_layers = full_layers(blocks)
        stages: list[nn.Module] = []
        index = 0
        for depth in (block[2] for block in blocks):
            stage = []
            for layer in all_layers[index : index + depth]:
                drop = STOCHASTIC_DEPTH * index / len(all_layers)
                stage.append(MBConv(layer, norm=nn.BatchNorm2d, drop=drop))
                index += 1
            stages.append(nn.Sequential(*stage))
        self.features = nn.Sequential(
            relu(3, STEM_CHANNELS, 3, stride=2),
            *stages,
            relu(OUT_CHANNELS[-1], HEAD_CHANNELS, 1),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Dropout(DROPOUT, inplace=True), nn.Linear(HEAD_CHANNELS, num_classes)
        )
        _source_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def _source_init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / m.out_features**0.5
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


def full_cost(blocks: Sequence[Block], resolution: int, num_classes: int = 1000) -> Cost:
    """``cost.measure`` of ``AccelNet(blocks)`` in closed form: conv and linear MACs (no BN, no
    bias, no pooling or gating) and every parameter (BN's two per channel included)."""
    side = _out_side(resolution, 2)
    macs = 3 * STEM_CHANNELS * 9 * side**2
    params = 3 * STEM_CHANNELS * 9 + 2 * STEM_CHANNELS
    for c_in, c_out, e, k, se, stride in full_layers(blocks):
        hidden = c_in * e
        out_side = _out_side(side, stride)
        if e != 1:
            macs += c_in * hidden * side**2
            params += c_in * hidden + 2 * hidden
        macs += hidden * k * k * out_side**2 + hidden * c_out * out_side**2
        params += hidden * k * k + 2 * hidden + hidden * c_out + 2 * c_out
        if se:
            squeeze = max(1, c_in // 4)
            macs += 2 * hidden * squeeze
            params += 2 * hidden * squeeze + squeeze + hidden
        side = out_side
    macs += OUT_CHANNELS[-1] * HEAD_CHANNELS * side**2 + HEAD_CHANNELS * num_classes
    params += OUT_CHANNELS[-1] * HEAD_CHANNELS + 2 * HEAD_CHANNELS
    params += HEAD_CHANNELS * num_classes + num_classes
    return Cost(flops=macs / 1e6, params=params / 1e6)


def _out_side(side: int, stride: int) -> int:
    """A kxk conv with padding k // 2 (k odd) maps ``side`` to ceil(side / stride)."""
    return (side - 1) // stride + 1


# --------------------------------------------------------------------------------------------
# Rescaled reduced architecture (proxy)

_KERAS_BN = partial(nn.BatchNorm2d, **KERAS_BN)


class ANBProxy(nn.Module):
    """Stem, the blocks' MBConv cells, GAP, dense; widths times ``scale`` (module docstring)."""

    def __init__(self, blocks: Sequence[Block], *, scale: float, num_classes: int) -> None:
        super().__init__()
        widths = [max(1, int(w * scale)) for w in (PROXY_STEM, *PROXY_WIDTHS)]
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, stride=PROXY_STEM_STRIDE, padding=1, bias=False),
            _KERAS_BN(widths[0]),
        )
        capped = [(e, k, min(depth, PROXY_MAX_DEPTH), se) for e, k, depth, se in blocks]
        cells = layers(capped, widths, PROXY_STRIDES)
        self.cells = nn.Sequential(*(MBConv(cell, norm=_KERAS_BN) for cell in cells))
        self.head = nn.Linear(widths[-1], num_classes)
        keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cells(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))


def proxy_alpha(blocks: Sequence[Block], num_classes: int) -> float:
    """α for a candidate: ``alpha_rule`` of its α = 1 proxy's MACs at 32 px per five cells."""
    with torch.random.fork_rng(devices=[]):  # the probe's init leaves the caller's RNG alone
        probe = ANBProxy(blocks, scale=1.0, num_classes=num_classes)
    cells = sum(min(block[2], PROXY_MAX_DEPTH) for block in blocks)
    return alpha_rule(count_flops(probe, 32) * 1e6 / 1024**2 * 5 / cells)


def build_proxy(blocks: Sequence[Block], *, num_classes: int, width: int = 32) -> ANBProxy:
    alpha = proxy_alpha(blocks, num_classes)
    return ANBProxy(blocks, scale=alpha * width / 32, num_classes=num_classes)
