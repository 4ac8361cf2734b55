"""The zero-cost terms of one architecture, computed the same way by the ``ensemble`` estimator
and by ``bench correlation``: the live size, AZ-NAS as published (``az_*``), its real-image
variant (``azr_*``, the ensemble's), MeCo and NASWOT.

Every term comes from a freshly built full network (seeded with ``seed``), so it is
deterministic and needs no label. The published AZ-NAS reads Gaussian noise drawn from ``seed``;
the other terms read one fixed minibatch of the study's dataset (``proxy_batch``), whose labels
are never read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mote_optuna.cost import measure
from mote_optuna.data import ImageArrays, TensorData, to_tensor
from mote_optuna.estimators import az_nas, proxies
from mote_optuna.spaces import SearchSpace

NASWOT_BATCH = 32  # the first NASWOT_BATCH images of the same minibatch


def proxy_batch(
    arrays: ImageArrays, size: int, seed: int, resolution: int, device: torch.device
) -> TensorData:
    """``size`` images of ``arrays`` after a seeded shuffle, at ``resolution``.
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
        full, resolution = self.space.full_net.resolution, self.batch.x.shape[-1]
        live = measure(self.space.build_live(arch), full)
        out = {"live_flops": live.flops, "live_params": live.params}
        out.update(az_nas.az_nas_real(self._fresh(arch), self.batch.x, self._generator()))
        device = self.batch.x.device
        out.update(published_az_nas(self.space, arch, self.seed, resolution, device, full=full))
        out["meco"] = proxies.meco(self._fresh(arch), self.batch.x)
        out["naswot"] = proxies.naswot(self._fresh(arch), self.batch.x[:NASWOT_BATCH])
        return out

    def _fresh(self, arch: Any) -> torch.nn.Module:
        torch.manual_seed(self.seed)
        return self.space.build_full(arch).to(self.batch.x.device)

    def _generator(self) -> torch.Generator:
        return torch.Generator(self.batch.x.device).manual_seed(self.seed)


def published_az_nas(
    space: SearchSpace,
    arch: Any,
    seed: int,
    resolution: int,
    device: torch.device,
    num_classes: int | None = None,
    full: int | None = None,
) -> dict[str, float]:
    """AZ-NAS's four terms as its authors compute them (``az_nas.az_nas``) for the full network
    of ``arch`` at ``resolution`` (``num_classes`` outputs, default the space's): expressivity,
    progressivity and trainability on noise drawn from ``seed``, complexity = its FLOPs (at
    ``full``, default ``resolution``). No image of any dataset is read."""
    torch.manual_seed(seed)
    model = space.build_full(arch, num_classes=num_classes)
    out = {"az_complexity": measure(model, full or resolution).flops}
    generator = torch.Generator(device).manual_seed(seed)
    out.update(az_nas.az_nas(model.to(device), resolution, generator))
    return out
