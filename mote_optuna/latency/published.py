"""Published device latency as a runtime: ``latency: {runtime: published, device: pixel3,
file: nb201_device_latency.csv}``. Nothing is timed.

- NAS-Bench-201 (HW-NAS-Bench, HELP: every cell measured): a cell's value is its row.
- Accel-NASBench (5,125 measured networks of a far larger space): the additive model of
  latency/fitted.py, fitted on every measured network of the device.

Device names come from the column names: ``hwnb_cifar10_pixel3_latency_ms`` is ``pixel3``,
``help_2080ti_1_latency_ms`` is ``2080ti_1``, ``latency_zcu102_mean`` is ``zcu102``. The study
records the device, the file's digest and (fitted) the model's digest, and refuses to resume with
others (``describe`` goes into the study metadata).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mote_optuna.errors import UserError
from mote_optuna.latency.fitted import AdditiveLatencyModel, latency_features
from mote_optuna.spaces import SearchSpace
from mote_optuna.spaces.base import HasTruth

__all__ = ["ROW_SPACES", "PublishedLatency", "device_columns", "read_published"]

ROW_SPACES = ("nb201",)
"""Spaces whose published tables measure every architecture: the value is the row."""

_COLUMN = re.compile(
    r"^(?:hwnb_cifar10_|help_)?(?P<device>.+)_latency_ms$|^latency_(?P<d2>.+)_mean$"
)


def device_columns(columns: list[str]) -> dict[str, str]:
    """Device name -> latency column (ms) of a published table."""
    out = {}
    for column in columns:
        match = _COLUMN.match(column)
        if match:
            out[match.group("device") or match.group("d2")] = column
    return out


def read_published(space: SearchSpace, path: str | Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """The published table of ``space`` (one row per measured architecture, ``arch_str`` as the
    space's ``to_str`` spells it) and its device columns; a one-line error for a missing file
    or a table of another space."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"latency.file {path}: no such file (a published latency CSV)")
    header = pd.read_csv(path, nrows=0).columns.tolist()
    if "arch_str" in header:
        frame = pd.read_csv(path)
        try:  # the space's own spelling: every cell was measured, equivalent ones too
            frame["arch_str"] = [space.to_str(space.from_str(a)) for a in frame.arch_str]
        except Exception as exc:
            raise UserError(f"latency.file {path}: not a table of {space.name} ({exc})") from None
    elif isinstance(space, HasTruth):
        frame = space.read_truth(path)  # its arch_str is the space's to_str
    else:
        raise UserError(f"latency.file {path}: no arch_str column to read {space.name} from")
    devices = device_columns([str(c) for c in frame.columns])
    if not devices:
        raise UserError(f"latency.file {path}: no latency column (*_latency_ms or latency_*_mean)")
    return frame.drop_duplicates("arch_str"), devices


class PublishedLatency:
    """Latency (ms) of ``device`` from a published table: the row, or the fitted model."""

    def __init__(self, space: SearchSpace, path: str | Path, device: str) -> None:
        frame, devices = read_published(space, path)
        if device not in devices:
            raise UserError(
                f"latency.device {device!r}: {Path(path).name} has {', '.join(sorted(devices))}"
            )
        self.space = space
        self.device = device
        self.digest = hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()[:12]
        values = frame[devices[device]].to_numpy(dtype=float)
        measured = np.isfinite(values)
        self.rows = dict(zip(frame.arch_str[measured], values[measured], strict=True))
        self.model: AdditiveLatencyModel | None = None
        if space.name not in ROW_SPACES:
            archs = [space.from_str(a) for a in frame.arch_str[measured]]
            counts = [latency_features(space, a) for a in archs]
            self.model = AdditiveLatencyModel.fit(counts, values[measured])

    def __call__(self, arch: Any) -> float:
        if self.model is not None:
            return self.model.predict(latency_features(self.space, arch))
        text = self.space.to_str(arch)
        if text not in self.rows:
            raise UserError(f"latency: {text} has no {self.device} value in the table")
        return float(self.rows[text])

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mode": "published",
            "runtime": "published",
            "device": self.device,
            "file_sha256": self.digest,
        }
        if self.model is not None:
            out["model"] = {
                "kind": "additive units, nnls",
                "fitted_on": self.model.fitted_on,
                "digest": self.model.digest(),
            }
        return out
