"""The study file: a YAML mapping validated into dataclasses before anything runs.

Every error names the file, the dotted field and what is allowed. ``--set a.b=value`` overrides
are applied to the raw mapping first, so they are validated exactly like the file.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from mote_optuna.data import DatasetConfig
from mote_optuna.errors import ConfigError, UserError
from mote_optuna.estimators.names import SCORE_NAMES
from mote_optuna.estimators.settings import EstimatorConfig
from mote_optuna.sampler_names import SAMPLER_NAMES
from mote_optuna.spaces.registry import SPACE_NAMES, get_space, is_space_name
from mote_optuna.storage.url import storage_file, storage_kind

# Objectives: the estimators' scores (estimators/names.py), then the measured costs.
Direction = Literal["minimize", "maximize"]
METRIC_DIRECTIONS: dict[str, Direction] = {
    **dict.fromkeys(SCORE_NAMES, "maximize"),
    "flops": "minimize",
    "params": "minimize",
    "latency": "minimize",  # ms of the full network on the study's latency runtime (latency/)
}
DEFAULT_OBJECTIVES = ("mote", "flops", "params")


@dataclass
class SamplerConfig:
    name: str = field(default="nsga2", metadata={"choices": SAMPLER_NAMES})
    seed: int | None = 0
    population_size: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConstraintsConfig:
    """Budgets on the full network; a candidate over budget is rejected before any training."""

    max_flops: float | None = None
    max_params: float | None = None
    max_latency_ms: float | None = None  # needs a latency: section

    def budgets(self) -> dict[str, float]:
        """The budgets that are set, by name (``Cost.usage`` gives the matching values)."""
        names = ("max_flops", "max_params", "max_latency_ms")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def margins(self, usage: Mapping[str, float | None]) -> dict[str, float]:
        """Value minus budget of each budget that is set (Optuna's constraints: > 0 is over)."""
        return {name: value - budget for name, (value, budget) in self._pairs(usage).items()}

    def exceeded(self, usage: Mapping[str, float | None]) -> list[str]:
        """The budgets ``usage`` is over, each as ``flops 120 > 100``."""
        return [
            f"{name.removeprefix('max_')} {value:.4g} > {budget:.4g}"
            for name, (value, budget) in self._pairs(usage).items()
            if value > budget
        ]

    def _pairs(self, usage: Mapping[str, float | None]) -> dict[str, tuple[float, float]]:
        pairs = {}
        for name, budget in self.budgets().items():
            value = usage[name]
            if value is None:  # config validation asks for a latency setting with its budget
                raise UserError(f"constraints.{name}: this study does not measure it")
            pairs[name] = (value, budget)
        return pairs


@dataclass
class LatencyConfig:
    """Latency of the full network (``latency/``): the ``latency`` objective, ``max_latency_ms``.

    ``table`` sums a per-machine lookup table (deterministic; built once, in the cache folder or
    in the ``table`` file); ``fitted`` is a model fitted on ``networks`` whole networks, each
    timed in ``sessions`` fresh processes (latency/machine_model.py; built once, like a table);
    ``measured`` times each candidate's whole network.
    """

    # published: a device's published measurements (latency/published.py), nothing timed here
    runtime: Literal["torch", "onnxruntime", "cuda", "published"] = "torch"
    device: str | None = None  # published: the device (a column of ``file``), e.g. pixel3
    file: str | None = (
        None  # published: the table, e.g. HW-NAS-Bench/HELP's nb201_device_latency.csv
    )
    mode: Literal["table", "fitted", "measured"] = "table"
    table: str | None = None  # table or fitted-model file; default: the per-machine cache folder
    networks: int = 100  # fitted: whole networks timed
    sessions: int = 3  # fitted: fresh processes per network
    threads: int = 1
    batch_size: int = 1
    clock: Literal["auto", "cpu", "wall"] = "auto"  # auto: thread CPU time for 1 CPU thread
    warmup: int = 5
    runs: int = 20


@dataclass
class EvaluationConfig:
    """Final training of picked candidates (``evaluate``); NB201's 12-epoch recipe by default."""

    dataset: DatasetConfig | None = None  # None: the study's dataset
    epochs: int = 12
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    test_fraction: float = 0.2  # held-out share of the dataset for the reported accuracy
    augment: bool = True  # random crop (pad 4) + horizontal flip, as NB201 trains
    seed: int = 0


@dataclass
class SelectConfig:
    """The top-k stage (``select``, select.py): the k best distinct architectures by the study's
    score get a higher-fidelity value, and the best of those values is the final pick."""

    top_k: int | None = None  # K: the budget of queries (the command's --top-k)
    fidelity: Literal["table", "train"] = "table"
    truth: str | None = None  # table: the ground-truth CSV
    truth_column: str | None = None  # table: default cifar10_valid_acc_12ep; never a test column
    # top-k: query the top K by the score; reweight: few-query mode, the labels re-weight the
    # ensemble's terms and the remaining queries follow the re-weighted score (uses labels)
    mode: Literal["top-k", "reweight"] = "top-k"
    initial: int | None = None  # reweight: queries before the first re-weighting (ceil(K/2))
    weight_samples: int = 512  # reweight: random weight vectors tried per fit
    seed: int = 0  # reweight: seed of the weight vectors
    out: str | None = None  # folder of select.json (default: the report folder)


@dataclass
class WorkersConfig:
    """Trials at once on this host (``run``; local_pool.py) and several worker processes on one
    study (``worker``, ``run --workers N`` on a shared storage; see worker.py)."""

    # trials at once on this host (``run --workers N`` overrides): "auto" is one per available
    # core on a CPU, 1 on a GPU; each trial runs in a process of its own with ``threads`` threads
    local: int | Literal["auto"] = "auto"
    threads: int = 1  # torch threads of each of those processes (issue 23: 1 holds on a busy host)

    heartbeat_interval: int = 30  # s between heartbeats of a running trial (journal, PostgreSQL)
    grace_period: int | None = None  # PostgreSQL: s without heartbeat before failing (2x interval)
    max_retry: int | None = 2  # retries of a trial whose worker died (null: no limit)
    wait_limit_s: float = 3600.0  # longest wait for an equivalent trial another worker trains


@dataclass
class StudyConfig:
    name: str
    storage: str | None = None
    artifacts: str | None = None  # artifact folder, default beside the database; "off": none
    # a registered space (SPACE_NAMES) or a user's class by import path, module:Class
    space: str = field(default="nb201", metadata={"valid": is_space_name, "names": SPACE_NAMES})
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    n_trials: int = 20
    # what n_trials counts: every trial (a re-proposed cell is told its stored value again) or
    # distinct evaluated architectures, what a NAS user budgets
    count: Literal["trials", "distinct"] = "trials"
    objectives: list[str] = field(default_factory=lambda: list(DEFAULT_OBJECTIVES))
    constraints: ConstraintsConfig = field(default_factory=ConstraintsConfig)
    latency: LatencyConfig | None = None
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)
    source: str = field(default="<memory>", metadata={"internal": True})

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///studies/{self.name}.db"

    @property
    def storage_file(self) -> Path | None:
        """The file of a ``sqlite:///`` or ``journal:`` storage; None for a database server."""
        file = storage_file(self.storage_url)
        return Path(file).expanduser() if file else None

    def beside_storage(self, suffix: str, fallback: str) -> Path:
        """``<storage dir>/<name>-<suffix>`` for a file storage, else ``<fallback>/<name>``."""
        file = self.storage_file
        return file.parent / f"{self.name}-{suffix}" if file else Path(fallback) / self.name

    @property
    def directions(self) -> list[Direction]:
        return [METRIC_DIRECTIONS[name] for name in self.objectives]


