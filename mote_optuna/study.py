"""Create or resume a study, check that a resume is compatible, and run the optimisation loop."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from typing import Any

import optuna
import torch

from mote_optuna.budget import counted, done_in, stop_callback
from mote_optuna.callbacks import FailureGuard, ProgressPrinter
from mote_optuna.config import LatencyConfig, StudyConfig
from mote_optuna.dashboard import push_figures, save_study_note
from mote_optuna.errors import UserError
from mote_optuna.estimators.registry import make_estimator
from mote_optuna.existing_study import load_existing_study
from mote_optuna.keys import META_KEY
from mote_optuna.latency import LatencyMeter, LatencySource
from mote_optuna.latency.published import PublishedLatency
from mote_optuna.local_pool import ScoringPool
from mote_optuna.objective import Objective
from mote_optuna.samplers import make_sampler, resumed
from mote_optuna.shared_study import SharedStudy, storage_for
from mote_optuna.spaces import SearchSpace, get_space, space_hash
from mote_optuna.storage.stale import sweep_stale_trials
from mote_optuna.storage.url import is_sqlite, mask_url
from mote_optuna.warmup import ensure_calibrated

__all__ = [
    "configure_threads",
    "load_existing_study",
    "make_latency_meter",
    "open_study",
    "run_study",
    "study_metadata",
]

Printer = Callable[[str], None]


def configure_threads(workers_on_this_host: int = 1, threads: int | None = None) -> int:
    """Set this process's torch threads: ``threads``, or this host's cores shared among its
    workers (at least one thread each).

    A positive ``$OMP_NUM_THREADS`` caps it (docker workers set it per container).
    """
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // max(1, workers_on_this_host))
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) > 0:
        threads = min(threads, int(omp))
    torch.set_num_threads(threads)
    return threads


def study_metadata(
    config: StudyConfig,
    space: SearchSpace,
    estimator: dict[str, Any],
    latency: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a resumed study must share with the stored one (compared as JSON)."""
    meta = {
        "objectives": config.objectives,
        "directions": config.directions,
        "space": space.name,
        "space_hash": space_hash(space),
        "estimator": estimator,
    }
    if latency is not None:  # runtime, mode and which table (LatencyMeter.describe)
        meta["latency"] = latency
    return json.loads(json.dumps(meta))


def make_latency_meter(
    lat: LatencyConfig | None, space: SearchSpace, *, out: Printer = print
) -> LatencySource | None:
    """The meter of a study's ``latency:`` section, or None without one."""
    if lat is None:
        return None
    if lat.runtime == "published":
        assert lat.file is not None and lat.device is not None  # config validation
        return PublishedLatency(space, lat.file, lat.device)
    return LatencyMeter.from_config(lat, space, out=out)


def open_study(
    config: StudyConfig,
    *,
    storage: optuna.storages.BaseStorage,
    sampler: optuna.samplers.BaseSampler,
    metadata: dict[str, Any],
) -> optuna.Study:
    """Create the study, or load it and refuse when objectives, space or estimator differ."""
    study = optuna.create_study(
        study_name=config.name,
        storage=storage,
        directions=config.directions,
        sampler=sampler,
        load_if_exists=True,
    )
    stored = study.user_attrs.get(META_KEY)
    if stored is None:
        study.set_user_attr(META_KEY, metadata)
        save_study_note(study, config, metadata)  # optuna-dashboard note
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(config.objectives)
        stored = metadata
    stored_directions = [d.name.lower() for d in study.directions]
    if stored_directions != config.directions:
        raise UserError(
            f"study {config.name!r} in {mask_url(config.storage_url)} has directions "
            f"{stored_directions}, this file asks for {config.directions}: keep the objectives, "
            "or choose a new study name"
        )
    differences = _differences(stored, metadata)
    if differences:
        raise UserError(
            f"study {config.name!r} in {mask_url(config.storage_url)} was created with other "
            f"settings ({'; '.join(differences[:4])}): resume with the stored settings, or "
            "choose a new study name"
        )
    return study


def _differences(stored: Any, wanted: Any, path: str = "") -> list[str]:
    if isinstance(stored, dict) and isinstance(wanted, dict):
        out = []
        for key in sorted(set(stored) | set(wanted)):
            out += _differences(stored.get(key), wanted.get(key), f"{path}.{key}" if path else key)
        return out
    if stored != wanted:
        return [f"{path}: stored {stored!r}, now {wanted!r}"]
    return []


