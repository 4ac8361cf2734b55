"""Higher-fidelity values of an architecture: a benchmark's recorded accuracy, or real training.

Two sources, one interface (``Fidelity``), for ``evaluate`` and the ``select`` stage:

- ``TableFidelity``: a column of a ground-truth table read with ``truth.accuracy_by_arch``. For
  selection (``validation_only``) a column with ``test`` in its name is refused: the pick must not
  see test accuracy. One value costs one query, counted as one 12-epoch training on NB201.
- ``TrainFidelity``: trains the space's full network on the evaluation dataset (default the
  study's own) with the study's ``evaluation`` recipe (``training.train_and_test``) and returns
  the held-out accuracy.

``key`` names what a value means (the column, or a digest of the recipe and the dataset), so
values stored under one key are reused by a re-run and never mixed with another fidelity's.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import torch

from mote_optuna.config import EvaluationConfig, StudyConfig
from mote_optuna.data import load_arrays, to_tensor
from mote_optuna.errors import UserError
from mote_optuna.estimators.contract import resolve_device
from mote_optuna.spaces import SearchSpace
from mote_optuna.training import split, train_and_test
from mote_optuna.truth import accuracy_by_arch

__all__ = ["DEFAULT_SELECT_COLUMN", "Fidelity", "TableFidelity", "TrainFidelity"]

DEFAULT_SELECT_COLUMN = "cifar10_valid_acc_12ep"  # NB201's 12-epoch validation accuracy


class Fidelity(Protocol):
    """What a second-stage value is and how to get one."""

    name: str  # "table" or "train"
    key: str  # identifies the stored values of this fidelity
    column: str | None  # the table column, or None when trained
    source: str  # in words, for the output
    unit: str  # what one query costs, in words

    def measure(self, space: SearchSpace, arch: Any, arch_str: str) -> tuple[float, float]:
        """(value, seconds) of one architecture."""
        ...


class TableFidelity:
    """A recorded accuracy column of a table keyed by architecture string."""

    name = "table"

    def __init__(
        self, space: SearchSpace, path: Path, column: str | None, *, validation_only: bool
    ) -> None:
        if validation_only:
            column = column or DEFAULT_SELECT_COLUMN
            if "test" in column.lower():
                raise UserError(
                    f"--truth-column {column}: a test column; the top-k stage picks on "
                    f"validation accuracy only (e.g. {DEFAULT_SELECT_COLUMN})"
                )
        self.path = path
        self.values, found = accuracy_by_arch(space, path, column)
        self.column: str | None = found
        self.key = f"table:{found}"
        self.source = f"truth {path.name}:{found} (recorded, not trained)"
        self.unit = "recorded 12-epoch training" if "12ep" in found else "recorded training"

    def measure(self, space: SearchSpace, arch: Any, arch_str: str) -> tuple[float, float]:
        value = self.values.get(arch_str)
        if value is None or math.isnan(value):
            raise UserError(
                f"--truth {self.path}: no {self.column} for {arch_str}; give a table that has "
                "every architecture of the study"
            )
        return float(value), 0.0


class TrainFidelity:
    """Held-out accuracy after training the full network with the study's recipe."""

    name = "train"
    column: str | None = None

    def __init__(self, config: StudyConfig, space: SearchSpace, recipe: EvaluationConfig) -> None:
        self.recipe = recipe
        dataset = recipe.dataset or config.dataset
        self.device = resolve_device(config.device)
        train, test = split(load_arrays(dataset), recipe.test_fraction, recipe.seed)
        resolution = space.full_net.resolution
        self.train = to_tensor(train, resolution=resolution, device=self.device)
        self.test = to_tensor(test, resolution=resolution, device=self.device)
        settings = {**asdict(recipe), "dataset": asdict(dataset)}
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
        self.key = f"train:{digest[:12]}"
        self.unit = f"{recipe.epochs}-epoch training"
        self.source = (
            f"trained: {recipe.epochs} epochs on {dataset.name} ({len(self.train.y)} train / "
            f"{len(self.test.y)} held-out images, {self.device.type})"
        )

    def measure(self, space: SearchSpace, arch: Any, arch_str: str) -> tuple[float, float]:
        torch.manual_seed(self.recipe.seed)
        model = space.build_full(arch, num_classes=self.train.num_classes)
        return train_and_test(model, self.train, self.test, self.recipe)
