"""The one place that builds what scores an architecture, from (estimator settings, dataset
settings, space, device): the study's estimators (``proxy_mote``, ``ensemble``) and ``bench
correlation`` all take their MOTE estimator and zero-cost terms from here, so the bench scores
exactly as a study does (tests/bench/test_correlation.py checks one architecture both ways)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mote_optuna.data import DatasetConfig, ImageArrays, load_arrays, per_label_subset, to_tensor
from mote_optuna.estimators.az_nas import AZ_NAS_BATCH
from mote_optuna.estimators.boxcox import BoxCoxConstants
from mote_optuna.estimators.contract import resolve_device
from mote_optuna.estimators.mote import MoteEstimator, MoteSettings
from mote_optuna.estimators.settings import EstimatorConfig
from mote_optuna.estimators.zero_cost import ZeroCostTerms, proxy_batch
from mote_optuna.spaces import SearchSpace
from mote_optuna.spaces.base import zero_cost_resolution


@dataclass
class Scoring:
    """MOTE's estimator on the study's reduced data, and what it needs for the zero-cost terms."""

    space: SearchSpace
    settings: MoteSettings
    device: torch.device
    arrays: ImageArrays  # the whole dataset: the zero-cost minibatch is drawn from it
    mote: MoteEstimator
    dataset: dict[str, Any]  # what a study records of its data (the resume check)

    def zero_cost(self, batch_size: int = AZ_NAS_BATCH) -> ZeroCostTerms:
        """The zero-cost terms on a seeded minibatch at the space's zero-cost resolution."""
        res = zero_cost_resolution(self.space)
        batch = proxy_batch(self.arrays, batch_size, self.settings.seed, res, self.device)
        return ZeroCostTerms(self.space, batch, self.settings.seed)


def build_scoring(
    estimator: EstimatorConfig,
    dataset: DatasetConfig,
    space: SearchSpace,
    device: str,
    constants: BoxCoxConstants | None,
    *,
    channels_last: bool | None = None,
) -> Scoring:
    """``channels_last`` None: the estimator's CPU default unless the space turns it off."""
    settings = MoteSettings.from_config(estimator)
    torch_device = resolve_device(device)
    arrays = load_arrays(dataset)
    subset = per_label_subset(arrays, settings.images_per_label, settings.seed)
    data = to_tensor(subset, resolution=settings.resolution, device=torch_device)
    if channels_last is None and not space.channels_last:
        channels_last = False
    info = {
        "name": dataset.name,
        "path": dataset.path,
        "images": len(subset.y),
        "classes": subset.num_classes,
    }
    mote = MoteEstimator(settings, data, constants, channels_last=channels_last)
    return Scoring(space, settings, torch_device, arrays, mote, info)
