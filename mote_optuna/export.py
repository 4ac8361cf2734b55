"""Export the full network of a trial's architecture (untrained) with a script that trains it.

``python -m mote_optuna export study.yaml (--trial N | --pick RULE) --format F --out DIR``
writes to ``DIR``:

- the network, built by the space's ``build_full`` from a fixed seed, in eval mode:
  ``pytorch``: ``model.pt``, a dict with ``state_dict`` (load with ``torch.load(...,
  weights_only=True)`` into ``build_full(arch)``); ``torchscript``: ``model.torchscript.pt``,
  traced (``torch.jit.load`` runs it without mote_optuna; TorchScript is deprecated from torch
  2.10, prefer ``pytorch`` or ``onnx`` for new work); ``onnx``: ``model.onnx`` from torch's own
  exporter (``dynamo=True``; input ``images`` N x 3 x R x R with a dynamic batch, output
  ``logits``), checked with ``onnx.checker``. The ONNX graph is for inference: BatchNorm is
  folded into the convolutions;
- ``arch.json``: the space, architecture string, Optuna params, trial number and values, seed;
- ``train.py``: a minimal training script (``templates/train.py``, a linted file shipped with
  the package, with the trial filled in; SGD + Nesterov, cosine schedule, as NAS-Bench-201
  trains). It rebuilds the network with mote_optuna, loads the exported weights (ONNX: the same
  seed gives the same initial weights), trains on an ``.npz`` (``x``: N x H x W x 3 uint8, ``y``)
  or, without ``--data``, on random tensors as a smoke test, and writes the trained network in
  the same format.

After writing, the export loads the file back and checks it (PyTorch and TorchScript: the same
output as the built network on a fixed input; ONNX: ``onnx.checker.check_model``).

Pick grammar (``--pick``): one goal, then any number of conditions, separated by spaces or
commas; the candidates are the feasible Pareto front (``study.best_trials``)::

    rule      := goal { condition }
    goal      := ("max-" | "min-") metric
    condition := metric op number            (spaces around op allowed)
    op        := "<=" | "<" | ">=" | ">" | "==" | "!="
    metric    := an objective (mote, flops, params, latency) or a numeric trial user attr
                 (landscape_term, speed_term, latency, ...)

The trial with the largest (``max-``) or smallest (``min-``) goal metric among the front
trials meeting every condition wins; ties go to the lowest trial number. Examples:
``max-mote flops<=100``, ``min-params mote>=0.5``, ``max-mote, params < 0.8, flops <= 120``.
FLOPs are millions of multiply-accumulates, params millions (cost.py), latency milliseconds
(``latency/``; e.g. ``max-mote latency<=9``).
"""

from __future__ import annotations

import functools
import json
import math
import operator
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from mote_optuna.artifacts import arch_record
from mote_optuna.config import StudyConfig
from mote_optuna.dashboard import package_version
from mote_optuna.errors import UserError
from mote_optuna.keys import LATENCY_ATTR, META_KEY
from mote_optuna.spaces import InvalidArchitecture, SearchSpace, get_space

__all__ = [
    "FORMATS",
    "MODEL_FILES",
    "Condition",
    "ExportResult",
    "PickRule",
    "build_network",
    "export_network",
    "export_trial",
    "find_trial",
    "load_exported",
    "parse_pick",
    "pick_trial",
    "trial_metrics",
]

Format = Literal["pytorch", "torchscript", "onnx"]
FORMATS: tuple[Format, ...] = ("pytorch", "torchscript", "onnx")
MODEL_FILES: dict[str, str] = {
    "pytorch": "model.pt",
    "torchscript": "model.torchscript.pt",
    "onnx": "model.onnx",
}
INPUT_NAME = "images"
OUTPUT_NAME = "logits"

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_METRIC = r"[A-Za-z_][A-Za-z0-9_]*"
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_GOAL_RE = re.compile(rf"(max|min)-({_METRIC})")
_CONDITION_RE = re.compile(rf"({_METRIC})(<=|>=|==|!=|<|>)({_NUMBER})")
_PICK_HELP = "write e.g. 'max-mote flops<=100' (goal max-/min-METRIC, then METRIC OP NUMBER ...)"


# --------------------------------------------------------------------------------------------
# Choosing the trial


@dataclass(frozen=True)
class Condition:
    metric: str
    op: str
    value: float

    def holds(self, metrics: dict[str, float]) -> bool:
        got = metrics.get(self.metric)
        return got is not None and _OPS[self.op](got, self.value)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"


