"""MobileNetV3-like spaces: MOTE's paper space (``mobilenetv3``) and OFA's (``mobilenetv3-ofa``).

Both full networks are torchvision's ``MobileNetV3`` built from ``InvertedResidualConfig`` rows
(``build_network``), measured at 224x224 with 1000 classes. Every network has torchvision's fixed
parts: stem conv3x3/2 to 16 + BN + h-swish, a first block (16→16, k3, no expansion, ReLU, no SE),
the searched blocks, a 1x1 conv to 6x the last width (960) + BN + h-swish, GAP,
Linear(960, 1280) + h-swish + dropout + Linear(1280, classes). ``build_reference_large`` feeds
torchvision's own ``mobilenet_v3_large`` rows through ``build_network``; the tests check it equals
``torchvision.models.mobilenet_v3_large()`` in FLOPs and params. Expanded widths are
``make_divisible(in * e, 8)`` of the block's *input* width (MobileNetV3 / OFA convention).

``mobilenetv3`` — MOTE paper §4.4 (MOTE_SPEC §6): five searched inverted-residual blocks, each with
expansion {2, 4, 6}, kernel {3, 5, 7} and SE on/off (``block{i}_expand``, ``block{i}_kernel``,
``block{i}_se``, i = 1..5); 3**5 * 2**5 = 7,776 architectures. The paper fixes no skeleton, so
"block" i is read as stage i of a fixed MobileNetV3-Large skeleton (the released code's target net
also repeats each searched cell over a stage): widths 24, 40, 80, 112, 160, strides 2, 2, 2, 1, 2,
ReLU in stages 1-2 and h-swish in 3-5 (as MobileNetV3-Large), and depths 3, 4, 4, 3, 4 (one block
more than MobileNetV3-Large in stages 1, 2, 4, 5) so that the space spans about 140-490 MMACs
(e2/k3/no SE .. e6/k7/SE; e4/k5/SE ≈ 290) around the paper's ≈400 MFLOPs budget. Every block of a
stage uses that stage's choices.

``mobilenetv3-ofa`` — OFA's ``ofa_mbv3_d234_e346_k357_w1.0`` (MOTE_SPEC §10): 5 stages with widths
24, 40, 80, 112, 160, strides 2, 2, 2, 1, 2, ReLU in stages 1-2 and h-swish in 3-5, SE in stages
2, 4, 5 (OFA's stages 3, 5, 6 when its first block counts as stage 1); per stage a depth
``stage{s}_depth`` in {2, 3, 4} and per block ``stage{s}_block{b}_kernel`` in {3, 5, 7} and
``stage{s}_block{b}_expand`` in {3, 4, 6} (s = 1..5, b = 1..4). All 45 parameters are always
suggested; the blocks beyond a stage's depth are unused, kept in the architecture value (so
``to_params`` inverts ``from_params``) and left out of ``key``. Deviation from OFA's network:
torchvision's head has a bias in its 960→1280 layer (OFA's 1x1 ``feature_mix_layer`` has none:
+1,280 params) and its BN/dropout settings; FLOPs are the same.

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
from typing import Any

import numpy as np
import optuna
import torch
from torch import nn
from torchvision.models.mobilenetv3 import (
    InvertedResidualConfig,
    MobileNetV3,
)
from torchvision.ops.misc import Conv2dNormActivation, SqueezeExcitation

from mote_optuna.compat import make_divisible, mobilenet_v3_large_blocks
from mote_optuna.cost import count_flops
from mote_optuna.spaces.base import FullNetSpec, InvalidArchitecture
from mote_optuna.spaces.layers import KERAS_BN, keras_init

# (input_channels, kernel, expanded_channels, out_channels, use_se, activation "RE"/"HS", stride)
BlockRow = tuple[int, int, int, int, bool, str, int]

STEM_CHANNELS = 16
FIRST_BLOCK: BlockRow = (16, 3, 16, 16, False, "RE", 1)
LAST_CHANNEL = 1280
STAGE_WIDTHS = (24, 40, 80, 112, 160)
STAGE_STRIDES = (2, 2, 2, 1, 2)
STAGE_ACTS = ("RE", "RE", "HS", "HS", "HS")

PAPER_DEPTHS = (3, 4, 4, 3, 4)
PAPER_EXPANDS = (2, 4, 6)
PAPER_KERNELS = (3, 5, 7)

OFA_SE = (False, True, False, True, True)
OFA_DEPTHS = (2, 3, 4)
OFA_EXPANDS = (3, 4, 6)
OFA_KERNELS = (3, 5, 7)
OFA_MAX_DEPTH = 4

# One MobileNetV3 "block" choice of the paper space: (expand, kernel, se).
PaperBlock = tuple[int, int, bool]
PaperArch = tuple[PaperBlock, ...]
# One OFA stage: (depth, ((kernel, expand) x 4)); blocks past ``depth`` are unused.
OFAStage = tuple[int, tuple[tuple[int, int], ...]]
OFAArch = tuple[OFAStage, ...]


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


def _stage_rows(stages: Sequence[Sequence[tuple[int, int, bool]]]) -> list[BlockRow]:
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


# --------------------------------------------------------------------------------------------
# helpers


def _choice(params: dict[str, Any], name: str, choices: Sequence[Any]) -> Any:
    try:
        value = params[name]
    except KeyError:
        raise InvalidArchitecture(f"missing parameter {name!r}") from None
    for choice in choices:
        # bools and ints compare equal (True == 1): only a bool matches a bool choice
        if isinstance(choice, bool) == isinstance(value, bool | np.bool_) and value == choice:
            return choice
    raise InvalidArchitecture(f"{name}={value!r}; allowed: {', '.join(map(str, choices))}")


def _int_in(text: str, choices: Sequence[int], what: str, whole: str) -> int:
    if not text.isdigit() or int(text) not in choices:
        raise InvalidArchitecture(f"bad {what} {text!r} in {whole!r}")
    return int(text)


# --------------------------------------------------------------------------------------------
# the paper space


class MobileNetV3Space:
    """MOTE's MobileNetV3-like space (module docstring)."""

    name = "mobilenetv3"
    full_net = FullNetSpec(resolution=224, num_classes=1000)
    blocks = 5

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        cat = optuna.distributions.CategoricalDistribution
        dists: dict[str, optuna.distributions.BaseDistribution] = {}
        for i in range(1, self.blocks + 1):
            dists[f"block{i}_expand"] = cat(PAPER_EXPANDS)
            dists[f"block{i}_kernel"] = cat(PAPER_KERNELS)
            dists[f"block{i}_se"] = cat((False, True))
        return dists

    def from_params(self, params: dict[str, Any]) -> PaperArch:
        return tuple(
            (
                _choice(params, f"block{i}_expand", PAPER_EXPANDS),
                _choice(params, f"block{i}_kernel", PAPER_KERNELS),
                _choice(params, f"block{i}_se", (False, True)),
            )
            for i in range(1, self.blocks + 1)
        )

    def to_params(self, arch: PaperArch) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for i, (expand, kernel, se) in enumerate(arch, start=1):
            params[f"block{i}_expand"] = expand
            params[f"block{i}_kernel"] = kernel
            params[f"block{i}_se"] = se
        return params

    def to_str(self, arch: PaperArch) -> str:
        """Blocks joined by ``|``, each ``e{expand}k{kernel}`` plus ``-se`` with SE."""
        return "|".join(f"e{e}k{k}" + ("-se" if se else "") for e, k, se in arch)

    def from_str(self, text: str) -> PaperArch:
        parts = text.strip().split("|")
        if len(parts) != self.blocks:
            raise InvalidArchitecture(f"expected {self.blocks} '|'-separated blocks in {text!r}")
        arch = []
        for part in parts:
            body, dash, tag = part.partition("-")
            if (dash and tag != "se") or not body.startswith("e") or "k" not in body:
                raise InvalidArchitecture(f"bad block {part!r} in {text!r}")
            e_text, _, k_text = body[1:].partition("k")
            expand = _int_in(e_text, PAPER_EXPANDS, "expansion", text)
            kernel = _int_in(k_text, PAPER_KERNELS, "kernel", text)
            arch.append((expand, kernel, bool(dash)))
        return tuple(arch)

    def key(self, arch: PaperArch) -> str:
        return self.to_str(arch)

    def sample(self, rng: np.random.Generator) -> PaperArch:
        return tuple(
            (
                PAPER_EXPANDS[rng.integers(len(PAPER_EXPANDS))],
                PAPER_KERNELS[rng.integers(len(PAPER_KERNELS))],
                bool(rng.integers(2)),
            )
            for _ in range(self.blocks)
        )

    def neighbours(self, arch: PaperArch) -> list[PaperArch]:
        out: list[PaperArch] = []
        for i, (e, k, se) in enumerate(arch):
            changed = [(x, k, se) for x in PAPER_EXPANDS if x != e]
            changed += [(e, x, se) for x in PAPER_KERNELS if x != k]
            changed.append((e, k, not se))
            out.extend((*arch[:i], block, *arch[i + 1 :]) for block in changed)
        return out

    def stage_blocks(self, arch: PaperArch) -> list[list[tuple[int, int, bool]]]:
        """The full network's (expand, kernel, se) per block, grouped by stage."""
        return [[block] * depth for block, depth in zip(arch, PAPER_DEPTHS, strict=True)]

    def build_proxy(self, arch: PaperArch, *, num_classes: int, width: int = 32) -> nn.Module:
        return build_rescaled_proxy(
            [[block] for block in arch], num_classes=num_classes, width=width
        )

    def build_full(self, arch: PaperArch, *, num_classes: int | None = None) -> nn.Module:
        return build_network(
            _stage_rows(self.stage_blocks(arch)),
            num_classes=num_classes or self.full_net.num_classes,
        )

    def build_live(self, arch: PaperArch, *, num_classes: int | None = None) -> nn.Module:
        """Every block of a MobileNetV3 reaches the output: the full network."""
        return self.build_full(arch, num_classes=num_classes)


