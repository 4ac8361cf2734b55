"""This machine's latency model fitted on whole networks (issue 22): ``latency.mode: fitted``.

A lookup table (``table.py``) times each operation once, in one process, so every entry carries
that process's noise, and a network's prediction sums them. Here whole networks are timed
instead: :func:`build_model` draws ``networks`` distinct architectures (seeded), times each full
network in ``sessions`` fresh processes (spawned one after the other, so they never compete
with each other; each compiles every network anew; every other session runs them in reverse
order so that drift within a session falls on different networks), takes the median over the
sessions per network and fits :class:`fitted.AdditiveLatencyModel` on the space's unit counts.

The file (:class:`MachineModel`) keeps the machine and runtime it was measured on (the table's
``runtime_key``), the networks, every timing and the weights. :func:`load_model` refuses a model
of another space or setup; a study stores its digest and what it was fitted on
(``LatencyMeter.describe``), so a resumed study with another model is refused.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mote_optuna.errors import UserError
from mote_optuna.latency.fitted import AdditiveLatencyModel, latency_features
from mote_optuna.latency.runtimes import Runtime, runtime_key
from mote_optuna.latency.table import (
    Progress,
    cache_dir,
    key_hash,
    provenance,
    refuse_foreign,
)
from mote_optuna.latency.units import full_network, input_shape
from mote_optuna.spaces import SearchSpace
from mote_optuna.spaces.sampling import distinct_archs

__all__ = [
    "MachineModel",
    "build_model",
    "default_model_path",
    "load_model",
    "time_in_fresh_processes",
]

MODEL_SEED = 0  # which networks are drawn; a bench draws its held-out networks elsewhere


def _time_session(
    space: SearchSpace, runtime: Runtime, archs: list[Any], warmup: int, runs: int, reverse: bool
) -> list[float]:
    """One fresh process: compile and time every network (ms), in ``archs`` order."""
    shape = input_shape(space, runtime.batch_size)
    order = range(len(archs) - 1, -1, -1) if reverse else range(len(archs))
    out = [float("nan")] * len(archs)
    with runtime.threads_fixed():
        for i in order:
            run = runtime.compile(full_network(space, archs[i]), shape)
            out[i] = runtime.median_ms(run, warmup=warmup, runs=runs)
    return out


def time_in_fresh_processes(
    space: SearchSpace,
    runtime: Runtime,
    archs: Sequence[Any],
    *,
    sessions: int,
    warmup: int,
    runs: int,
    progress: Progress | None = None,
) -> np.ndarray:
    """Latency (ms) of each network in each session: shape (networks, sessions). Each session
    is a new spawned process, one at a time; odd sessions time the networks in reverse."""
    context = multiprocessing.get_context("spawn")
    wrap = progress or (lambda items, total, desc: items)
    columns = []
    with ProcessPoolExecutor(1, mp_context=context, max_tasks_per_child=1) as pool:
        for s in wrap(range(sessions), sessions, f"fresh processes ({len(archs)} networks)"):
            job = pool.submit(_time_session, space, runtime, list(archs), warmup, runs, s % 2 == 1)
            columns.append(job.result())
    return np.array(columns, dtype=float).T


@dataclass
class MachineModel:
    """A fitted model of this machine and the measurements it was fitted on."""

    space: str
    key: dict[str, Any]  # runtime_key: machine, runtime, clock, threads, batch, versions
    sessions: int
    warmup: int
    runs: int
    archs: list[str]  # the fitted networks (space.to_str)
    timings_ms: list[list[float]]  # per network, one value per fresh process
    weights: dict[str, float]
    build_seconds: float = 0.0
    created: str = ""
    seed: int = MODEL_SEED
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def additive(self) -> AdditiveLatencyModel:
        return AdditiveLatencyModel(self.weights, fitted_on=len(self.archs))

    @property
    def digest(self) -> str:
        return self.additive.digest()

    def arch_keys(self, space: SearchSpace) -> set[str]:
        """The fitted networks' keys (a bench holds them out)."""
        return {space.key(space.from_str(text)) for text in self.archs}

    def predict(self, space: SearchSpace, arch: Any) -> float:
        return self.additive.predict(latency_features(space, arch))

    def describe(self) -> dict[str, Any]:
        """What it was fitted on: stored with a study, compared on resume."""
        return {
            "digest": self.digest,
            "key": key_hash(self.key),
            "cpu": self.key["machine"]["cpu"],
            "networks": len(self.archs),
            "sessions": self.sessions,
            "seed": self.seed,
        }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> MachineModel:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(
                f"latency model {path} is unreadable ({exc}); rebuild it with "
                "python -m mote_optuna latency build --mode fitted --force"
            ) from None


def default_model_path(space: SearchSpace, runtime: Runtime) -> Path:
    """Beside the lookup table: ``<cache>/<runtime>-<key hash>/<space>.fitted.json``."""
    folder = f"{runtime.name}-{key_hash(runtime_key(runtime))}"
    return cache_dir() / folder / f"{space.name}.fitted.json"


def build_model(
    space: SearchSpace,
    runtime: Runtime,
    *,
    networks: int,
    sessions: int,
    warmup: int,
    runs: int,
    seed: int = MODEL_SEED,
    progress: Progress | None = None,
) -> MachineModel:
    """Time ``networks`` seeded architectures in ``sessions`` fresh processes and fit."""
    if networks < 2 or sessions < 1:
        raise UserError("a fitted latency model needs networks >= 2 and sessions >= 1")
    start = time.perf_counter()
    archs = distinct_archs(space, networks, seed)
    timings = time_in_fresh_processes(
        space, runtime, archs, sessions=sessions, warmup=warmup, runs=runs, progress=progress
    )
    fitted = AdditiveLatencyModel.fit(
        [latency_features(space, a) for a in archs], np.median(timings, axis=1)
    )
    return MachineModel(
        **provenance(space, runtime, start),
        sessions=sessions,
        warmup=warmup,
        runs=runs,
        archs=[space.to_str(a) for a in archs],
        timings_ms=timings.tolist(),
        weights=fitted.weights,
        seed=seed,
    )


def load_model(space: SearchSpace, runtime: Runtime, path: Path | None = None) -> MachineModel:
    """The checked model at ``path`` (default: the cache); UserError when missing or foreign."""
    path = path or default_model_path(space, runtime)
    hint = (
        f"python -m mote_optuna latency build --mode fitted --space {space.name} "
        f"--runtime {runtime.name} --threads {runtime.threads} --batch-size {runtime.batch_size}"
    )
    if not path.is_file():
        raise UserError(f"no fitted latency model for {space.name} at {path}; build it: {hint}")
    model = MachineModel.load(path)
    stored = (model.space, model.key)
    refuse_foreign("latency model", path, stored, space, runtime, f"{hint} --force")
    return model
