"""NAS-Bench-201: a 4-node cell with one of 5 ops on each of its 6 edges (5**6 = 15,625 cells).

Edge order follows the benchmark string ``|o0~0|+|o1~0|o2~1|+|o3~0|o4~1|o5~2|``: edge_i is the i-th
op in that string, applied to the output of node ``_EDGES[i][0]`` and summed into node
``_EDGES[i][1]``. The full network is NAS-Bench-201's (C=16, N=5, residual reduction blocks); the
proxy is MOTE's reduced architecture (stem, cell, 4x4 pooling, cell, GAP, linear).
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import optuna
import pandas as pd
import torch
from torch import nn

from mote_optuna.cost import Cost, measure
from mote_optuna.estimators.boxcox import BoxCoxConstants
from mote_optuna.spaces.base import FullNetSpec, InvalidArchitecture, read_truth_csv
from mote_optuna.spaces.layers import KERAS_BN, BatchNormArgs, ReducedNet
from mote_optuna.spaces.nb201_picture import cell_svg

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (from_node, to_node) of edge_0 .. edge_5, in benchmark string order.
_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
_ZERO = "#"

Arch = tuple[str, ...]


def _live_edges(arch: Arch) -> list[bool]:
    """Whether each edge can change the cell output: non-zero op and input, reaches node 3."""
    nonzero_node = [True, False, False, False]
    for (src, dst), op in zip(_EDGES, arch, strict=True):
        if op != "none" and nonzero_node[src]:
            nonzero_node[dst] = True
    reaches_out = [False, False, False, True]
    for (src, dst), op in reversed(list(zip(_EDGES, arch, strict=True))):
        if op != "none" and reaches_out[dst]:
            reaches_out[src] = True
    return [
        op != "none" and nonzero_node[src] and reaches_out[dst]
        for (src, dst), op in zip(_EDGES, arch, strict=True)
    ]


class NB201Space:
    """The NAS-Bench-201 cell space (see module docstring)."""

    name = "nb201"
    channels_last = True
    full_net = FullNetSpec(resolution=32, num_classes=10)
    published_boxcox = BoxCoxConstants(0.86, 1.216, 0.617, 0.961)  # MOTE_SPEC §2.3
    # nb201_ground_truth.csv: 200-epoch test accuracy of the three datasets
    truth_targets: ClassVar[dict[str, str]] = {
        "cifar10": "cifar10_test_acc_200ep",
        "cifar100": "cifar100_test_acc_200ep",
        "imagenet16": "imagenet16_test_acc_200ep",
    }

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {f"edge_{i}": optuna.distributions.CategoricalDistribution(OPS) for i in range(6)}

    def from_params(self, params: dict[str, Any]) -> Arch:
        try:
            arch = tuple(str(params[f"edge_{i}"]) for i in range(6))
        except KeyError as missing:
            raise InvalidArchitecture(f"missing parameter {missing}") from None
        for op in arch:
            if op not in OPS:
                raise InvalidArchitecture(f"unknown op {op!r}; allowed: {', '.join(OPS)}")
        return arch

    def to_params(self, arch: Arch) -> dict[str, Any]:
        return {f"edge_{i}": op for i, op in enumerate(arch)}

    def to_str(self, arch: Arch) -> str:
        o = arch
        return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"

    def from_str(self, text: str) -> Arch:
        ops: list[str] = []
        nodes = text.strip().split("+")
        if len(nodes) != 3:
            raise InvalidArchitecture(f"not a NAS-Bench-201 string: {text!r}")
        for node, part in enumerate(nodes, start=1):
            items = [p for p in part.split("|") if p]
            if len(items) != node:
                raise InvalidArchitecture(f"node {node} needs {node} inputs in {text!r}")
            for src, item in enumerate(items):
                op, _, idx = item.partition("~")
                if idx != str(src) or op not in OPS:
                    raise InvalidArchitecture(f"bad edge {item!r} in {text!r}")
                ops.append(op)
        return tuple(ops)

    def key(self, arch: Arch) -> str:
        """NATS-Bench's ``unique_str``: the cell as an expression of its input.

        Node expressions are sorted sums, skip connections pass their input through, and a
        ``none`` edge (or any op on node 1 when node 1 is zero) contributes the zero ``#``. The
        benchmark's 15,625 cells fall into its 6,466 classes exactly. The rule is the benchmark's,
        kept for comparability: it does not fold a multi-input node whose inputs are all zero.
        """
        nodes = ["0"]
        for dst in (1, 2, 3):
            terms = []
            for (src, to), op in zip(_EDGES, arch, strict=True):
                if to != dst:
                    continue
                if op == "none" or nodes[src] == _ZERO:
                    terms.append(_ZERO)
                elif op == "skip_connect":
                    terms.append(nodes[src])
                else:
                    terms.append(f"({nodes[src]})@{op}")
            nodes.append("+".join(sorted(terms)))
        return nodes[3]

    def sample(self, rng: np.random.Generator) -> Arch:
        return tuple(OPS[i] for i in rng.integers(0, len(OPS), size=6))

    def neighbours(self, arch: Arch) -> list[Arch]:
        return [(*arch[:i], op, *arch[i + 1 :]) for i in range(6) for op in OPS if op != arch[i]]

    @staticmethod
    def all_archs() -> list[Arch]:
        return list(itertools.product(OPS, repeat=6))

    def build_proxy(self, arch: Arch, *, num_classes: int, width: int = 32) -> nn.Module:
        return ReducedNet(
            lambda c: Cell(arch, c, prune=True, bn_kwargs=KERAS_BN),
            width=width,
            num_classes=num_classes,
        )

    def build_full(self, arch: Arch, *, num_classes: int | None = None) -> nn.Module:
        return TinyNetwork(arch, num_classes=num_classes or self.full_net.num_classes)

    def live_arch(self, arch: Arch) -> Arch:
        """``arch`` with every edge that cannot change the output (``_live_edges``) set to none."""
        return tuple(
            op if keep else "none" for op, keep in zip(arch, _live_edges(arch), strict=True)
        )

    def build_live(self, arch: Arch, *, num_classes: int | None = None) -> nn.Module:
        """The full network without the edges that cannot change the output (``_live_edges``)."""
        return TinyNetwork(arch, num_classes=num_classes or self.full_net.num_classes, prune=True)

    # optional parts of the contract (spaces.base)

    def latency_units(self, arch: Arch) -> dict[str, int]:
        """Every cell of the full network has ``arch``'s operations, each at its stage's shape, so
        the counts of the five operations in the cell are the units (times 5 cells per stage)."""
        return {op: sum(o == op for o in arch) for op in OPS}

    def analytic_cost(self, arch: Arch) -> Cost:
        """The full network's cost, exact from the counts of 3x3 and 1x1 convolutions.

        Every edge of every cell sees the same channels at the same resolution within a stage,
        and each stage has the same channels x resolution product, so each convolution op adds a
        fixed amount; skip, pooling and zero ops add no counted FLOPs and no parameters. Three
        measured networks give the constants (checked against measured networks in the tests).
        """
        base, conv3, conv1 = _cost_constants(self.full_net.resolution, self.full_net.num_classes)
        n3 = sum(op == "nor_conv_3x3" for op in arch)
        n1 = sum(op == "nor_conv_1x1" for op in arch)
        return Cost(
            flops=base.flops + n3 * conv3.flops + n1 * conv1.flops,
            params=base.params + n3 * conv3.params + n1 * conv1.params,
        )

    def covering_archs(self) -> list[Arch]:
        """The full network builds every edge op, so the 5 uniform cells cover every unit."""
        return [(op,) * 6 for op in OPS]

    def picture(self, arch: Arch) -> str:
        return cell_svg(arch, self.to_str(arch))

    def read_truth(self, path: Path) -> pd.DataFrame:
        """``nb201_ground_truth.csv``: one row per cell; params and FLOPs of CIFAR-10's network."""
        frame = read_truth_csv(path, ["arch_str", self.truth_targets["cifar10"]])
        frame = frame.assign(key=[self.key(self.from_str(a)) for a in frame.arch_str])
        if {"params_M_cifar10", "flops_M_cifar10"} <= set(frame.columns):
            frame = frame.assign(params=frame.params_M_cifar10, flops=frame.flops_M_cifar10)
        return frame


