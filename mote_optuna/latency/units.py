"""Cut a space's full network into lookup-table entries: one per (operation, input shape).

A *unit* is a module that is timed on its own: for MobileNetV3 the stem, each inverted-residual
block (expansion, kernel, stride, SE and activation are all in its layers) and the head layers;
for NB201 each edge op of a cell, the residual reduction blocks and the stem/head layers; for
NB101 each vertex op and each 1x1 input projection of a module, the max-pools and the stem/head.
The walk expands containers (the network itself, a plain ``nn.Sequential``, ``ModuleList``,
``ModuleDict`` and a space's modules marked ``latency_container``, such as NB201's ``Cell`` and
NB101's ``NB101Module``) and keeps every other module whole.
Input shapes come from one forward pass with pre-hooks, on the ``meta`` device for lookups (no
arithmetic). What runs outside units (a cell's sums, NB101's concatenations, the global mean) is
left to the table's fitted constant (``table.py``).

An entry's key is readable: the unit's class and its layers in order, then the input shape, e.g.
``InvertedResidual(conv1x1/s1 24>72 bn relu conv5x5/s2 72>72 g72 bn relu ...) @ 1x24x56x56``.

:func:`covering_archs` lists a few architectures whose units are every unit the space can
produce (checked against random samples in the tests), so a table is built from them alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mote_optuna.errors import UserError
from mote_optuna.spaces import SearchSpace
from mote_optuna.spaces.base import HasCoveringArchs, is_latency_container

_CONTAINERS = (nn.ModuleList, nn.ModuleDict)
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
    calls: list[Unit] = []

    def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        in_shape = tuple(args[0].shape)
        key = f"{describe(module)} @ {'x'.join(map(str, in_shape))}"
        calls.append(Unit(key, module, in_shape))

    _forward(model, shape, [m.register_forward_pre_hook(hook) for m in chosen])
    return calls


def layer_work(model: nn.Module, shape: tuple[int, ...]) -> dict[str, float]:
    """The work of each kind of leaf layer, summed over ``model`` (one forward pass with hooks,
    on ``model``'s device: ``meta`` does no arithmetic): convolutions as ``conv`` or depthwise
    ``dw`` (``:macs``, ``:mem`` input + output elements, ``:n`` layers), ``linear:macs``, and
    every other leaf's output elements (``ReLU:elems``, ``BatchNorm2d:elems``, ...). Millions,
    so the features of a latency model fitted on few networks stay few (``fitted.py``)."""
    work: dict[str, float] = {}

    def add(name: str, value: float) -> None:
        work[name] = work.get(name, 0.0) + value

    def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        n_in, n_out = args[0].numel() / 1e6, out.numel() / 1e6
        if isinstance(module, nn.Conv2d):
            kind = "dw" if 1 < module.groups == module.in_channels else "conv"
            fan_in = module.in_channels // module.groups * math.prod(module.kernel_size)
            add(f"{kind}:macs", n_out * fan_in)
            add(f"{kind}:mem", n_in + n_out)
            add(f"{kind}:n", 1.0)
        elif isinstance(module, nn.Linear):
            add("linear:macs", n_out * module.in_features)
        else:
            add(f"{type(module).__name__}:elems", n_out)

    leaves = [m for m in model.modules() if not list(m.children())]
    _forward(model, shape, [m.register_forward_hook(hook) for m in leaves])
    return work


def _forward(model: nn.Module, shape: tuple[int, ...], handles: list[Any]) -> None:
    """One forward pass of zeros on ``model``'s device, then the hooks' ``handles`` removed."""
    try:
        with torch.inference_mode():
            model(torch.zeros(shape, device=next(model.parameters()).device))
    finally:
        for handle in handles:
            handle.remove()


def _walk(module: nn.Module, *, root: bool = False) -> Iterator[nn.Module]:
    if (
        root
        or type(module) is nn.Sequential
        or isinstance(module, _CONTAINERS)
        or is_latency_container(module)
    ):
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
    """Architectures whose units, together, are all units of the space (the space's own
    ``covering_archs``; checked against random samples in the tests)."""
    if isinstance(space, HasCoveringArchs):
        return space.covering_archs()
    raise UserError(
        f"space {space.name!r} defines no covering_archs(), so no latency table can be built for "
        "it; use latency.mode: measured, or add covering_archs() to the space"
    )