@dataclass(frozen=True)
class PickRule:
    goal: Literal["max", "min"]
    metric: str
    conditions: tuple[Condition, ...] = ()

    def __str__(self) -> str:
        return " ".join([f"{self.goal}-{self.metric}", *map(str, self.conditions)])


def parse_pick(text: str) -> PickRule:
    """Parse a ``--pick`` rule (grammar in the module docstring); UserError when malformed."""
    squeezed = re.sub(r"\s*(<=|>=|==|!=|<|>)\s*", r"\1", text.strip())
    tokens = [t for t in re.split(r"[\s,]+", squeezed) if t]
    if not tokens:
        raise UserError(f"--pick: empty rule; {_PICK_HELP}")
    goal = _GOAL_RE.fullmatch(tokens[0])
    if goal is None:
        raise UserError(f"--pick {text!r}: {tokens[0]!r} is not a goal; {_PICK_HELP}")
    conditions = []
    for token in tokens[1:]:
        match = _CONDITION_RE.fullmatch(token)
        if match is None:
            raise UserError(f"--pick {text!r}: {token!r} is not a condition; {_PICK_HELP}")
        conditions.append(Condition(match[1], match[2], float(match[3])))
    return PickRule(goal[1], goal[2], tuple(conditions))  # type: ignore[arg-type]


