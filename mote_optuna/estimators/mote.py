"""MOTE: a landscape term and a speed term from a few epochs of training a reduced architecture.

Two formulas (MOTE_SPEC §1-§3):

``code`` (default, the authors' released code, which reproduces the paper's Kendall τ 0.68):
    landscape  L = Σ_α 1 / loss(θ(α)),  θ(α) = (1-α)·θ_init + α·θ_trained, α on an even grid;
               each loss is one training epoch started from θ(α) (``landscape_mode: train``)
    speed      S = T / mean(epoch losses), T = the training clock: ``wall`` seconds of the
               training loop, or ``flops``: nominal seconds from analytic FLOPs (see below)
    MOTE       = λ_L²σ_L·BC(L; λ_L) + λ_S²σ_S·BC(S; λ_S)       larger is better
``paper`` (the paper's text, an ablation):
    L = Σ_g CE(θ(g)),  S = Σ_e l_e / t_e,  MOTE = -(BC(L; λ_L) + BC(S; λ_S))
    (negated so that larger is better in both formulas and the objective keeps one direction)

BC is the Box-Cox transform. The training data is one tensor on the device; every random choice
(initialisation, batch order) comes from ``seed``, so MOTE is deterministic up to the wall clock.

Speed (docs/HISTORY.md, "MOTE estimator"): no DataLoader; each epoch is one seeded permutation
and one gather of the device tensor, then views per batch; losses are summed on the device, so
there is one host sync per epoch (for the wall clock) and none per step. On CPU the time is the
convolutions, BatchNorm and average pooling of forward and backward; channels_last measured 0.66x
the CPU time there and is the CPU default. torch.compile is not used (every cell is a new graph).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from scipy.special import boxcox
from torch import nn

from mote_optuna.cost import count_flops
from mote_optuna.data import TensorData
from mote_optuna.errors import UserError
from mote_optuna.estimators.boxcox import BoxCoxConstants
from mote_optuna.estimators.settings import EstimatorConfig
from mote_optuna.keys import MOTE_SECONDS_ATTR
from mote_optuna.spaces import SearchSpace

# The flops clock: nominal seconds that the authors' GPU would need for the *paper-budget* training
# of this cell (width 32, 32 px, 5,000 images, 50 epochs), from the analytic training FLOPs
# (3 x forward) of our proxy scaled to that budget. The rate and the fixed overhead are a linear
# fit of the released ``proxy_train_time_s`` on the proxy's forward MACs (300 random NB201 cells;
# t = 6.12 s + 0.111 s per MMAC, r = 0.72; docs/HISTORY.md), so the speed term keeps the
# released magnitudes (median T about 7.5 s) that the Box-Cox constants were fitted on, whatever
# budget we actually train with. It is deterministic and device independent.
NOMINAL_FLOPS_PER_SECOND = 1.35e13
FLOPS_CLOCK_OVERHEAD_S = 6.12
PAPER_WORK = {"width": 32, "resolution": 32, "images": 5000, "epochs": 50}

# Named budgets: ``paper`` is the authors' setting (MOTE_SPEC §3); ``lite`` the best τ per
# CPU-second measured here (docs/HISTORY.md: 8 epochs of 1,000 images at 16 px, width 16, the
# landscape measured the released code's way, the deterministic flops clock); ``tiny`` is for
# tests. Explicit estimator fields override them.
BUDGETS: dict[str, dict[str, Any]] = {
    "paper": dict(
        epochs=50, batch_size=1024, images_per_label=500, landscape_points=11,
        landscape_mode="train", speed_clock="wall", width=32, resolution=32, lr=1e-3,
    ),
    "lite": dict(
        epochs=8, batch_size=128, images_per_label=100, landscape_points=11,
        landscape_mode="train", speed_clock="flops", width=16, resolution=16, lr=1e-3,
    ),
    "tiny": dict(
        epochs=2, batch_size=32, images_per_label=8, landscape_points=3,
        landscape_mode="train", speed_clock="flops", width=8, resolution=16, lr=1e-3,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class MoteSettings:
    """A fully resolved MOTE budget: everything that changes the score."""

    epochs: int
    batch_size: int
    images_per_label: int
    landscape_points: int
    landscape_mode: str
    speed_clock: str
    width: int
    resolution: int
    lr: float
    formula: str = "code"
    seed: int = 0
    label_smoothing: float = 0.01

    @classmethod
    def from_config(cls, config: EstimatorConfig) -> MoteSettings:
        values = dict(BUDGETS[config.budget]) if config.budget else {}
        for name in BUDGETS["paper"]:
            if getattr(config, name) is not None:
                values[name] = getattr(config, name)
        missing = [name for name in BUDGETS["paper"] if name not in values]
        if missing:
            raise UserError(
                "estimator: without estimator.budget (paper, lite or tiny) set "
                + ", ".join(f"estimator.{m}" for m in missing)
            )
        return cls(**values, formula=config.formula, seed=config.seed)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Diverged(RuntimeError):
    """Training produced a non-finite loss."""


@dataclass
class MoteResult:
    mote: float
    landscape: float
    speed: float
    train_losses: list[float]
    landscape_losses: list[float]
    train_seconds: float
    clock: float  # T of the speed term: wall seconds or nominal seconds from FLOPs
    seconds: float = 0.0  # everything, including the landscape
    extra: dict[str, float] = field(default_factory=dict)

    def user_attrs(self) -> dict[str, Any]:
        return {
            "mote": self.mote,
            "landscape_term": self.landscape,
            "speed_term": self.speed,
            "train_losses": [round(v, 6) for v in self.train_losses],
            "landscape_losses": [round(v, 6) for v in self.landscape_losses],
            "train_seconds": round(self.train_seconds, 4),
            "speed_clock_value": self.clock,
            MOTE_SECONDS_ATTR: round(self.seconds, 4),
        }


def combine_code(landscape: float, speed: float, constants: BoxCoxConstants) -> float:
    """The released code's combination: λ²σ-weighted Box-Cox of both terms, larger is better."""
    c = constants
    w_landscape = c.lambda_landscape**2 * c.sigma_landscape
    w_speed = c.lambda_speed**2 * c.sigma_speed
    return float(
        w_landscape * boxcox(landscape, c.lambda_landscape)
        + w_speed * boxcox(speed, c.lambda_speed)
    )


