"""The per-machine latency lookup table of a space, as OFA's ``latency_lookup_table``.

A table holds one entry per unit (operation and input shape, ``units.py``): its median time in
milliseconds, timed alone on one runtime, minus the runtime's cost of one call (a 1-element ReLU,
``call_ms``), so that entries add up. Before each timed run a buffer the size of a typical
network's weights in the space (``scrub_mb``) is rewritten and the unit's input read back: in a
network, the other layers evict a layer's weights between two inferences, while its input has
just been written by the layer before (timed hot in a loop, MobileNetV3's units summed to 60 % of
the network). The prediction for an architecture is

    latency = sum of its units' entries + overhead_ms

``overhead_ms`` is fitted once, when the table is built: the median, over a few seeded random
architectures (``CALIBRATION_SEED``, not the benchmark's seed), of measured end-to-end latency
minus the sum of entries. It holds what no unit times (one call into the runtime, a cell's sums,
concatenations, the global mean). The prediction is a pure function of the table: the same on
every worker and independent of the machine's load at search time.

A table is keyed by :func:`runtimes.runtime_key` (CPU/GPU model, runtime, threads, batch size,
library versions) and stored as JSON in ``$XDG_CACHE_HOME/mote_optuna/latency/<runtime>-<hash>/
<space>.json`` (``~/.cache`` by default), or in a file the study names (``latency.table``). A
table whose key differs from this machine's is refused with the command that rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from mote_optuna.cost import count_params
from mote_optuna.errors import UserError
from mote_optuna.latency.runtimes import Runtime, runtime_key
from mote_optuna.latency.units import covering_archs, full_network, input_shape, units
from mote_optuna.spaces import SearchSpace

FORMAT = 1
CALIBRATION_SEED = 20261202
CALIBRATION_ARCHS = 5

Progress = Callable[[Iterable[Any], int, str], Iterable[Any]]


@dataclass
class LatencyTable:
    space: str
    key: dict[str, Any]
    warmup: int
    runs: int
    scrub_mb: float
    call_ms: float
    overhead_ms: float
    entries: dict[str, float]
    calibration: list[dict[str, Any]] = field(default_factory=list)
    build_seconds: float = 0.0
    created: str = ""
    format: int = FORMAT

    @property
    def key_hash(self) -> str:
        return key_hash(self.key)

    @property
    def digest(self) -> str:
        """A short hash of the entries and overhead: two tables predict alike iff it is equal."""
        body = json.dumps([self.entries, self.overhead_ms], sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:12]

    def lookup(self, keys: Iterable[str]) -> float:
        """Predicted latency (ms) of a network with these unit keys."""
        try:
            return sum(self.entries[k] for k in keys) + self.overhead_ms
        except KeyError as missing:
            raise UserError(
                f"latency table of {self.space} has no entry {missing}: the space changed since "
                "it was built; rebuild it with python -m mote_optuna latency build"
            ) from None

    def predict(self, space: SearchSpace, arch: Any) -> float:
        batch = self.key["batch_size"]
        model = full_network(space, arch, meta=True)
        return self.lookup(u.key for u in units(model, input_shape(space, batch)))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(asdict(self), indent=1, sort_keys=True))
        tmp.replace(path)  # atomic: a concurrent reader sees the old table or the new one

    @classmethod
    def load(cls, path: Path) -> LatencyTable:
        try:
            raw = json.loads(path.read_text())
            table = cls(**raw)
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(
                f"latency table {path}: not a mote_optuna latency table ({exc})"
            ) from None
        if table.format != FORMAT:
            raise UserError(
                f"latency table {path}: format {table.format}, this version reads {FORMAT}; "
                "rebuild it with python -m mote_optuna latency build"
            )
        return table


def key_hash(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mote_optuna" / "latency"


def default_path(space: SearchSpace, runtime: Runtime) -> Path:
    """``<cache>/<runtime>-<key hash>/<space>.json``: one folder per machine and runtime."""
    return cache_dir() / f"{runtime.name}-{key_hash(runtime_key(runtime))}" / f"{space.name}.json"


def rebuild_hint(space: SearchSpace, runtime: Runtime, path: Path, *, force: bool) -> str:
    clock = f" --clock {runtime.clock}" if runtime.clock != "auto" else ""
    return (
        f"python -m mote_optuna latency build --space {space.name} --runtime {runtime.name} "
        f"--threads {runtime.threads} --batch-size {runtime.batch_size}{clock} --table {path}"
        + (" --force" if force else "")
    )


def key_differences(stored: dict[str, Any], runtime: Runtime) -> str:
    """How a stored ``runtime_key`` differs from this machine's ("" when it does not)."""
    here = runtime_key(runtime)
    return "; ".join(
        f"{name} {stored.get(name)} (here {here[name]})"
        for name in here
        if stored.get(name) != here[name]
    )