def run_study(
    config: StudyConfig,
    *,
    workers_on_this_host: int = 1,
    workers: int | None = None,
    local: int = 1,
    out: Printer = print,
) -> optuna.Study:
    """Run ``config`` until the study holds its ``n_trials`` (study-wide; ``count`` says of what).

    ``workers``: how many processes may share the storage (default ``workers_on_this_host``;
    the ``worker`` command says 2 or more, so SQLite is refused). The objective cooperates with
    other workers through the storage: exact budget, shared cache, stale trials (shared_study.py).
    ``local``: trials at once in this process, each scored in a single-thread process of a pool
    (local_pool.py); then this process runs ``workers.threads`` torch threads.
    """
    configure_threads(workers_on_this_host, config.workers.threads if local > 1 else None)
    if local <= 1:
        return _run(config, workers_on_this_host, workers, None, out)
    with ScoringPool(local, config.workers.threads) as pool:  # its imports overlap the setup
        return _run(config, workers_on_this_host, workers, pool, out)


def _run(
    config: StudyConfig,
    workers_on_this_host: int,
    workers: int | None,
    pool: ScoringPool | None,
    out: Printer,
) -> optuna.Study:
    space = get_space(config.space)
    sampler = make_sampler(config.sampler, where=config.source)
    parallel = (workers or workers_on_this_host) > 1
    if parallel:
        # one seed in every worker would propose the same candidates in every worker (Optuna
        # #3162): parallel studies are not reproducible anyway, so each worker reseeds
        sampler.reseed_rng()
    estimator = make_estimator(config, space)  # loads data: fails before any storage is touched
    latency = make_latency_meter(config.latency, space, out=out)  # builds a missing table, once
    storage = storage_for(config, workers or workers_on_this_host)
    study = open_study(
        config,
        storage=storage,
        sampler=sampler,
        metadata=study_metadata(
            config, space, estimator.describe(), latency.describe() if latency else None
        ),
    )
    stored = len(study.get_trials(deepcopy=False))
    reseeded = resumed(config.sampler, stored)
    if reseeded != config.sampler and not parallel:
        study.sampler = make_sampler(reseeded, where=config.source)
        out(
            f"resuming after {stored} stored trials: sampler seed {config.sampler.seed} "
            "reseeded with that count, so the proposals made before are not replayed"
        )
    if is_sqlite(config.storage_url):
        # SQLite serves one process (storage.make_storage refuses more), so a RUNNING trial
        # found now belongs to a worker that died: fail it and queue its retry.
        for number in sweep_stale_trials(study, older_than_s=0.0):
            out(f"trial {number} was left RUNNING by a stopped worker: marked FAIL, retry queued")
    shared = SharedStudy.for_config(config)
    for number in shared.sweep(study):  # journal: silent for 3 heartbeats; PostgreSQL: grace
        out(f"trial {number} was left RUNNING by a stopped worker: marked FAIL, retry queued")
    done = done_in(study, config.count)
    if done >= config.n_trials:
        out(f"study {config.name!r} already has {done}/{config.n_trials} {counted(config.count)}")
        return study
    objective = Objective(config, space, estimator, shared=shared, latency=latency)
    # spaces without published Box-Cox constants: fit them once per study, before any trial
    if ensure_calibrated(study, storage, config, space, estimator, objective.cost, out=out):
        done = done_in(study, config.count)  # the warm-up candidates are trials too
        if done >= config.n_trials:
            out(
                f"study {config.name!r}: {done}/{config.n_trials} {counted(config.count)} "
                "by the warm-up"
            )
            push_figures(study, config)
            return study
    out(
        f"study {config.name!r}: {done}/{config.n_trials} {counted(config.count)}, storage "
        f"{mask_url(config.storage_url)}, sampler {config.sampler.name}, space {config.space}"
    )
    progress = ProgressPrinter(config, done, out)
    guard = FailureGuard()
    stop = stop_callback(config.n_trials, config.count)
    if pool is not None:
        out(f"{pool.processes} trials at once, each in a process of {pool.threads} thread(s)")
        objective.estimator = pool.load(estimator, space)
        study.optimize(objective, n_jobs=pool.processes, callbacks=[stop, progress, guard])
    else:
        study.optimize(objective, n_trials=None, callbacks=[stop, progress, guard])
    push_figures(study, config)  # optuna-dashboard plotly figures
    message = guard.message or getattr(stop, "message", "")
    if message:
        raise UserError(message)
    return study
