"""Where a network is timed: ``torch`` eager on CPU, ``onnxruntime`` on CPU, or ``cuda``.

A runtime turns a module and an input shape into a zero-argument ``run`` that performs one
inference; :func:`median_ms` times it (median of ``runs`` calls after ``warmup`` calls). The
thread count is fixed while timing (torch: ``torch.set_num_threads``, restored afterwards;
onnxruntime: ``intra_op_num_threads``, one inter-op thread) and recorded in :func:`runtime_key`.

The clock: with one thread on a CPU runtime, inference runs on the calling thread, so its CPU
time (``time.thread_time_ns``, user + system) is its latency without the time the OS gave other
processes; ``clock: auto`` uses it there, and wall time (``perf_counter_ns``) elsewhere. On the
shared 2-core machine under load 5, 20 runs of one MobileNetV3 on onnxruntime spread over
7.9-9.8 ms of CPU time against 7.7-16.8 ms of wall time (docs/HISTORY.md).
"""

from __future__ import annotations

import io
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mote_optuna.errors import UserError

RUNTIMES = ("torch", "onnxruntime", "cuda")
CLOCKS = ("auto", "cpu", "wall")


@dataclass(frozen=True)
class Run:
    """One inference of a compiled network (``run()``), and a read of its input (``touch``)."""

    call: Callable[[], object]
    touch: Callable[[], object]

    def __call__(self) -> object:
        return self.call()


@dataclass(frozen=True)
class Runtime:
    """A named runtime with its fixed thread count and batch size."""

    name: str
    threads: int = 1
    batch_size: int = 1
    clock: str = "auto"

    @property
    def clock_used(self) -> str:
        """``cpu`` (thread CPU time) or ``wall``; ``auto``: cpu for 1 thread on a CPU runtime."""
        if self.clock != "auto":
            return self.clock
        return "cpu" if self.threads == 1 and self.name != "cuda" else "wall"

    def median_ms(self, run: Run, *, warmup: int, runs: int, scrub: Any = None) -> float:
        """:func:`median_ms` on this runtime's clock."""
        clock = time.thread_time_ns if self.clock_used == "cpu" else time.perf_counter_ns
        return median_ms(run, warmup=warmup, runs=runs, scrub=scrub, clock=clock)

    def compile(self, module: nn.Module, shape: tuple[int, ...]) -> Run:
        """A call running ``module`` once on zeros of ``shape`` (the module is put in eval)."""
        module = module.eval()
        if self.name == "onnxruntime":
            return _onnx_session(module, shape, self.threads)
        device = "cuda" if self.name == "cuda" else "cpu"
        module = module.to(device)
        x = torch.zeros(shape, device=device)

        def run() -> object:
            with torch.inference_mode():
                out = module(x)
            if device == "cuda":
                torch.cuda.synchronize()
            return out

        return Run(run, lambda: float(x.sum()))

    @contextmanager
    def threads_fixed(self) -> Iterator[None]:
        """Fix torch's intra-op threads while timing; restored afterwards."""
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def get_runtime(
    name: str, *, threads: int = 1, batch_size: int = 1, clock: str = "auto"
) -> Runtime:
    """The runtime ``name``; a UserError (one line) when unknown or not usable here."""
    if name not in RUNTIMES:
        raise UserError(f"latency runtime {name!r} is unknown; use one of {', '.join(RUNTIMES)}")
    if clock not in CLOCKS:
        raise UserError(f"latency clock {clock!r} is unknown; use one of {', '.join(CLOCKS)}")
    if clock == "cpu" and (threads != 1 or name == "cuda"):
        raise UserError("latency clock 'cpu' needs threads 1 on a CPU runtime; use wall")
    if threads < 1 or batch_size < 1:
        raise UserError("latency threads and batch_size must be 1 or more")
    if name == "onnxruntime":
        _import_onnxruntime()
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("latency runtime 'cuda': no CUDA device here; use torch or onnxruntime")
    return Runtime(name, threads, batch_size, clock)


def default_runtime() -> str:
    """onnxruntime when installed (the ``onnx`` extra), else torch."""
    try:
        _import_onnxruntime()
    except UserError:
        return "torch"
    return "onnxruntime"


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise UserError(
            "latency runtime 'onnxruntime' needs the onnxruntime package: "
            "pip install 'mote_optuna[onnx]' (or use runtime torch)"
        ) from None
    return onnxruntime


def _onnx_session(module: nn.Module, shape: tuple[int, ...], threads: int) -> Run:
    import numpy as np

    ort = _import_onnxruntime()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the TorchScript-based exporter: ~10x faster than dynamo=True for these small graphs
        torch.onnx.export(
            module, (torch.zeros(shape),), buffer, dynamo=False,  # type: ignore[arg-type]
            input_names=["x"], output_names=["y"],
        )  # fmt: skip
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    feed = {"x": np.zeros(shape, dtype=np.float32)}
    return Run(lambda: session.run(None, feed), lambda: float(feed["x"].sum()))


def median_ms(
    run: Run,
    *,
    warmup: int,
    runs: int,
    scrub: Any = None,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> float:
    """Median time of ``runs`` calls after ``warmup`` untimed ones, in milliseconds.

    ``scrub`` (a float32 numpy array) is rewritten before each call, untimed, to evict the
    call's weights and buffers from the caches, as the rest of a network does between two runs
    of one of its layers; then the input is read back into the cache, as the layer before it in
    the network has just written it.
    """
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        if scrub is not None:
            scrub += 1.0
            run.touch()
        start = clock()
        run()
        times.append(clock() - start)
    return statistics.median(times) / 1e6


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def runtime_key(runtime: Runtime) -> dict[str, Any]:
    """What a table measured on this machine depends on: hardware, runtime, threads, versions."""
    machine = {"cpu": cpu_model(), "arch": platform.machine(), "system": platform.system()}
    if runtime.name == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(0)
    versions = {"torch": torch.__version__.split("+")[0]}
    if runtime.name == "onnxruntime":
        versions["onnxruntime"] = _import_onnxruntime().__version__
    if runtime.name == "cuda":
        versions["cuda"] = str(torch.version.cuda)
    return {
        "machine": machine,
        "runtime": runtime.name,
        "clock": runtime.clock_used,
        "threads": runtime.threads,
        "batch_size": runtime.batch_size,
        "versions": versions,
    }