def trial_metrics(trial: FrozenTrial, objectives: list[str]) -> dict[str, float]:
    """The numbers a rule can name: numeric user attrs, then the objective values over them."""
    metrics = {
        key: float(value)
        for key, value in trial.user_attrs.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    if trial.values is not None:
        metrics.update(zip(objectives, map(float, trial.values), strict=True))
    return {k: v for k, v in metrics.items() if not math.isnan(v)}


def pick_trial(study: optuna.Study, objectives: list[str], rule: PickRule) -> FrozenTrial:
    """The feasible Pareto-front trial that ``rule`` selects; UserError when none qualifies."""
    front = sorted(study.best_trials, key=lambda t: t.number)
    if not front:
        raise UserError(f"--pick {rule}: the study has no feasible completed trial yet")
    metrics = {t.number: trial_metrics(t, objectives) for t in front}
    known = set().union(*metrics.values())
    for name in [rule.metric, *(c.metric for c in rule.conditions)]:
        if name not in known:
            raise UserError(
                f"--pick {rule}: unknown metric {name!r}; known: {', '.join(sorted(known))}"
            )
    candidates = [
        t
        for t in front
        if rule.metric in metrics[t.number]
        and all(c.holds(metrics[t.number]) for c in rule.conditions)
    ]
    if not candidates:
        ranges = "; ".join(f"{c.metric} {_range(metrics, c.metric)}" for c in rule.conditions)
        raise UserError(
            f"--pick {rule}: none of the {len(front)} Pareto-front trials meets the conditions "
            f"(on the front: {ranges})"
        )
    sign = -1.0 if rule.goal == "max" else 1.0
    return min(candidates, key=lambda t: (sign * metrics[t.number][rule.metric], t.number))


def _range(metrics: dict[int, dict[str, float]], name: str) -> str:
    values = [m[name] for m in metrics.values() if name in m]
    return f"{min(values):.4g}..{max(values):.4g}" if values else "absent"


def find_trial(study: optuna.Study, number: int) -> FrozenTrial:
    """Trial ``number`` of the study, which must have sampled all its params."""
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise UserError(f"--trial {number}: the study has trials 0..{len(trials) - 1}")
    trial = next(t for t in trials if t.number == number)
    if trial.state in (TrialState.WAITING,) or not trial.params:
        raise UserError(f"--trial {number}: it is {trial.state.name} and has no architecture yet")
    return trial


# --------------------------------------------------------------------------------------------
# Building, writing and loading networks


def build_network(
    space: SearchSpace, arch: Any, *, seed: int = 0, num_classes: int | None = None
) -> nn.Module:
    """The space's full network for ``arch``, initialised from ``seed``, in eval mode."""
    torch.manual_seed(seed)
    return space.build_full(arch, num_classes=num_classes).eval()


def example_input(resolution: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A fixed input batch for checks: ``batch`` x 3 x ``resolution`` x ``resolution``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, resolution, resolution, generator=generator)


def export_network(
    model: nn.Module, fmt: str, path: Path, *, resolution: int, meta: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` (eval mode) to ``path`` in format ``fmt``."""
    model = model.eval()
    example = example_input(resolution)
    if fmt == "pytorch":
        torch.save({"state_dict": model.state_dict(), **(meta or {})}, path)
    elif fmt == "torchscript":
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated in 2.10+
            torch.jit.trace(model, example).save(str(path))
    elif fmt == "onnx":
        _export_onnx(model, example, path)
    else:
        raise UserError(f"--format {fmt}: use one of {', '.join(FORMATS)}")
    return path


def _export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise UserError(
            "--format onnx needs the onnx and onnxscript packages: pip install 'mote_optuna[onnx]'"
        ) from None
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=True,
            external_data=False,  # one self-contained file (the weights are small)
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def load_exported(
    path: Path, fmt: str, *, space: SearchSpace | None = None, arch: Any = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function running the exported file on a batch (ONNX: onnx's reference evaluator)."""
    if fmt == "pytorch":
        if space is None:
            raise ValueError("loading a pytorch export needs its space and arch")
        saved = torch.load(path, weights_only=True)
        model = space.build_full(arch, num_classes=saved.get("num_classes")).eval()
        model.load_state_dict(saved["state_dict"])
        return _no_grad(model)
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return _no_grad(torch.jit.load(str(path)).eval())
    if fmt == "onnx":
        import onnx
        from onnx.reference import ReferenceEvaluator

        evaluator = ReferenceEvaluator(onnx.load(str(path)))

        def run(x: torch.Tensor) -> torch.Tensor:
            (out,) = evaluator.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
            return torch.from_numpy(out)

        return run
    raise ValueError(f"unknown format {fmt!r}")


def _no_grad(model: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], Any]:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(x)

    return run


# --------------------------------------------------------------------------------------------
# The command


@dataclass
class ExportResult:
    trial: int
    arch: str
    paths: dict[str, Path]
    check: str


def export_trial(
    study: optuna.Study,
    config: StudyConfig,
    trial: FrozenTrial,
    *,
    fmt: str,
    out: Path,
    seed: int = 0,
    num_classes: int | None = None,
) -> ExportResult:
    """Write the model file, ``arch.json`` and ``train.py`` of ``trial`` to folder ``out``."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: use one of {', '.join(FORMATS)}")
    space = get_space(config.space)
    try:
        arch = space.from_params(trial.params)
    except InvalidArchitecture as exc:
        raise UserError(f"trial {trial.number}: not a valid architecture: {exc}") from None
    classes = num_classes or space.full_net.num_classes
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    record = arch_record(space, arch)
    resolution = record["resolution"]
    values = dict(zip(config.objectives, trial.values, strict=True)) if trial.values else None
    meta = {
        **record,
        "num_classes": classes,
        "study": study.study_name,
        "trial": trial.number,
        "state": trial.state.name,
        "values": values,
        "format": fmt,
        "model_file": MODEL_FILES[fmt],
        "seed": seed,
        "input": {"name": INPUT_NAME, "shape": ["batch", 3, resolution, resolution]},
        "mote_optuna": package_version(),
        "torch": torch.__version__,
    }
    latency = (study.user_attrs.get(META_KEY) or {}).get(LATENCY_ATTR)
    if latency and LATENCY_ATTR in trial.user_attrs:  # ms, with the runtime and table it came from
        meta[LATENCY_ATTR] = {"ms": trial.user_attrs[LATENCY_ATTR], **latency}
    model = build_network(space, arch, seed=seed, num_classes=classes)
    paths = {"model": out / MODEL_FILES[fmt], "arch": out / "arch.json", "train": out / "train.py"}
    export_network(
        model,
        fmt,
        paths["model"],
        resolution=resolution,
        meta={"space": space.name, "arch": record["arch"], "num_classes": classes},
    )
    paths["arch"].write_text(json.dumps(meta, indent=2) + "\n")
    paths["train"].write_text(train_script(meta))
    if fmt == "onnx":
        check = "onnx.checker: valid"
    else:
        x = example_input(resolution)
        with torch.no_grad():
            expected = model(x)
        got = load_exported(paths["model"], fmt, space=space, arch=arch)(x)
        diff = float((got - expected).abs().max())
        if not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
            raise RuntimeError(f"exported {fmt} model differs from the built network by {diff}")
        check = f"reloaded, same output as the built network (max |diff| {diff:.2g})"
    return ExportResult(trial.number, record["arch"], paths, check)


def train_script(meta: dict[str, Any]) -> str:
    """The text of ``train.py`` for an export described by ``meta`` (the arch.json content): the
    package's ``templates/train.py`` with its placeholders filled."""
    return (
        _train_template()
        .replace("{TRIAL}", str(meta["trial"]))
        .replace("{STUDY}", str(meta["study"]))
        .replace("{ARCH}", str(meta["arch"]))
    )


@functools.cache
def _train_template() -> str:
    return (resources.files("mote_optuna") / "templates" / "train.py").read_text(encoding="utf-8")
