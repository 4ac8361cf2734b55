"""Accel-NASBench (``anb``): an EfficientNet-B0 / MnasNet skeleton of 7 MBConv blocks on ImageNet.

Per block i = 1..7: expansion ``block{i}_expand`` in {1, 4, 6} (1: no expansion conv), depthwise
kernel ``block{i}_kernel`` in {3, 5}, depth ``block{i}_depth`` in {1, 2, 3} ({1, 2, 3, 4} for the
6th block, as the source's sampler and the table's ``l`` column) and squeeze-excitation
``block{i}_se`` on/off: 3**7 * 2**7 * 3**6 * 4 * 2**7 = 3.3e10 networks, every parameter used (no
two architectures are the same network; ``key`` is the string). The architecture value is a tuple
of 7 ``(e, k, l, se)``. Its string is the benchmark's four 7-digit columns ``e-k-l-se``, e.g.
``6466611-3535533-1233222-0000000``.

The full network (``anb_nets``) is the source's ``AccelNASBenchNet`` at 224x224 with 1000
classes; its params are the table's ``params_M`` on every row (tests). FLOPs are the project's
conv + linear MACs (``cost.count_flops``, computed in closed form by ``analytic_cost``); they are
0.857-0.963 (median 0.913, all 5,125 networks) of the table's ``macs_M`` (thop, which also counts
BatchNorm, activations, pooling and the SE gate), so the two rank networks alike but are not
interchangeable.

Truth (``read_truth``): Accel-NASBench's ImageNet top-1 after a short proxy training (16 epochs,
160-192 px, one seed), with top-5, the measured FPGA latencies and accelerator throughputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import optuna
import pandas as pd
from torch import nn

from mote_optuna.cost import Cost
from mote_optuna.errors import UserError
from mote_optuna.spaces.anb_nets import AccelNet, Block, full_cost
from mote_optuna.spaces.anb_nets import build_proxy as build_anb_proxy
from mote_optuna.spaces.base import FullNetSpec, InvalidArchitecture
from mote_optuna.spaces.mobilenetv3 import _choice

BLOCKS = 7
EXPANDS = (1, 4, 6)
KERNELS = (3, 5)
DEPTHS = (1, 2, 3)
LONG_BLOCK = 5  # index of the block with one more depth choice (the 6th, EfficientNet-B0's 4)
LONG_DEPTHS = (1, 2, 3, 4)
SE = (False, True)
ARCH_COLUMNS = ("e", "k", "l", "se")  # the table's columns, in string order
TRUTH_COLUMNS = (*ARCH_COLUMNS, "val_top1", "params_M")

Arch = tuple[Block, ...]


def depth_choices(block: int) -> tuple[int, ...]:
    """The depth choices of block index ``block`` (0-based)."""
    return LONG_DEPTHS if block == LONG_BLOCK else DEPTHS


def _choices(block: int) -> tuple[tuple[Any, ...], ...]:
    """The choices of each field of a block, in ``Block`` order."""
    return (EXPANDS, KERNELS, depth_choices(block), SE)


_FIELDS = ("expand", "kernel", "depth", "se")


class ANBSpace:
    """The Accel-NASBench space (module docstring)."""

    name = "anb"
    # Same depthwise/SE layers as the MobileNetV3 proxies, whose NHWC backward crashes torch on
    # CPU (mobilenetv3.py): NCHW here too.
    channels_last = False
    full_net = FullNetSpec(resolution=224, num_classes=1000)
    truth_targets: ClassVar[dict[str, str]] = {"imagenet": "val_top1"}  # ImageNet top-1 (%)
    # The zero-cost terms' input (spaces.base.zero_cost_resolution): their 64-image pass at 224
    # px costs tens of seconds of one core per network, at 96 px about a fifth of that.
    zero_cost_resolution = 96

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        cat = optuna.distributions.CategoricalDistribution
        return {
            f"block{i + 1}_{field}": cat(choices)
            for i in range(BLOCKS)
            for field, choices in zip(_FIELDS, _choices(i), strict=True)
        }

    def from_params(self, params: dict[str, Any]) -> Arch:
        return tuple(
            tuple(
                _choice(params, f"block{i + 1}_{field}", choices)
                for field, choices in zip(_FIELDS, _choices(i), strict=True)
            )
            for i in range(BLOCKS)
        )

    def to_params(self, arch: Arch) -> dict[str, Any]:
        return {
            f"block{i}_{field}": value
            for i, block in enumerate(arch, start=1)
            for field, value in zip(_FIELDS, block, strict=True)
        }

    def to_str(self, arch: Arch) -> str:
        """The table's ``e-k-l-se`` columns: four strings of one digit per block."""
        return "-".join(
            "".join(str(int(block[f])) for block in arch) for f in range(len(ARCH_COLUMNS))
        )

    def from_str(self, text: str) -> Arch:
        parts = text.strip().split("-")
        if len(parts) != len(ARCH_COLUMNS) or any(len(p) != BLOCKS for p in parts):
            raise InvalidArchitecture(
                f"expected four {BLOCKS}-digit parts e-k-l-se in {text!r}, "
                "e.g. 6466611-3535533-1233222-0000000"
            )
        blocks = []
        for i in range(BLOCKS):
            block = []
            for column, part, choices in zip(ARCH_COLUMNS, parts, _choices(i), strict=True):
                allowed = [str(int(c)) for c in choices]
                if part[i] not in allowed:
                    raise InvalidArchitecture(
                        f"{column} digit {part[i]!r} of block {i + 1} in {text!r}; "
                        f"allowed: {', '.join(allowed)}"
                    )
                block.append(choices[allowed.index(part[i])])
            blocks.append(tuple(block))
        return tuple(blocks)

    def key(self, arch: Arch) -> str:
        """The string: every parameter changes the network."""
        return self.to_str(arch)

    def sample(self, rng: np.random.Generator) -> Arch:
        return tuple(
            tuple(choices[rng.integers(len(choices))] for choices in _choices(i))
            for i in range(BLOCKS)
        )

    def neighbours(self, arch: Arch) -> list[Arch]:
        """Every architecture with one block parameter changed."""
        out: list[Arch] = []
        for i, block in enumerate(arch):
            for f, choices in enumerate(_choices(i)):
                for value in choices:
                    if value != block[f]:
                        changed = (*block[:f], value, *block[f + 1 :])
                        out.append((*arch[:i], changed, *arch[i + 1 :]))
        return out

    def build_proxy(self, arch: Arch, *, num_classes: int, width: int = 32) -> nn.Module:
        return build_anb_proxy(arch, num_classes=num_classes, width=width)

    def build_full(self, arch: Arch, *, num_classes: int | None = None) -> nn.Module:
        return AccelNet(arch, num_classes=num_classes or self.full_net.num_classes)

    def build_live(self, arch: Arch, *, num_classes: int | None = None) -> nn.Module:
        """Every layer reaches the output: the full network."""
        return self.build_full(arch, num_classes=num_classes)

    # optional parts of the contract (spaces.base)

    def analytic_cost(self, arch: Arch) -> Cost:
        return full_cost(arch, self.full_net.resolution, self.full_net.num_classes)

    def latency_units(self, arch: Arch) -> dict[str, int]:
        """Each layer's unit: its block, whether it is the block's first (stride, channels) and
        its (e, k, se); the stem and head are the same in every network."""
        counts: dict[str, int] = {}
        for b, (e, k, depth, se) in enumerate(arch):
            for layer in range(depth):
                unit = f"b{b}{'first' if layer == 0 else 'rest'}-e{e}k{k}se{int(se)}"
                counts[unit] = counts.get(unit, 0) + 1
        return counts

    def covering_archs(self) -> list[Arch]:
        """The 12 uniform (e, k, se) architectures at each block's largest depth: a layer's unit
        depends only on its block, its (e, k, se) and whether it is the block's first layer."""
        return [
            tuple((e, k, max(depth_choices(i)), se) for i in range(BLOCKS))
            for e in EXPANDS
            for k in KERNELS
            for se in SE
        ]

    def read_truth(self, path: Path) -> pd.DataFrame:
        """Accel-NASBench's table: repeated runs of a network averaged, ``params`` = ``params_M``,
        ``flops`` = ``analytic_cost`` (conv + linear MACs, not the table's thop ``macs_M``)."""
        dtypes = dict.fromkeys(ARCH_COLUMNS, str)
        frame = pd.read_csv(path, dtype=dtypes)
        missing = [c for c in TRUTH_COLUMNS if c not in frame.columns]
        if missing:
            raise UserError(
                f"{path}: not an Accel-NASBench table; missing columns {', '.join(missing)}"
            )
        numeric = [c for c in frame.select_dtypes("number").columns if c != "result_id"]
        frame = frame.groupby(list(ARCH_COLUMNS), sort=False, as_index=False)[numeric].mean()
        try:
            archs = [self.from_str("-".join(row)) for row in frame[list(ARCH_COLUMNS)].values]
        except InvalidArchitecture as exc:
            raise UserError(f"{path}: {exc}") from None
        out = frame[numeric].rename(columns={"params_M": "params"})
        out.insert(0, "arch_str", [self.to_str(a) for a in archs])
        out.insert(1, "key", [self.key(a) for a in archs])
        out["flops"] = [self.analytic_cost(a).flops for a in archs]
        return out


__all__ = ["ANBSpace"]