# --------------------------------------------------------------------------------------------
# loading


def load_config(path: str | Path, overrides: list[str] | None = None) -> StudyConfig:
    """Read, override and validate a study file; raises ConfigError with one explanatory line."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise ConfigError(f"{where}: study file not found (give the path to a .yaml study file)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{where}: not a text file (byte {exc.start} is not UTF-8); "
            "give a YAML study file such as studies/quickstart.yaml"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(
            f"{where}: not valid YAML{line}: {getattr(exc, 'problem', exc)}"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the study file must be a YAML mapping of fields")
    for item in overrides or []:
        apply_override(raw, item, where)
    return config_from_dict(raw, where)


def config_from_dict(raw: dict[str, Any], where: str = "<study>") -> StudyConfig:
    if "name" not in raw:
        raise ConfigError(f"{where}: name: required (a study name such as 'quickstart')")
    config = _build(StudyConfig, raw, where, "")
    config.source = where
    _check(config, where)
    return config


def apply_override(raw: dict[str, Any], item: str, where: str) -> None:
    """Apply one ``dotted.key=value`` override (value parsed as YAML) to the raw mapping."""
    dotted, sep, text = item.partition("=")
    if not sep or not dotted.strip():
        raise ConfigError(f"--set {item!r}: expected FIELD=VALUE, for example estimator.epochs=5")
    keys = dotted.strip().split(".")
    node = raw
    for key in keys[:-1]:
        child = node.get(key)
        if child is None or isinstance(child, str):
            # a section given by name (``sampler: tpe``) becomes a mapping
            child = {} if child is None else {"name": child}
            node[key] = child
        if not isinstance(child, dict):
            raise ConfigError(f"{where}: --set {dotted}: {key} is not a section")
        node = child
    try:
        node[keys[-1]] = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        node[keys[-1]] = text


def _one_of(choices: tuple[Any, ...]) -> str:
    return "one of " + ", ".join(repr(a) for a in choices)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return _one_of(get_args(tp))
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in get_args(tp) if a is not type(None)]
        return " or ".join(names) + " (or null)"
    if origin is list:
        return "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping with fields " + ", ".join(
            f.name for f in dataclasses.fields(tp) if not f.metadata.get("internal")
        )
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, str(tp)
    )


def _convert(tp: Any, value: Any, where: str, dotted: str) -> Any:
    origin = get_origin(tp)
    fail = ConfigError(f"{where}: {dotted}: expected {_type_name(tp)}, got {value!r}")
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where, dotted)
            except ConfigError as exc:
                last = exc
        raise fail if len(options) > 2 else last
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise fail
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if tp is SamplerConfig and isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict):
            raise fail
        return _build(tp, value, where, dotted + ".")
    if origin is list:
        if not isinstance(value, list):
            raise fail
        (item_tp,) = get_args(tp)
        return [_convert(item_tp, v, where, f"{dotted}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise fail
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise fail
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise fail
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                raise fail from None
            if math.isfinite(number):
                return number
        raise fail
    if tp is str:
        if isinstance(value, str) and value.strip():
            return value
        raise fail
    raise TypeError(f"config type {tp!r} is not supported")


def _build(cls: type, raw: dict[str, Any], where: str, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in raw:
        if key not in known:
            raise ConfigError(
                f"{where}: {prefix}{key}: unknown field; allowed: {', '.join(known)}"
            )
    values = {}
    for name, f in known.items():
        choices = f.metadata.get("choices")  # names from a registry (spaces, samplers, ...)
        valid = f.metadata.get("valid")  # a registry's own rule (spaces: names or import paths)
        if name in raw and valid is not None:
            if not valid(raw[name]):
                raise ConfigError(
                    f"{where}: {prefix}{name}: expected {_one_of(f.metadata['names'])} or an "
                    f"import path module:Class, got {raw[name]!r}"
                )
            values[name] = raw[name]
        elif name in raw and choices is not None:
            if raw[name] not in choices:
                raise ConfigError(
                    f"{where}: {prefix}{name}: expected {_one_of(choices)}, got {raw[name]!r}"
                )
            values[name] = raw[name]
        elif name in raw:
            values[name] = _convert(hints[name], raw[name], where, prefix + name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: {prefix}{name}: required ({_type_name(hints[name])})")
    return cls(**values)


def _positive(where: str, dotted: str, value: float | None, *, allow_zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise ConfigError(f"{where}: {dotted}: must be a positive number, got {value}")


def _check(config: StudyConfig, where: str) -> None:
    """Range and cross-field rules that a type alone cannot say."""
    if not config.name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(
            f"{where}: name: use letters, digits, '-' and '_' only, got {config.name!r}"
        )
    _positive(where, "n_trials", config.n_trials)
    if config.space not in SPACE_NAMES:  # a user's space: imported and checked once, here
        try:
            get_space(config.space)
        except UserError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if not config.objectives:
        raise ConfigError(
            f"{where}: objectives: list at least one of {', '.join(METRIC_DIRECTIONS)}"
        )
    for i, metric in enumerate(config.objectives):
        if metric not in METRIC_DIRECTIONS:
            raise ConfigError(
                f"{where}: objectives[{i}]: unknown metric {metric!r}; allowed: "
                + ", ".join(METRIC_DIRECTIONS)
            )
    if len(set(config.objectives)) != len(config.objectives):
        raise ConfigError(f"{where}: objectives: each metric may appear once")
    est = config.estimator
    for name in ("epochs", "batch_size", "images_per_label", "width", "resolution"):
        _positive(where, f"estimator.{name}", getattr(est, name))
    if est.landscape_points is not None and est.landscape_points < 2:
        raise ConfigError(
            f"{where}: estimator.landscape_points: needs at least 2 (θ_init and θ), "
            f"got {est.landscape_points}"
        )
    _positive(where, "estimator.lr", est.lr)
    if est.calibration is not None and est.calibration.population < 3:
        raise ConfigError(
            f"{where}: estimator.calibration.population: needs at least 3 warm-up candidates "
            f"to fit λ and σ, got {est.calibration.population}"
        )
    if set(SCORE_NAMES) <= set(config.objectives):
        raise ConfigError(
            f"{where}: objectives: pick one of mote and ensemble (two estimates of the same "
            "accuracy; README, 'Which objective')"
        )
    if "ensemble" in config.objectives and est.kind == "table":
        raise ConfigError(
            f"{where}: objectives: ensemble trains its own proxy; it cannot be read from "
            "estimator.table (use estimator.kind: mote)"
        )
    if est.kind == "table" and not est.table:
        raise ConfigError(f"{where}: estimator.table: required when estimator.kind is 'table'")
    _positive(where, "constraints.max_flops", config.constraints.max_flops)
    _positive(where, "constraints.max_params", config.constraints.max_params)
    _positive(where, "constraints.max_latency_ms", config.constraints.max_latency_ms)
    _check_latency(config, where)
    ds = config.dataset
    if ds.name in ("npz", "imagefolder") and not ds.path:
        raise ConfigError(f"{where}: dataset.path: required for dataset.name {ds.name!r}")
    _positive(where, "select.top_k", config.select.top_k)
    _positive(where, "select.initial", config.select.initial)
    _positive(where, "select.weight_samples", config.select.weight_samples)
    if config.workers.local != "auto":
        _positive(where, "workers.local", config.workers.local)
    _positive(where, "workers.threads", config.workers.threads)
    _positive(where, "workers.heartbeat_interval", config.workers.heartbeat_interval)
    _positive(where, "workers.grace_period", config.workers.grace_period)
    _positive(where, "workers.max_retry", config.workers.max_retry, allow_zero=True)
    _positive(where, "workers.wait_limit_s", config.workers.wait_limit_s, allow_zero=True)
    if config.sampler.population_size is not None and config.sampler.population_size < 2:
        raise ConfigError(f"{where}: sampler.population_size: must be at least 2")
    if not storage_kind(config.storage_url):
        raise ConfigError(
            f"{where}: storage: unsupported URL scheme {config.storage_url.split(':', 1)[0]!r}; "
            "use sqlite:///PATH.db, journal:PATH or postgresql://USER@HOST/DB"
        )


def _check_latency(config: StudyConfig, where: str) -> None:
    lat = config.latency
    if lat is None:
        if "latency" in config.objectives:
            raise ConfigError(
                f"{where}: objectives: latency needs a latency: section "
                "(runtime: torch | onnxruntime | cuda | published)"
            )
        if config.constraints.max_latency_ms is not None:
            raise ConfigError(
                f"{where}: constraints.max_latency_ms needs a latency: section "
                "(runtime: torch | onnxruntime | cuda | published)"
            )
        return
    if (lat.runtime == "published") != (lat.device is not None and lat.file is not None):
        raise ConfigError(
            f"{where}: latency: runtime 'published' goes with device and file (a published "
            "table, e.g. device: pixel3, file: nb201_device_latency.csv), and only with them"
        )
    for name in ("threads", "batch_size", "runs", "networks", "sessions"):
        _positive(where, f"latency.{name}", getattr(lat, name))
    _positive(where, "latency.warmup", lat.warmup, allow_zero=True)
    if lat.networks < 2:
        raise ConfigError(f"{where}: latency.networks: a fitted model needs at least 2")
    if lat.table and lat.mode == "measured":
        raise ConfigError(f"{where}: latency.table: only for latency.mode 'table' or 'fitted'")
    if lat.clock == "cpu" and (lat.threads != 1 or lat.runtime == "cuda"):
        raise ConfigError(f"{where}: latency.clock: 'cpu' needs threads 1 on a CPU runtime")