@functools.cache
def _cost_constants(resolution: int, num_classes: int) -> tuple[Cost, Cost, Cost]:
    """The network without convolutions, and what one 3x3 and one 1x1 edge add to it."""

    def cost(first: str) -> Cost:
        arch = (first, "none", "none", "none", "none", "none")
        return measure(TinyNetwork(arch, num_classes=num_classes), resolution)

    base, c3, c1 = cost("none"), cost("nor_conv_3x3"), cost("nor_conv_1x1")
    return (
        base,
        Cost(c3.flops - base.flops, c3.params - base.params),
        Cost(c1.flops - base.flops, c1.params - base.params),
    )


class ReLUConvBN(nn.Sequential):
    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int = 1,
        bn_kwargs: BatchNormArgs | None = None,
    ) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out, **bn_kwargs) if bn_kwargs else nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(op: str, channels: int, bn_kwargs: BatchNormArgs | None = None) -> nn.Module:
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    kernel = 1 if op == "nor_conv_1x1" else 3
    return ReLUConvBN(channels, channels, kernel, bn_kwargs=bn_kwargs)


class Cell(nn.Module):
    """The NB201 cell. With ``prune`` the ops that cannot change the output are not built.

    Pruning keeps the function (up to the learnable BN shift of a conv fed by zeros) and makes
    equivalent cells build identical proxies with identical random initialisations.
    """

    latency_container: ClassVar[bool] = True  # latency tables time its ops (spaces.base)

    def __init__(
        self,
        arch: Arch,
        channels: int,
        *,
        prune: bool = False,
        bn_kwargs: BatchNormArgs | None = None,
    ) -> None:
        super().__init__()
        live = _live_edges(arch) if prune else [True] * 6
        self.edges = [(src, dst) for (src, dst), keep in zip(_EDGES, live, strict=True) if keep]
        self.ops = nn.ModuleList(
            make_op(op, channels, bn_kwargs) for op, keep in zip(arch, live, strict=True) if keep
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x, None, None, None]
        for (src, dst), op in zip(self.edges, self.ops, strict=True):
            inp = nodes[src]
            if inp is None:
                continue
            out = op(inp)
            prev = nodes[dst]
            nodes[dst] = out if prev is None else prev + out
        return nodes[3] if nodes[3] is not None else x.mul(0.0)


class ResNetBasicBlock(nn.Module):
    """NB201's residual reduction block (stride 2, channels doubled)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class TinyNetwork(nn.Module):
    """The NAS-Bench-201 network: stem, 3 stages of N cells, residual reductions, GAP, FC."""

    def __init__(
        self,
        arch: Arch,
        *,
        num_classes: int,
        channels: int = 16,
        cells: int = 5,
        prune: bool = False,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage:
                layers.append(ResNetBasicBlock(c, 2 * c))
                c *= 2
            layers.extend(Cell(arch, c, prune=prune) for _ in range(cells))
        self.cells = nn.Sequential(*layers)
        self.last = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.last(self.cells(self.stem(x)))
        return self.classifier(x.mean(dim=(2, 3)))