def combine_paper(landscape: float, speed: float, lambdas: tuple[float, float]) -> float:
    """The paper's combination, negated so that larger is better: -(BC(L) + BC(S))."""
    return -float(boxcox(landscape, lambdas[0]) + boxcox(speed, lambdas[1]))


class MoteEstimator:
    """Scores reduced architectures on one dataset tensor with one budget."""

    def __init__(
        self,
        settings: MoteSettings,
        data: TensorData,
        constants: BoxCoxConstants | None,
        *,
        channels_last: bool | None = None,
    ) -> None:
        """``channels_last``: model and batches in NHWC; ``None`` = on for CPU data, where it
        measured 0.66x the CPU time of ``lite`` with the same ranking (docs/HISTORY.md)."""
        self.settings = settings
        self.data = data
        self.constants = constants
        if channels_last is None:
            channels_last = data.x.device.type == "cpu"
        self.channels_last = channels_last
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def proxy(self, space: SearchSpace, arch: Any) -> nn.Module:
        """The reduced network of ``arch`` that ``score`` trains, initialised from the seed."""
        torch.manual_seed(self.settings.seed)
        return space.build_proxy(
            arch, num_classes=self.data.num_classes, width=self.settings.width
        )

    def score(self, model: nn.Module, *, combine: bool = True) -> MoteResult:
        """Train ``model`` (freshly built, seeded by the caller) and compute MOTE.

        Both clocks are always measured (``extra``: ``wall_seconds``, ``flops_clock``,
        ``train_flops``, ``epoch_seconds_*``); ``settings.speed_clock`` picks the one in MOTE.
        ``combine=False`` returns the raw terms only (``mote`` NaN), for a calibration that fits
        the Box-Cox constants before they exist; ``combine`` applies them later.
        """
        s = self.settings
        start = time.perf_counter()
        device = self.data.x.device
        model.to(device).to(memory_format=self.memory_format).train()
        generator = torch.Generator(device=device).manual_seed(s.seed)
        optimizer = _adam(model, s.lr)
        theta_init = _snapshot(model)

        epoch_losses: list[torch.Tensor] = []
        epoch_ends: list[float] = []
        train_start = _synced_clock(device)
        for _ in range(s.epochs):
            epoch_losses.append(self._train_epoch(model, optimizer, generator))
            epoch_ends.append(_synced_clock(device))  # one sync per epoch, none per step
        train_seconds = epoch_ends[-1] - train_start if epoch_ends else 0.0
        train_losses = torch.stack(epoch_losses).tolist()
        if not all(math.isfinite(v) for v in train_losses):
            raise Diverged(f"training loss became {train_losses[-1]} (losses {train_losses})")

        theta_trained = _snapshot(model)
        landscape_losses = self._landscape(model, optimizer, generator, theta_init, theta_trained)
        if not all(math.isfinite(v) and v > 0 for v in landscape_losses):
            raise Diverged(f"landscape loss not finite and positive: {landscape_losses}")

        forward_macs = count_flops(_cpu_copy(model), s.resolution) * 1e6
        flops_clock = self.flops_clock(forward_macs)
        wall_times = [b - a for a, b in zip([train_start, *epoch_ends], epoch_ends, strict=False)]
        if s.speed_clock == "wall":
            clock, epoch_times = train_seconds, wall_times
        else:
            clock, epoch_times = flops_clock, [flops_clock / s.epochs] * s.epochs

        if s.formula == "code":
            landscape, speed = code_terms(landscape_losses, train_losses, clock)
        else:
            landscape, speed = paper_terms(landscape_losses, train_losses, epoch_times)
        mote = self.combine(landscape, speed) if combine else math.nan
        return MoteResult(
            mote=mote,
            landscape=landscape,
            speed=speed,
            train_losses=train_losses,
            landscape_losses=landscape_losses,
            train_seconds=train_seconds,
            clock=clock,
            seconds=time.perf_counter() - start,
            extra={
                "wall_seconds": train_seconds,
                "flops_clock": flops_clock,
                "train_flops": 6 * forward_macs * len(self.data.y) * s.epochs,
                "forward_macs": forward_macs,
                "paper_speed_wall": paper_terms(landscape_losses, train_losses, wall_times)[1],
                "epoch_seconds_median": sorted(wall_times)[len(wall_times) // 2]
                if wall_times
                else 0.0,
            },
        )

    def combine(self, landscape: float, speed: float) -> float:
        """MOTE from the two raw terms with this estimator's formula and constants."""
        if self.settings.formula == "code":
            return combine_code(landscape, speed, self._require_constants())
        c = self.constants
        lambdas = (c.lambda_landscape, c.lambda_speed) if c else (0.0, 0.0)
        return combine_paper(landscape, speed, lambdas)

    def training_flops(self, model: nn.Module) -> float:
        """Analytic FLOPs of our training run: 3 x forward x images x epochs."""
        forward_macs = count_flops(_cpu_copy(model), self.settings.resolution) * 1e6
        return 3 * 2 * forward_macs * len(self.data.y) * self.settings.epochs

    def flops_clock(self, forward_macs: float) -> float:
        """Nominal seconds of the paper-budget training of this proxy (see PAPER_WORK)."""
        s, p = self.settings, PAPER_WORK
        scale = (p["width"] / s.width) ** 2 * (p["resolution"] / s.resolution) ** 2
        flops = 6 * forward_macs * scale * p["images"] * p["epochs"]
        return FLOPS_CLOCK_OVERHEAD_S + flops / NOMINAL_FLOPS_PER_SECOND

    def _require_constants(self) -> BoxCoxConstants:
        if self.constants is None:
            raise UserError(
                "estimator.boxcox: this space has no published Box-Cox constants; give "
                "estimator.boxcox (lambda_landscape, sigma_landscape, lambda_speed, sigma_speed), "
                "or let the study calibrate them (estimator.calibration)"
            )
        return self.constants

    def _train_epoch(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator
    ) -> torch.Tensor:
        """One shuffled epoch over the device tensor; returns the mean loss without syncing."""
        x, y = self.data.x, self.data.y
        n, batch = len(y), self.settings.batch_size
        order = torch.randperm(n, device=x.device, generator=generator)
        xs, ys = x.index_select(0, order), y.index_select(0, order)  # one gather per epoch
        xs = xs.contiguous(memory_format=self.memory_format)
        total = torch.zeros((), device=x.device)
        for begin in range(0, n, batch):
            xb, yb = xs[begin : begin + batch], ys[begin : begin + batch]
            loss = F.cross_entropy(model(xb), yb, label_smoothing=self.settings.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(yb)  # stays on the device: no host sync per step
        return total / n

    def _landscape(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator,
        theta_init: dict[str, torch.Tensor],
        theta_trained: dict[str, torch.Tensor],
    ) -> list[float]:
        """The loss at each point of the path θ_init -> θ_trained (BN buffers included)."""
        points = self.settings.landscape_points
        losses: list[torch.Tensor] = []
        for i in range(points):
            alpha = i / (points - 1)
            _load_interpolated(model, theta_init, theta_trained, alpha)
            if self.settings.landscape_mode == "train":
                model.train()
                losses.append(self._train_epoch(model, optimizer, generator))
            else:
                losses.append(self._forward_loss(model))
        return torch.stack(losses).tolist()

    @torch.no_grad()
    def _forward_loss(self, model: nn.Module) -> torch.Tensor:
        """Mean loss without updates; ``eval`` uses BN running stats, ``forward`` batch stats."""
        model.train(self.settings.landscape_mode == "forward")
        x, y = self.data.x, self.data.y
        batch = self.settings.batch_size
        total = torch.zeros((), device=x.device)
        for begin in range(0, len(y), batch):
            xb, yb = x[begin : begin + batch], y[begin : begin + batch]
            loss = F.cross_entropy(model(xb), yb, label_smoothing=self.settings.label_smoothing)
            total += loss * len(yb)
        return total / len(y)


def code_terms(
    landscape_losses: list[float], train_losses: list[float], clock: float
) -> tuple[float, float]:
    """The released code's terms: L = Σ 1/loss(θ(α)), S = T / mean(epoch losses)."""
    landscape = sum(1.0 / v for v in landscape_losses)
    return landscape, clock / (sum(train_losses) / len(train_losses))


def paper_terms(
    landscape_losses: list[float], train_losses: list[float], epoch_times: list[float]
) -> tuple[float, float]:
    """The paper's terms: L = Σ_g CE(θ(g)), S = Σ_e l_e / t_e (both lower is better)."""
    speed = sum(v / max(t, 1e-12) for v, t in zip(train_losses, epoch_times, strict=True))
    return sum(landscape_losses), speed


def _adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam with the Keras defaults of the authors' code (eps 1e-7)."""
    return torch.optim.Adam(model.parameters(), lr=lr, eps=1e-7)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _load_interpolated(
    model: nn.Module, start: dict[str, torch.Tensor], end: dict[str, torch.Tensor], alpha: float
) -> None:
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                torch.lerp(start[name], end[name], alpha, out=tensor)
            else:  # BatchNorm's num_batches_tracked
                tensor.copy_(end[name])


def _synced_clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _cpu_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).cpu()
