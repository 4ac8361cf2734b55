"""The zero-cost terms of one architecture, computed the same way by the ``ensemble`` estimator
and by ``bench correlation``: the live size, AZ-NAS's proxies, MeCo and NASWOT.

Every term comes from a freshly built full network (seeded with ``seed``) and from one fixed
minibatch of the study's dataset (``proxy_batch``), so it is deterministic and needs no label:
the labels of the minibatch are never read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mote_optuna.cost import measure
from mote_optuna.data import ImageArrays, TensorData, to_tensor
from mote_optuna.estimators import proxies
from mote_optuna.spaces import SearchSpace

AZ_NAS_BATCH = 64  # AZ-NAS's minibatch
NASWOT_BATCH = 32  # the first NASWOT_BATCH images of the same minibatch


def proxy_batch(
    arrays: ImageArrays, size: int, seed: int, resolution: int, device: torch.device
) -> TensorData:
    """``size`` images of ``arrays`` after a seeded shuffle, at the full network's resolution.
    A smaller ``size`` with the same seed is a prefix of a larger one."""
    pick = np.random.default_rng(seed).permutation(len(arrays.y))[:size]
    batch = ImageArrays(arrays.x[pick], arrays.y[pick], arrays.class_names)
    return to_tensor(batch, resolution=resolution, device=device)


@dataclass
class ZeroCostTerms:
    """Computes the zero-cost terms of architectures of one space on one minibatch."""

    space: SearchSpace
    batch: TensorData
    seed: int = 0

    def __call__(self, arch: Any) -> dict[str, float]:
        live = measure(self.space.build_live(arch), self.space.full_net.resolution)
        out = {"live_flops": live.flops, "live_params": live.params}
        device = self.batch.x.device
        out.update(
            proxies.az_nas(
                self._fresh(arch), self.batch.x, torch.Generator(device).manual_seed(self.seed)
            )
        )
        out["meco"] = proxies.meco(self._fresh(arch), self.batch.x)
        out["naswot"] = proxies.naswot(self._fresh(arch), self.batch.x[:NASWOT_BATCH])
        return out

    def _fresh(self, arch: Any) -> torch.nn.Module:
        torch.manual_seed(self.seed)
        return self.space.build_full(arch).to(self.batch.x.device)
