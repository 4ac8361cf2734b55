"""Latency of a space's full network on a named runtime: from a lookup table, from a model fitted
on whole networks, or measured.

- ``runtimes.py``: torch eager (CPU), onnxruntime (CPU), cuda; timing with fixed threads;
- ``units.py``: a full network cut into table entries, one per (operation, input shape);
- ``table.py``: the per-machine table (build, cache folder, key check, prediction);
- ``fitted.py`` and ``machine_model.py``: the additive model fitted on whole networks timed in
  fresh processes (``mode: fitted``); ``published.py``: a device's published measurements.

:class:`LatencyMeter` is what a study uses: ``meter(arch)`` is the latency in milliseconds, and
``meter.describe()`` goes into the study metadata, so that a resumed study (or another worker)
with another runtime, mode or table is refused. This package imports spaces and errors only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from mote_optuna.errors import UserError
from mote_optuna.latency.machine_model import (
    MachineModel,
    build_model,
    default_model_path,
    load_model,
)
from mote_optuna.latency.runtimes import (
    RUNTIMES,
    Runtime,
    default_runtime,
    get_runtime,
    runtime_key,
)
from mote_optuna.latency.table import (
    LatencyTable,
    build_table,
    default_path,
    load_table,
    measure_full,
)
from mote_optuna.spaces import SearchSpace

__all__ = [
    "RUNTIMES",
    "LatencyMeter",
    "LatencySource",
    "LatencyTable",
    "MachineModel",
    "Runtime",
    "build_table",
    "default_runtime",
    "get_runtime",
    "load_table",
    "measure_full",
    "tqdm_progress",
]


class LatencySource(Protocol):
    """What a study's latency objective calls: this machine's meter (``LatencyMeter``) or a
    device's published measurements (``published.PublishedLatency``)."""

    def __call__(self, arch: Any) -> float:
        """Latency (ms) of ``arch``'s full network."""

    def describe(self) -> dict[str, Any]:
        """Everything that changes the values: stored with the study, compared on resume."""


def tqdm_progress(items: Any, total: int, desc: str) -> Any:
    return tqdm(items, total=total, desc=desc, unit="entry")


class LatencyMeter:
    """Latency (ms) of an architecture's full network, by table lookup or by measurement."""

    def __init__(
        self,
        space: SearchSpace,
        runtime: Runtime,
        *,
        mode: str = "table",
        table: str | Path | None = None,
        warmup: int = 5,
        runs: int = 20,
        networks: int = 100,
        sessions: int = 3,
        build_missing: bool = True,
        out: Callable[[str], None] = print,
    ) -> None:
        self.space = space
        self.runtime = runtime
        self.mode = mode
        self.warmup = warmup
        self.runs = runs
        self.table: LatencyTable | None = None
        self.table_path: Path | None = None
        self.model: MachineModel | None = None
        if mode == "fitted":
            path = Path(table).expanduser() if table else default_model_path(space, runtime)
            if not path.exists() and build_missing:
                out(
                    f"latency: no fitted model for {space.name}/{runtime.name} here; timing "
                    f"{networks} networks in {sessions} fresh processes for {path}"
                )
                model = build_model(
                    space, runtime, networks=networks, sessions=sessions, warmup=warmup,
                    runs=runs, progress=tqdm_progress,
                )  # fmt: skip
                model.save(path)
                out(f"latency: model fitted in {model.build_seconds:.0f} s")
            self.model = load_model(space, runtime, path)
            self.table_path = path
        elif mode == "table":
            path = Path(table).expanduser() if table else default_path(space, runtime)
            if not path.exists() and build_missing:
                out(f"latency: no table for {space.name}/{runtime.name} here; building {path}")
                built = build_table(
                    space, runtime, warmup=warmup, runs=runs, progress=tqdm_progress
                )
                built.save(path)
                out(f"latency: table built in {built.build_seconds:.0f} s")
            self.table = load_table(space, runtime, path)
            self.table_path = path
        elif mode != "measured":
            raise UserError(f"latency mode {mode!r}: use table, fitted or measured")

    @classmethod
    def from_config(cls, latency: Any, space: SearchSpace, **kwargs: Any) -> LatencyMeter:
        """From a study's ``latency:`` section (``config.LatencyConfig``)."""
        runtime = get_runtime(
            latency.runtime, threads=latency.threads, batch_size=latency.batch_size,
            clock=latency.clock,
        )  # fmt: skip
        return cls(
            space, runtime, mode=latency.mode, table=latency.table,
            warmup=latency.warmup, runs=latency.runs, networks=latency.networks,
            sessions=latency.sessions, **kwargs,
        )  # fmt: skip

    def __call__(self, arch: Any) -> float:
        if self.table is not None:
            return self.table.predict(self.space, arch)
        if self.model is not None:
            return self.model.predict(self.space, arch)
        return measure_full(self.space, self.runtime, arch, warmup=self.warmup, runs=self.runs)

    def describe(self) -> dict[str, Any]:
        """Mode, runtime and (table mode) which table: stored with the study."""
        out: dict[str, Any] = {
            "mode": self.mode,
            "runtime": self.runtime.name,
            "threads": self.runtime.threads,
            "batch_size": self.runtime.batch_size,
            "clock": self.runtime.clock_used,
        }
        if self.table is not None:
            out["table"] = {
                "digest": self.table.digest,
                "key": self.table.key_hash,
                "cpu": self.table.key["machine"]["cpu"],
                "entries": len(self.table.entries),
                "overhead_ms": round(self.table.overhead_ms, 4),
            }
        elif self.model is not None:
            out["fitted"] = self.model.describe()
        else:
            out["timing"] = {"warmup": self.warmup, "runs": self.runs}
            out["machine"] = runtime_key(self.runtime)["machine"]
        return out
