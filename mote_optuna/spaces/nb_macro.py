"""NAS-Bench-Macro: a MobileNet-style macro space of 8 searched layers (3**8 = 6,561 codes).

Su et al., "Prioritized Architecture Sampling with Monto-Carlo Tree Search" (CVPR 2021),
xiusu/NAS-Bench-Macro. An architecture is one digit per layer (``layer_0`` .. ``layer_7``):
``0`` identity, ``1`` MBConv kernel 3 expansion 3, ``2`` MBConv kernel 5 expansion 6. The layers
form 3 stages of 2, 3 and 3 layers; the first layer of a stage has stride 2 and doubles the width.

Full network (32x32, 10 classes; the benchmark's, rebuilt exactly: the tests compare params and
MACs with the table on all 3,969 networks): stem Conv3x3(3->32)-BN-ReLU, stages of width 64, 128,
256, head Conv1x1(256->1280)-BN-ReLU, global average pool, Linear(1280->10). An identity layer is
Conv1x1(stride s)-BN (no ReLU) where the stride or the width changes (a stage's first layer),
else a pass-through. MBConv(t, k) is Conv1x1(c -> t*c)-BN-ReLU, depthwise kxk (stride s)-BN-ReLU,
Conv1x1(-> c_out)-BN, plus the input when the shape allows.

Canonical form: an identity layer that is not the first of its stage is a pass-through, so it
computes the same function wherever it sits after the first layer; the benchmark moves these to
the stage's end (a first-layer identity is a strided conv and stays) and gives codes with the
same canonical form identical results: 3,969 distinct networks. The architecture value here is
always canonical (``from_params``, ``from_str`` and ``sample`` canonicalise), so equivalent codes
are one value and one key (a trial's suggested parameters may spell any of its codes;
``to_params`` gives the canonical one).

Proxy (``build_proxy``, the reduced architecture MOTE trains; in the spirit of MOTE's Rescaled RA,
MOTE_SPEC §6): the same network at ``width / 128`` of its widths (``proxy_widths``: stem 4,
stages 8, 16, 32 at the ``lite`` width 16) with the same strides, every searched layer built as
in the full network, so each choice reaches the proxy; Keras BatchNorm and initialisation as the
other reduced architectures (``layers.KERAS_BN``, ``keras_init``); no 1x1 head conv to 1280 (GAP
and the linear layer follow the last stage). A 16 px input gives stages at 8, 4 and 2 px, 32 px
the full network's 16, 8 and 4. Unlike the MobileNetV3 proxy there is no FLOPs rescaling of the
widths: the width is fixed, so heavier layers make heavier proxies, as in the full network. It
trains NCHW (``channels_last = False``, as the other MobileNet-like spaces).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import optuna
import pandas as pd
import torch
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from mote_optuna.cost import Cost
from mote_optuna.errors import UserError
from mote_optuna.spaces.base import FullNetSpec, InvalidArchitecture
from mote_optuna.spaces.layers import KERAS_BN, keras_init

IDENTITY, MB_K3E3, MB_K5E6 = 0, 1, 2
CHOICES = (IDENTITY, MB_K3E3, MB_K5E6)
MBCONV = {MB_K3E3: (3, 3), MB_K5E6: (5, 6)}  # digit -> (kernel, expansion)
STAGE_DEPTHS = (2, 3, 3)
LAYERS = sum(STAGE_DEPTHS)
# the first layer index of each stage, and the stage of each layer
STAGE_STARTS = tuple(itertools.accumulate((0, *STAGE_DEPTHS[:-1])))
# full network: stem, stage and head widths at 32x32
STEM, STAGE_WIDTHS, HEAD = 32, (64, 128, 256), 1280
# strides of the stem and of the 3 stages (a stage's first layer): full network and proxy
STRIDES = (1, 2, 2, 2)
TRUTH_COLUMNS = ("canonical_arch", "acc_seed0", "acc_seed1", "acc_seed2", "mean_acc")

Arch = tuple[int, ...]
NormLayer = Callable[[int], nn.Module]


def canonical(code: Sequence[int]) -> Arch:
    """``code`` with each stage's identity layers after its first layer moved to the stage end."""
    out: list[int] = []
    for start, depth in zip(STAGE_STARTS, STAGE_DEPTHS, strict=True):
        first, rest = code[start], code[start + 1 : start + depth]
        ops = [d for d in rest if d != IDENTITY]
        out += [first, *ops, *[IDENTITY] * (len(rest) - len(ops))]
    return tuple(out)


def layer_plan(widths: Sequence[int], strides: Sequence[int]) -> list[tuple[int, int, int]]:
    """(c_in, c_out, stride) of the 8 layers; ``widths`` and ``strides`` are the stem's and the
    3 stages' (a stage's stride is its first layer's)."""
    plan = []
    c_in = widths[0]
    for s, (start, depth) in enumerate(zip(STAGE_STARTS, STAGE_DEPTHS, strict=True)):
        for i in range(start, start + depth):
            first = i == start
            plan.append((c_in, widths[s + 1], strides[s + 1] if first else 1))
            c_in = widths[s + 1]
    return plan


