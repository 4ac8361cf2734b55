"""Cut a space's full network into lookup-table entries: one per (operation, input shape).

A *unit* is a module that is timed on its own: for MobileNetV3 the stem, each inverted-residual
block (expansion, kernel, stride, SE and activation are all in its layers) and the head layers;
for NB201 each edge op of a cell, the residual reduction blocks and the stem/head layers; for
NB101 each vertex op and each 1x1 input projection of a module, the max-pools and the stem/head.
The walk expands containers (the network itself, a plain ``nn.Sequential``, ``ModuleList``,
``ModuleDict``, NB201's ``Cell`` and NB101's ``NB101Module``) and keeps every other module whole.
Input shapes come from one forward pass with pre-hooks, on the ``meta`` device for lookups (no
arithmetic). What runs outside units (a cell's sums, NB101's concatenations, the global mean) is
left to the table's fitted constant (``table.py``).

An entry's key is readable: the unit's class and its layers in order, then the input shape, e.g.
``InvertedResidual(conv1x1/s1 24>72 bn relu conv5x5/s2 72>72 g72 bn relu ...) @ 1x24x56x56``.

:func:`covering_archs` lists a few architectures whose units are every unit the space can
produce (checked against random samples in the tests), so a table is built from them alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mote_optuna.spaces import SearchSpace
from mote_optuna.spaces.base import HasCoveringArchs
from mote_optuna.spaces.mobilenetv3 import (
    OFA_EXPANDS,
    OFA_KERNELS,
    OFA_MAX_DEPTH,
    PAPER_EXPANDS,
    PAPER_KERNELS,
    MobileNetV3Space,
    OFAMobileNetV3Space,
)
from mote_optuna.spaces.nb101 import NB101Module, NB101Space
from mote_optuna.spaces.nb101_graph import CONV1X1, CONV3X3, MAXPOOL3X3, NB101Arch
from mote_optuna.spaces.nb201 import OPS, Cell, NB201Space

_CONTAINERS = (nn.ModuleList, nn.ModuleDict, Cell, NB101Module)
_FREE = (nn.Identity, nn.Dropout)  # no work at inference: cost 0, never timed


@dataclass(frozen=True)
class Unit:
    key: str
    module: nn.Module
    shape: tuple[int, ...]


def input_shape(space: SearchSpace, batch_size: int = 1) -> tuple[int, int, int, int]:
    r = space.full_net.resolution
    return (batch_size, 3, r, r)


def full_network(space: SearchSpace, arch: Any, *, meta: bool = False) -> nn.Module:
    """The space's full network in eval mode, on the meta device (shapes only) if asked."""
    if meta:
        with torch.device("meta"):
            return space.build_full(arch).eval()
    return space.build_full(arch).eval()


def units(model: nn.Module, shape: tuple[int, ...]) -> list[Unit]:
    """The units of ``model`` in call order (a unit called twice appears twice)."""
    chosen = [m for m in _walk(model, root=True) if not isinstance(m, _FREE)]
    device = next(model.parameters()).device
    calls: list[Unit] = []

    def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        in_shape = tuple(args[0].shape)
        key = f"{describe(module)} @ {'x'.join(map(str, in_shape))}"
        calls.append(Unit(key, module, in_shape))

    handles = [m.register_forward_pre_hook(hook) for m in chosen]
    try:
        with torch.inference_mode():
            model(torch.zeros(shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _walk(module: nn.Module, *, root: bool = False) -> Iterator[nn.Module]:
    if root or type(module) is nn.Sequential or isinstance(module, _CONTAINERS):
        for child in module.children():
            yield from _walk(child)
    else:
        yield module


def describe(module: nn.Module) -> str:
    """The unit's class and its leaf layers with their hyperparameters, in order."""
    leaves = [m for m in module.modules() if not list(m.children())] or [module]
    return f"{type(module).__name__}({' '.join(_leaf(m) for m in leaves)})"


def _leaf(m: nn.Module) -> str:
    if isinstance(m, nn.Conv2d):
        k, s, p = m.kernel_size[0], m.stride[0], m.padding[0]
        text = f"conv{k}x{k}/s{s} {m.in_channels}>{m.out_channels}"
        text += f" g{m.groups}" if m.groups > 1 else ""
        text += " bias" if m.bias is not None else ""
        return text + (f" p{p}" if p != k // 2 else "")
    if isinstance(m, nn.Linear):
        return f"linear {m.in_features}>{m.out_features}"
    if isinstance(m, nn.AvgPool2d | nn.MaxPool2d):
        pad = "" if getattr(m, "count_include_pad", True) else " nopad"
        return f"{type(m).__name__.lower()}{m.kernel_size}/s{m.stride} p{m.padding}{pad}"
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return f"gap{m.output_size}"
    if isinstance(m, nn.BatchNorm2d):
        return "bn"
    return type(m).__name__.lower()


def covering_archs(space: SearchSpace) -> list[Any]:
    """Architectures whose units, together, are all units of the space.

    - a space with ``covering_archs`` (``spaces.base.HasCoveringArchs``): its own list;
    - NB201: the full network builds every edge op, so the 5 uniform cells cover it;
    - ``mobilenetv3``: a block depends only on its stage's (expand, kernel, se) and position, so
      the 18 uniform architectures cover it;
    - ``mobilenetv3-ofa``: the 9 uniform (kernel, expand) architectures at depth 4;
    - NB101: a vertex gets ``c // k`` or ``c // k + 1`` channels (k = 1..4 vertices feed the
      output; 5 would need 10 edges), interior-only vertices the width of a successor; so k
      parallel vertices of one op, fed by the input, feeding the output, with and without an
      input→output edge, plus the input→output-only module, cover it.
    """
    if isinstance(space, HasCoveringArchs):
        return space.covering_archs()
    if isinstance(space, NB201Space):
        return [(op,) * 6 for op in OPS]
    if isinstance(space, MobileNetV3Space):
        return [
            ((e, k, se),) * space.blocks
            for e in PAPER_EXPANDS
            for k in PAPER_KERNELS
            for se in (False, True)
        ]
    if isinstance(space, OFAMobileNetV3Space):
        return [
            ((OFA_MAX_DEPTH, ((k, e),) * OFA_MAX_DEPTH),) * space.stages
            for k in OFA_KERNELS
            for e in OFA_EXPANDS
        ]
    if isinstance(space, NB101Space):
        archs = [NB101Arch(((0, 1), (0, 0)), ("input", "output"))]
        for k in range(1, 5):
            for op in (CONV1X1, CONV3X3, MAXPOOL3X3):
                for direct in (0, 1):
                    n = k + 2
                    m = [[0] * n for _ in range(n)]
                    for v in range(1, k + 1):
                        m[0][v] = m[v][n - 1] = 1
                    m[0][n - 1] = direct
                    archs.append(NB101Arch(tuple(map(tuple, m)), ("input", *[op] * k, "output")))
        return archs
    if hasattr(space, "all_archs"):
        return list(space.all_archs())
    raise TypeError(f"no covering architectures for space {space.name!r}")
