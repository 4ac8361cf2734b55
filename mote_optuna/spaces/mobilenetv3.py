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

The networks, full and proxy (the Rescaled reduced architecture), are built in
``mobilenetv3_nets``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from torch import nn

from mote_optuna.spaces.base import FullNetSpec, InvalidArchitecture
from mote_optuna.spaces.mobilenetv3_nets import build_network, build_rescaled_proxy, stage_rows

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
    # NHWC training of these proxies aborts inside torch's CPU backward ("double free or
    # corruption", torch 2.14.1 on an AMD EPYC; tests/spaces/test_space_studies.py): NCHW there.
    channels_last = False
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
            stage_rows(self.stage_blocks(arch)),
            num_classes=num_classes or self.full_net.num_classes,
        )

    def build_live(self, arch: PaperArch, *, num_classes: int | None = None) -> nn.Module:
        """Every block of a MobileNetV3 reaches the output: the full network."""
        return self.build_full(arch, num_classes=num_classes)

    def covering_archs(self) -> list[PaperArch]:
        """A block depends only on its stage's (expand, kernel, se) and position, so the 18
        uniform architectures cover every latency unit."""
        return [
            ((e, k, se),) * self.blocks
            for e in PAPER_EXPANDS
            for k in PAPER_KERNELS
            for se in (False, True)
        ]


# --------------------------------------------------------------------------------------------
# the OFA space


class OFAMobileNetV3Space:
    """OFA's MobileNetV3 space, depth {2,3,4} x kernel {3,5,7} x expansion {3,4,6}."""

    name = "mobilenetv3-ofa"
    channels_last = False  # as MobileNetV3Space
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
            stage_rows(self.stage_blocks(arch)),
            num_classes=num_classes or self.full_net.num_classes,
        )

    def build_live(self, arch: OFAArch, *, num_classes: int | None = None) -> nn.Module:
        """Every block of a MobileNetV3 reaches the output: the full network."""
        return self.build_full(arch, num_classes=num_classes)

    def covering_archs(self) -> list[OFAArch]:
        """The 9 uniform (kernel, expand) architectures at depth 4 cover every latency unit."""
        return [
            ((OFA_MAX_DEPTH, ((k, e),) * OFA_MAX_DEPTH),) * self.stages
            for k in OFA_KERNELS
            for e in OFA_EXPANDS
        ]


__all__ = ["MobileNetV3Space", "OFAMobileNetV3Space"]
