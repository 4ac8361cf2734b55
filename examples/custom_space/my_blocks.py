"""A search space of your own, outside the package: three blocks, each a 3x3 convolution, a 5x5
convolution or a skip connection, on 32x32 images with 10 classes (27 architectures).

Name it in a study file as ``space: my_blocks:MyBlocks`` with this folder on the Python path
(README, "Your own search space"). mote_optuna checks it against the search-space contract
(``mote_optuna.spaces.base.SearchSpace``) before a study uses it; ``test_my_blocks.py`` runs the
full contract suite, ``mote_optuna.testing.SpaceContract``, on it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from torch import nn

from mote_optuna.spaces import InvalidArchitecture
from mote_optuna.spaces.base import FullNetSpec

OPS = ("conv3", "conv5", "skip")
BLOCKS = 3
Arch = tuple[str, ...]


class Block(nn.Module):
    """One searched block: conv-BN-ReLU with a residual, or nothing at all (skip)."""

    def __init__(self, op: str, channels: int) -> None:
        super().__init__()
        k = {"conv3": 3, "conv5": 5}.get(op)
        self.body = (
            nn.Sequential(
                nn.Conv2d(channels, channels, k, padding=k // 2, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
            )
            if k
            else None
        )

    def forward(self, x: Any) -> Any:
        return x if self.body is None else x + self.body(x)


class Net(nn.Sequential):
    """Stem conv, the three blocks, global average pooling, a linear classifier."""

    def __init__(self, arch: Arch, width: int, num_classes: int) -> None:
        super().__init__(
            nn.Conv2d(3, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            *(Block(op, width) for op in arch),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width, num_classes),
        )


class MyBlocks:
    """The search-space contract: names, encodings, equivalence and the two networks."""

    name = "my-blocks"
    full_net = FullNetSpec(resolution=32, num_classes=10)
    channels_last = False

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {
            f"block_{i}": optuna.distributions.CategoricalDistribution(OPS) for i in range(BLOCKS)
        }

    def from_params(self, params: dict[str, Any]) -> Arch:
        arch = tuple(str(params.get(f"block_{i}")) for i in range(BLOCKS))
        bad = [op for op in arch if op not in OPS]
        if bad:
            raise InvalidArchitecture(f"unknown op {bad[0]!r}; allowed: {', '.join(OPS)}")
        return arch

    def to_params(self, arch: Arch) -> dict[str, Any]:
        return {f"block_{i}": op for i, op in enumerate(arch)}

    def to_str(self, arch: Arch) -> str:
        return "-".join(arch)

    def from_str(self, text: str) -> Arch:
        ops = text.split("-")
        if len(ops) != BLOCKS:
            raise InvalidArchitecture(f"{text!r}: expected {BLOCKS} ops joined by '-'")
        return self.from_params({f"block_{i}": op for i, op in enumerate(ops)})

    def key(self, arch: Arch) -> str:
        """Equal for architectures that compute the same function: a skip block is the
        identity wherever it is, so only the sequence of convolutions counts."""
        return "-".join(op for op in arch if op != "skip") or "identity"

    def sample(self, rng: np.random.Generator) -> Arch:
        return tuple(OPS[i] for i in rng.integers(0, len(OPS), size=BLOCKS))

    def neighbours(self, arch: Arch) -> list[Arch]:
        return [
            (*arch[:i], op, *arch[i + 1 :]) for i in range(BLOCKS) for op in OPS if op != arch[i]
        ]

    def build_proxy(self, arch: Arch, *, num_classes: int, width: int) -> nn.Module:
        return Net(arch, width, num_classes)  # the reduced network: the same blocks, narrower

    def build_full(self, arch: Arch, *, num_classes: int | None = None) -> nn.Module:
        return Net(arch, 32, num_classes or self.full_net.num_classes)

    def build_live(self, arch: Arch, *, num_classes: int | None = None) -> nn.Module:
        return self.build_full(arch, num_classes=num_classes)

    def covering_archs(self) -> list[Arch]:
        """Optional: lets a latency lookup table cover the space (each op at each position)."""
        return [(op,) * BLOCKS for op in OPS]