# --------------------------------------------------------------------------------------------
# the OFA space


class OFAMobileNetV3Space:
    """OFA's MobileNetV3 space, depth {2,3,4} x kernel {3,5,7} x expansion {3,4,6}."""

    name = "mobilenetv3-ofa"
    full_net = FullNetSpec(resolution=224, num_classes=1000)
    stages = 5

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        cat = optuna.distributions.CategoricalDistribution
        dists: dict[str, optuna.distributions.BaseDistribution] = {}
        for s in range(1, self.stages + 1):
            dists[f"stage{s}_depth"] = cat(OFA_DEPTHS)
            for b in range(1, OFA_MAX_DEPTH + 1):
                dists[f"stage{s}_block{b}_kernel"] = cat(OFA_KERNELS)
                dists[f"stage{s}_block{b}_expand"] = cat(OFA_EXPANDS)
        return dists

    def from_params(self, params: dict[str, Any]) -> OFAArch:
        arch = []
        for s in range(1, self.stages + 1):
            depth = _choice(params, f"stage{s}_depth", OFA_DEPTHS)
            blocks = tuple(
                (
                    _choice(params, f"stage{s}_block{b}_kernel", OFA_KERNELS),
                    _choice(params, f"stage{s}_block{b}_expand", OFA_EXPANDS),
                )
                for b in range(1, OFA_MAX_DEPTH + 1)
            )
            arch.append((depth, blocks))
        return tuple(arch)

    def to_params(self, arch: OFAArch) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for s, (depth, blocks) in enumerate(arch, start=1):
            params[f"stage{s}_depth"] = depth
            for b, (kernel, expand) in enumerate(blocks, start=1):
                params[f"stage{s}_block{b}_kernel"] = kernel
                params[f"stage{s}_block{b}_expand"] = expand
        return params

    def to_str(self, arch: OFAArch) -> str:
        """Stages joined by ``|``; in a stage the active blocks ``k{k}e{e}`` joined by ``,``, then
        ``/`` and the unused ones (omitted at depth 4). The depth is the active block count."""
        parts = []
        for depth, blocks in arch:
            names = [f"k{k}e{e}" for k, e in blocks]
            text = ",".join(names[:depth])
            if depth < OFA_MAX_DEPTH:
                text += "/" + ",".join(names[depth:])
            parts.append(text)
        return "|".join(parts)

    def from_str(self, text: str) -> OFAArch:
        parts = text.strip().split("|")
        if len(parts) != self.stages:
            raise InvalidArchitecture(f"expected {self.stages} '|'-separated stages in {text!r}")
        arch = []
        for part in parts:
            active, _, unused = part.partition("/")
            names = active.split(",") + (unused.split(",") if unused else [])
            depth = len(active.split(","))
            if depth not in OFA_DEPTHS or len(names) != OFA_MAX_DEPTH:
                raise InvalidArchitecture(
                    f"stage {part!r} in {text!r}: needs 2-4 active blocks and 4 blocks in all"
                )
            blocks = []
            for name in names:
                k_text, sep, e_text = name.removeprefix("k").partition("e")
                if not name.startswith("k") or not sep:
                    raise InvalidArchitecture(f"bad block {name!r} in {text!r}")
                blocks.append(
                    (
                        _int_in(k_text, OFA_KERNELS, "kernel", text),
                        _int_in(e_text, OFA_EXPANDS, "expansion", text),
                    )
                )
            arch.append((depth, tuple(blocks)))
        return tuple(arch)

    def key(self, arch: OFAArch) -> str:
        """The active blocks only, so configs differing in unused blocks share a key."""
        return "|".join(",".join(f"k{k}e{e}" for k, e in blocks[:depth]) for depth, blocks in arch)

    def sample(self, rng: np.random.Generator) -> OFAArch:
        return tuple(
            (
                OFA_DEPTHS[rng.integers(len(OFA_DEPTHS))],
                tuple(
                    (
                        OFA_KERNELS[rng.integers(len(OFA_KERNELS))],
                        OFA_EXPANDS[rng.integers(len(OFA_EXPANDS))],
                    )
                    for _ in range(OFA_MAX_DEPTH)
                ),
            )
            for _ in range(self.stages)
        )

    def neighbours(self, arch: OFAArch) -> list[OFAArch]:
        """One parameter changed; changes to unused blocks (same key) are left out."""
        out: list[OFAArch] = []
        for s, (depth, blocks) in enumerate(arch):
            stages: list[OFAStage] = [(d, blocks) for d in OFA_DEPTHS if d != depth]
            for b in range(depth):
                k, e = blocks[b]
                for other in [(x, e) for x in OFA_KERNELS if x != k] + [
                    (k, x) for x in OFA_EXPANDS if x != e
                ]:
                    stages.append((depth, (*blocks[:b], other, *blocks[b + 1 :])))
            out.extend((*arch[:s], stage, *arch[s + 1 :]) for stage in stages)
        return out

    def stage_blocks(self, arch: OFAArch) -> list[list[tuple[int, int, bool]]]:
        """The active (expand, kernel, se) blocks, grouped by stage."""
        return [
            [(e, k, OFA_SE[s]) for k, e in blocks[:depth]]
            for s, (depth, blocks) in enumerate(arch)
        ]

    def build_proxy(self, arch: OFAArch, *, num_classes: int, width: int = 32) -> nn.Module:
        return build_rescaled_proxy(self.stage_blocks(arch), num_classes=num_classes, width=width)

    def build_full(self, arch: OFAArch, *, num_classes: int | None = None) -> nn.Module:
        return build_network(
            _stage_rows(self.stage_blocks(arch)),
            num_classes=num_classes or self.full_net.num_classes,
        )

    def build_live(self, arch: OFAArch, *, num_classes: int | None = None) -> nn.Module:
        """Every block of a MobileNetV3 reaches the output: the full network."""
        return self.build_full(arch, num_classes=num_classes)


__all__ = [
    "BlockRow",
    "MobileNetV3Space",
    "OFAMobileNetV3Space",
    "RescaledNet",
    "alpha_rule",
    "build_network",
    "build_reference_large",
    "build_rescaled_proxy",
    "reference_large_rows",
    "rescale_alpha",
]
