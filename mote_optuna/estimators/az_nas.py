"""AZ-NAS (Lee & Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search",
CVPR 2024), as its authors compute it on NAS-Bench-201, and an earlier real-image variant.

``az_nas`` is the published recipe (the authors' ``NB201/ZeroShotProxy/compute_az_nas_score.py``
and ``NB201/tss_general.ipynb``, read, not copied). The network is re-initialised (conv and
linear weights Kaiming-normal, fan-in; zero biases; BatchNorm weight 1, bias 0), kept in training
mode, and fed 64 images of Gaussian noise N(0, 1) at the space's full resolution, so no image of
the user's dataset reaches it. Its features are the stem output and the output of each block of
the body (NB201: 17 cells, the two residual reductions included).

* expressivity: per feature F (B x C x H x W), the eigenvalues s of the C x C covariance of its
  B·H·W centred feature vectors, p = s / Σs, score -Σ p log(p + 1e-8); the sum over features.
* progressivity: the smallest increase of that score from one feature to the next.
* trainability: per block l, from the last down to the first, a Rademacher ±1 probe v shaped
  like F_l and g = ∂<F_l, v>/∂F_{l-1}. If g equals v exactly the block is an identity and scores
  -inf (so does the mean: a network with an identity cell ranks last). Otherwise g is
  pixel-unshuffled where the block reduces the spatial size, M = Gᵀ V / (B·H·W) is the
  C_in' x C_out cross-covariance of g and v at equal positions, σ its largest singular value,
  and the block scores 2 - σ - 1/(σ + 1e-6) (0 at σ = 1, negative elsewhere); the mean over
  blocks.
* complexity: the FLOPs of the full network (the caller measures them).

A NaN term (a network whose features are all zero) becomes -inf. The authors rank a population
by Σ over the four terms of log(rank / population size) (``bench.correlation.stats``).

``az_nas_real`` is the variant this project used before (written from the paper alone): real
images, a Gaussian probe and σ = ‖Jᵀv‖/‖v‖·√(dim_in/dim_out). The ``ensemble`` estimator keeps
its trainability (``azr_trainability``).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

AZ_NAS_BATCH = 64  # the authors' minibatch of noise images
SIGMA_EPS = 1e-6  # the authors' guard in 1 / (σ + eps)
LOG_EPS = 1e-8  # the authors' guard in log(p + eps)


def feature_blocks(model: nn.Module) -> list[nn.Module]:
    """The sequence of blocks whose outputs AZ-NAS reads: the stem, then each block of the body
    (NB201 ``cells``, NB101 ``layers``, torchvision's MobileNetV3 ``features``)."""
    for name in ("cells", "layers", "features"):
        body = getattr(model, name, None)
        if isinstance(body, nn.Sequential):
            stem = getattr(model, "stem", None)
            return ([stem] if isinstance(stem, nn.Module) else []) + list(body)
    raise TypeError(f"{type(model).__name__}: no cells/layers/features sequence to read")


def kaiming_init(model: nn.Module) -> None:
    """AZ-NAS's initialisation: Kaiming-normal (fan-in) conv and linear weights, zero biases,
    BatchNorm weight 1 and bias 0."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def _finite_or_minus_inf(value: float) -> float:
    return -math.inf if math.isnan(value) else float(value)


# --------------------------------------------------------------------------------------------
# the published recipe


def spectral_entropy(feature: torch.Tensor) -> float:
    """The authors' expressivity of one feature (N, C, H, W): -Σ p log(p + 1e-8) over the
    normalised eigenvalues p of its channel covariance; NaN when the feature is constant.

    The covariance is positive semi-definite, so its eigenvalues are clamped at 0: where there
    are more channels than positions (an MBConv head of 1,280 channels on 64 x 3 x 3
    positions) hundreds of them are 0, and float rounding, which differs between CPUs, puts
    some below -1e-8 · Σs, where log(p + 1e-8) is NaN and the whole term would be -inf."""
    f = feature.detach().permute(0, 2, 3, 1).reshape(-1, feature.shape[1])
    f = f - f.mean(dim=0, keepdim=True)
    eig = torch.linalg.eigvalsh(f.T @ f / f.shape[0]).clamp_min(0.0)
    p = eig / eig.sum()
    return float(-(p * torch.log(p + LOG_EPS)).sum())


def largest_cross_singular_value(g: torch.Tensor, v: torch.Tensor) -> float:
    """σ_max of M = Gᵀ V / (B·H·W): G and V (B, C, H, W) with the same B, H, W, read as matrices
    with one row per position (rows B·H·W, columns C_in and C_out)."""
    if g.shape[0] != v.shape[0] or g.shape[2:] != v.shape[2:]:
        raise ValueError(f"AZ-NAS: positions differ between {tuple(g.shape)} and {tuple(v.shape)}")
    rows = v.shape[0] * v.shape[2] * v.shape[3]
    gm = g.permute(0, 2, 3, 1).reshape(rows, g.shape[1])
    vm = v.permute(0, 2, 3, 1).reshape(rows, v.shape[1])
    return float(torch.linalg.svdvals(gm.T @ vm / rows).max())


def block_trainability(
    f_in: torch.Tensor, f_out: torch.Tensor, generator: torch.Generator
) -> float:
    """The authors' trainability of the block that maps ``f_in`` to ``f_out`` (one graph)."""
    bits = torch.randint(0, 2, f_out.shape, generator=generator, device=f_out.device)
    v = bits.to(f_out.dtype) * 2 - 1
    (g,) = torch.autograd.grad(f_out, f_in, v, allow_unused=True, materialize_grads=True)
    if g.shape == v.shape and torch.equal(g, v):
        return -math.inf  # an identity block
    if g.shape[2:] != v.shape[2:]:
        g = F.pixel_unshuffle(g, g.shape[2] // v.shape[2])
    sigma = largest_cross_singular_value(g, v)
    return 2.0 - sigma - 1.0 / (sigma + SIGMA_EPS)


def az_nas(model: nn.Module, resolution: int, generator: torch.Generator) -> dict[str, float]:
    """AZ-NAS's expressivity, progressivity and trainability of ``model`` (modified in place:
    re-initialised with the global RNG); ``generator`` draws the noise input, then the probes."""
    kaiming_init(model)
    model.train()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    shape = (AZ_NAS_BATCH, 3, resolution, resolution)
    x = torch.randn(shape, generator=generator, device=device).requires_grad_()
    features = []
    h = x
    for block in feature_blocks(model):
        h = block(h)
        features.append(h)
    entropies = np.array([spectral_entropy(f) for f in features])
    steps = entropies[1:] - entropies[:-1]
    trainability = [
        block_trainability(features[i - 1], features[i], generator)
        for i in reversed(range(1, len(features)))
    ]
    return {
        "az_expressivity": _finite_or_minus_inf(float(entropies.sum())),
        "az_progressivity": _finite_or_minus_inf(float(steps.min()) if len(steps) else 0.0),
        "az_trainability": _finite_or_minus_inf(
            float(np.mean(trainability)) if trainability else 0.0
        ),
    }


def rank_aggregate(terms: list[np.ndarray]) -> np.ndarray:
    """The authors' AZ-NAS score of a population: Σ over terms of log(rank / population size),
    ranks ascending with ties averaged (-inf ranks last); it punishes a weak term."""
    return np.sum([np.log(stats.rankdata(t) / len(t)) for t in terms], axis=0)


# --------------------------------------------------------------------------------------------
# the real-image variant (kept for the ensemble)

SIGMA_FLOOR = 1e-3  # a block that passes no gradient scores 2 - 1e3 - 1e-3, not -inf


def isotropy_entropy(feature: torch.Tensor) -> float:
    """Entropy of the normalised eigenvalues of the channel covariance of ``feature`` (N,C,H,W),
    in float64, eigenvalues clipped at 0 (the real-image variant's expressivity)."""
    f = feature.detach().double().transpose(0, 1).flatten(1)  # C x (N·H·W)
    f = f - f.mean(dim=1, keepdim=True)
    eig = torch.linalg.eigvalsh(f @ f.T / f.shape[1]).clamp_min(0.0)
    total = eig.sum()
    if total <= 0:
        return 0.0
    p = eig / total
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def az_nas_real(model: nn.Module, x: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
    """The real-image variant's expressivity, progressivity and trainability (``azr_*``) of
    ``model`` (re-initialised in place) on the minibatch ``x``; ``generator`` draws Gaussian
    probes, and σ per block is ‖Jᵀv‖/‖v‖·√(dim_in/dim_out)."""
    kaiming_init(model)
    model.train()
    blocks = feature_blocks(model)
    entropies: list[float] = []
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
    h = x
    for i, block in enumerate(blocks):
        inp = h.detach().requires_grad_(i > 0)
        h = block(inp)
        entropies.append(isotropy_entropy(h))
        if i > 0:
            pairs.append((inp, h))
    outputs = [out for _, out in pairs]
    probes = [
        torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype)
        for out in outputs
    ]
    grads = torch.autograd.grad(outputs, [inp for inp, _ in pairs], probes, allow_unused=True)
    terms = []
    for (inp, out), v, g in zip(pairs, probes, grads, strict=True):
        norm = 0.0 if g is None else float(g.norm() / v.norm())  # None: the input is unused
        sigma = min(max(norm * math.sqrt(inp.numel() / out.numel()), SIGMA_FLOOR), 1 / SIGMA_FLOOR)
        terms.append(2.0 - sigma - 1.0 / sigma)
    steps = [b - a for a, b in itertools.pairwise(entropies)]
    return {
        "azr_expressivity": float(sum(entropies)),
        "azr_progressivity": float(min(steps)) if steps else 0.0,
        "azr_trainability": float(np.mean(terms)) if terms else 0.0,
    }