def refuse_foreign(
    what: str, path: Path, stored: tuple[str, dict[str, Any]], space: SearchSpace,
    runtime: Runtime, rebuild: str,
) -> None:  # fmt: skip
    """Refuse a stored ``what`` (its space name and ``runtime_key``) of another space, machine,
    runtime, thread count or library version, with the command that rebuilds it here."""
    stored_space, stored_key = stored
    if stored_space != space.name:
        raise UserError(f"{what} {path} is for space {stored_space}, not {space.name}")
    diffs = key_differences(stored_key, runtime)
    if diffs:
        raise UserError(
            f"{what} {path} was measured on another setup: {diffs}; rebuild it here: {rebuild}"
        )


def check_table(table: LatencyTable, space: SearchSpace, runtime: Runtime, path: Path) -> None:
    """Refuse a table of another space, machine, runtime, thread count or library version."""
    rebuild = rebuild_hint(space, runtime, path, force=True)
    refuse_foreign("latency table", path, (table.space, table.key), space, runtime, rebuild)


def load_table(space: SearchSpace, runtime: Runtime, path: Path | None = None) -> LatencyTable:
    """The checked table at ``path`` (default: the cache); UserError when missing or foreign."""
    path = path or default_path(space, runtime)
    if not path.is_file():
        raise UserError(
            f"no latency table for {space.name} on this machine at {path}; build it once: "
            f"{rebuild_hint(space, runtime, path, force=False)}"
        )
    table = LatencyTable.load(path)
    check_table(table, space, runtime, path)
    return table


def build_table(
    space: SearchSpace,
    runtime: Runtime,
    *,
    warmup: int = 5,
    runs: int = 20,
    calibration_archs: int = CALIBRATION_ARCHS,
    scrub_mb: float | None = None,
    progress: Progress | None = None,
) -> LatencyTable:
    """Time every unit of the space alone, then fit ``overhead_ms`` on seeded architectures."""
    start = time.perf_counter()
    shape = input_shape(space, runtime.batch_size)
    found: dict[str, tuple[nn.Module, tuple[int, ...]]] = {}
    for arch in covering_archs(space):
        for unit in units(full_network(space, arch), shape):
            found.setdefault(unit.key, (unit.module, unit.shape))
    rng = np.random.default_rng(CALIBRATION_SEED)
    calib = [space.sample(rng) for _ in range(calibration_archs)]
    steps = [("unit", key) for key in sorted(found)] + [("arch", a) for a in calib]
    wrap = progress or (lambda items, total, desc: items)
    entries: dict[str, float] = {}
    calibration: list[dict[str, Any]] = []
    if scrub_mb is None:  # the weights a typical network of the space streams per inference
        sizes = [4 * count_params(full_network(space, a, meta=True)) for a in calib]
        scrub_mb = statistics.median(sizes) if sizes else 0.0
    scrub = np.zeros(int(scrub_mb * 2**18), dtype=np.float32)
    with runtime.threads_fixed():
        call_ms = runtime.median_ms(
            runtime.compile(nn.ReLU(), (1, 1)), warmup=max(warmup, 20), runs=max(runs, 200)
        )
        for kind, item in wrap(steps, len(steps), f"latency table {space.name}/{runtime.name}"):
            if kind == "unit":
                module, in_shape = found[item]
                run = runtime.compile(module, in_shape)
                ms = runtime.median_ms(run, warmup=warmup, runs=runs, scrub=scrub)
                entries[item] = max(0.0, ms - call_ms)
                continue
            model = full_network(space, item)
            measured = runtime.median_ms(runtime.compile(model, shape), warmup=warmup, runs=runs)
            summed = sum(entries[u.key] for u in units(model, shape))
            calibration.append(
                {"arch": space.to_str(item), "measured_ms": measured, "sum_ms": summed}
            )
    gaps = [c["measured_ms"] - c["sum_ms"] for c in calibration]
    overhead = statistics.median(gaps) if gaps else 0.0
    return LatencyTable(
        **provenance(space, runtime, start),
        warmup=warmup,
        runs=runs,
        scrub_mb=scrub_mb,
        call_ms=call_ms,
        overhead_ms=overhead,
        entries=entries,
        calibration=calibration,
    )


def provenance(space: SearchSpace, runtime: Runtime, start: float) -> dict[str, Any]:
    """What a built table or model records of where and when it was measured: the space, the
    runtime key, the seconds since ``start`` (a ``time.perf_counter()``) and the UTC time."""
    return {
        "space": space.name,
        "key": runtime_key(runtime),
        "build_seconds": round(time.perf_counter() - start, 1),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def measure_full(
    space: SearchSpace, runtime: Runtime, arch: Any, *, warmup: int, runs: int
) -> float:
    """Measured end-to-end latency (ms) of the architecture's full network."""
    with runtime.threads_fixed():
        run = runtime.compile(full_network(space, arch), input_shape(space, runtime.batch_size))
        return runtime.median_ms(run, warmup=warmup, runs=runs)