# --------------------------------------------------------------------------------------------
# networks


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand-BN-ReLU, depthwise kxk-BN-ReLU, 1x1 project-BN (+ input)."""

    def __init__(
        self, c_in: int, c_out: int, *, kernel: int, expand: int, stride: int, norm: NormLayer
    ) -> None:
        super().__init__()
        hidden = c_in * expand
        self.body = nn.Sequential(
            Conv2dNormActivation(c_in, hidden, 1, norm_layer=norm),
            Conv2dNormActivation(
                hidden, hidden, kernel, stride=stride, groups=hidden, norm_layer=norm
            ),
            Conv2dNormActivation(hidden, c_out, 1, norm_layer=norm, activation_layer=None),
        )
        self.residual = c_in == c_out and stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.residual else out


def make_layer(digit: int, c_in: int, c_out: int, stride: int, norm: NormLayer) -> nn.Module:
    """One searched layer (module docstring)."""
    if digit == IDENTITY:
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        return Conv2dNormActivation(
            c_in, c_out, 1, stride=stride, norm_layer=norm, activation_layer=None
        )
    kernel, expand = MBCONV[digit]
    return MBConv(c_in, c_out, kernel=kernel, expand=expand, stride=stride, norm=norm)


class MacroNet(nn.Module):
    """Stem conv3x3-BN-ReLU, the 8 layers, optional 1x1 head conv-BN-ReLU, GAP, linear."""

    def __init__(
        self,
        arch: Arch,
        *,
        widths: Sequence[int],
        strides: Sequence[int],
        head: int | None,
        num_classes: int,
        norm: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.stem = Conv2dNormActivation(3, widths[0], 3, stride=strides[0], norm_layer=norm)
        self.layers = nn.Sequential(
            *(
                make_layer(d, c_in, c_out, s, norm)
                for d, (c_in, c_out, s) in zip(arch, layer_plan(widths, strides), strict=True)
            )
        )
        last = widths[-1]
        self.head = Conv2dNormActivation(last, head, 1, norm_layer=norm) if head else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head or last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.head(self.layers(self.stem(x))))
        return self.classifier(torch.flatten(x, 1))


def proxy_widths(width: int) -> tuple[int, ...]:
    """Stem and stage widths of the proxy: the full network's (32; 64, 128, 256) times
    ``width / 128`` (width 16: 4; 8, 16, 32), at least 1 each."""
    return tuple(max(1, c * width // 128) for c in (STEM, *STAGE_WIDTHS))


# --------------------------------------------------------------------------------------------
# closed-form cost


def _conv(c_in: int, c_out: int, kernel: int, pixels: int, groups: int = 1) -> tuple[int, int]:
    """(MACs, params) of a bias-free conv followed by BN, with ``pixels`` output positions."""
    weights = kernel * kernel * c_in // groups * c_out
    return weights * pixels, weights + 2 * c_out


def _layer_cost(digit: int, c_in: int, c_out: int, stride: int, size: int) -> tuple[int, int]:
    """(MACs, params) of one searched layer at input size ``size`` x ``size``."""
    out_px = (size // stride) ** 2
    if digit == IDENTITY:
        return (0, 0) if stride == 1 and c_in == c_out else _conv(c_in, c_out, 1, out_px)
    kernel, expand = MBCONV[digit]
    hidden = c_in * expand
    parts = (
        _conv(c_in, hidden, 1, size * size),
        _conv(hidden, hidden, kernel, out_px, groups=hidden),
        _conv(hidden, c_out, 1, out_px),
    )
    return sum(m for m, _ in parts), sum(p for _, p in parts)


# --------------------------------------------------------------------------------------------
# the space


class NBMacroSpace:
    """NAS-Bench-Macro (module docstring). Architectures are canonical tuples of 8 digits."""

    name = "nb-macro"
    # NHWC training of MobileNet-like proxies aborts in torch's CPU backward (mobilenetv3.py).
    channels_last = False
    full_net = FullNetSpec(resolution=32, num_classes=10)
    truth_targets: ClassVar[dict[str, str]] = {"cifar10": "mean_acc"}  # mean of 3 seeds (%)

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {
            f"layer_{i}": optuna.distributions.CategoricalDistribution(CHOICES)
            for i in range(LAYERS)
        }

    def from_params(self, params: dict[str, Any]) -> Arch:
        code = []
        for i in range(LAYERS):
            try:
                value = params[f"layer_{i}"]
            except KeyError:
                raise InvalidArchitecture(f"missing parameter 'layer_{i}'") from None
            if isinstance(value, bool) or value not in CHOICES:
                raise InvalidArchitecture(f"layer_{i}={value!r}; allowed: 0, 1, 2")
            code.append(int(value))
        return canonical(code)

    def to_params(self, arch: Arch) -> dict[str, Any]:
        return {f"layer_{i}": digit for i, digit in enumerate(arch)}

    def to_str(self, arch: Arch) -> str:
        """The benchmark's code: one digit per layer, e.g. ``12020112``."""
        return "".join(map(str, arch))

    def from_str(self, text: str) -> Arch:
        code = text.strip()
        if len(code) != LAYERS:
            raise InvalidArchitecture(f"{text!r}: expected {LAYERS} digits of 0-2")
        for i, char in enumerate(code):
            if char not in "012":
                raise InvalidArchitecture(f"{text!r}: layer {i} is {char!r}; allowed: 0, 1, 2")
        return canonical([int(c) for c in code])

    def key(self, arch: Arch) -> str:
        return self.to_str(canonical(arch))

    def sample(self, rng: np.random.Generator) -> Arch:
        """A uniform code, canonicalised: distinct networks are not equally likely (one with
        identities inside a stage stands for several codes), as when sampling the benchmark."""
        return canonical(tuple(int(d) for d in rng.integers(0, len(CHOICES), size=LAYERS)))

    def neighbours(self, arch: Arch) -> list[Arch]:
        """The distinct canonical architectures one digit away from ``arch``."""
        out = {
            canonical((*arch[:i], d, *arch[i + 1 :]))
            for i in range(LAYERS)
            for d in CHOICES
            if d != arch[i]
        }
        out.discard(arch)
        return sorted(out)

    @staticmethod
    def all_archs() -> list[Arch]:
        """The 3,969 distinct (canonical) architectures."""
        return sorted({canonical(c) for c in itertools.product(CHOICES, repeat=LAYERS)})

    def covering_archs(self) -> list[Arch]:
        """The 3 uniform architectures: a layer's unit depends only on its position and digit
        (its input shape is fixed by the position), and these build every digit everywhere."""
        return [(d,) * LAYERS for d in CHOICES]

    def analytic_cost(self, arch: Arch) -> Cost:
        """The full network's MACs and params, layer by layer (``_conv``): BN has 2 params per
        channel and no MACs, as ``cost.measure`` counts them."""
        size = self.full_net.resolution
        size //= STRIDES[0]
        macs, params = _conv(3, STEM, 3, size * size)
        for digit, (c_in, c_out, stride) in zip(
            arch, layer_plan((STEM, *STAGE_WIDTHS), STRIDES), strict=True
        ):
            m, p = _layer_cost(digit, c_in, c_out, stride, size)
            macs, params, size = macs + m, params + p, size // stride
        m, p = _conv(STAGE_WIDTHS[-1], HEAD, 1, size * size)
        classes = self.full_net.num_classes
        macs += m + HEAD * classes
        params += p + HEAD * classes + classes
        return Cost(flops=macs / 1e6, params=params / 1e6)

    def build_proxy(self, arch: Arch, *, num_classes: int, width: int = 32) -> nn.Module:
        net = MacroNet(
            arch,
            widths=proxy_widths(width),
            strides=STRIDES,
            head=None,
            num_classes=num_classes,
            norm=partial(nn.BatchNorm2d, **KERAS_BN),
        )
        keras_init(net)
        return net

    def build_full(self, arch: Arch, *, num_classes: int | None = None) -> nn.Module:
        return MacroNet(
            arch,
            widths=(STEM, *STAGE_WIDTHS),
            strides=STRIDES,
            head=HEAD,
            num_classes=num_classes or self.full_net.num_classes,
        )

    def build_live(self, arch: Arch, *, num_classes: int | None = None) -> nn.Module:
        """Every layer of the network reaches the output: the full network."""
        return self.build_full(arch, num_classes=num_classes)

    def read_truth(self, path: Path) -> pd.DataFrame:
        """The benchmark table's 3,969 distinct networks (``canonical_arch`` is read as text:
        its codes have leading zeros); ``params`` and ``flops`` (MACs) in millions."""
        table = pd.read_csv(path, dtype={"arch": str, "canonical_arch": str})
        missing = [c for c in (*TRUTH_COLUMNS, "params", "flops") if c not in table]
        if missing:
            raise UserError(
                f"{path}: not a NAS-Bench-Macro table, it lacks the columns {', '.join(missing)}"
            )
        table = table.drop_duplicates("canonical_arch").reset_index(drop=True)
        try:
            archs = [self.from_str(code) for code in table.canonical_arch]
        except InvalidArchitecture as bad:
            raise UserError(f"{path}: canonical_arch: {bad}") from None
        return pd.DataFrame(
            {
                "arch_str": [self.to_str(a) for a in archs],
                "key": [self.key(a) for a in archs],
                **{c: table[c] for c in TRUTH_COLUMNS[1:]},
                "params": table.params / 1e6,
                "flops": table.flops / 1e6,
            }
        )


__all__ = ["NBMacroSpace"]
