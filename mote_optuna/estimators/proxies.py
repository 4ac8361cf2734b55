"""Zero-cost proxies used as baselines for MOTE: SynFlow, NASWOT and grad-norm.

Each takes a freshly initialised network (not trained) and returns one float, larger is better.
They follow the definitions used by the zero-cost-proxy literature for NAS-Bench-201:

* SynFlow — Tanaka et al., "Pruning neural networks without any data by iteratively conserving
  synaptic flow", NeurIPS 2020; used for NAS by Abdelfattah et al., "Zero-Cost Proxies for
  Lightweight NAS", ICLR 2021. With every weight replaced by its absolute value and an all-ones
  input, R = Σ f(1); the score is Σ_θ |θ ⊙ ∂R/∂θ| over conv and linear weights. Computed in
  float64 with BatchNorm in eval mode at its initial statistics (≈ identity), which is the
  "no BN" copy Abdelfattah et al. use.
* NASWOT — Mellor et al., "Neural Architecture Search without Training", ICML 2021. For a
  minibatch of N images, c_i is the binary code of which ReLU inputs are positive for image i;
  K_H[i, j] = N_A − Hamming(c_i, c_j) (N_A = number of ReLU units); the score is log |det K_H|.
* grad-norm — Abdelfattah et al. 2021: the sum over conv and linear layers of the Euclidean norm
  of ∂CE/∂W on one minibatch.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_WEIGHTED = (nn.Conv2d, nn.Linear)


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, _WEIGHTED)]


def synflow(model: nn.Module, resolution: int) -> float:
    """SynFlow score of ``model`` (a copy is modified; the argument is left untouched)."""
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    device = next(net.parameters()).device
    ones = torch.ones(1, 3, resolution, resolution, dtype=torch.float64, device=device)
    net(ones).sum().backward()
    total = torch.zeros((), dtype=torch.float64, device=device)
    for w in _weights(net):
        if w.grad is not None:
            total += (w * w.grad).abs().sum()
    return float(total.detach())


def naswot(model: nn.Module, x: torch.Tensor) -> float:
    """NASWOT score: log|det K_H| of the ReLU activation codes of the minibatch ``x``.

    K_H is accumulated layer by layer (c c^T + (1-c)(1-c)^T = N_A - Hamming), in float32, which
    counts exactly up to 2^24 units.
    """
    n = len(x)
    k = torch.zeros(n, n, device=x.device)

    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        c = (inputs[0].detach() > 0).flatten(1).float()
        k.add_(c @ c.T).add_((1.0 - c) @ (1.0 - c).T)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    was_training = model.training
    model.train()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return float(torch.linalg.slogdet(k.double())[1])


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """grad-norm score: Σ over conv/linear layers of ‖∂CE/∂W‖₂ on the minibatch (x, y)."""
    was_training = model.training
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    total = sum(float(w.grad.norm()) for w in _weights(model) if w.grad is not None)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return total


# --------------------------------------------------------------------------------------------
# AZ-NAS (Lee & Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search",
# CVPR 2024): four proxies from one forward and one backward pass of the full network at
# initialisation, on a minibatch of real images (64 in the paper's recipe), BatchNorm in training
# mode, conv and linear weights Kaiming-normal (fan-in) initialised. Written from the paper.
#
# * expressivity: for each block output F (B x C x H x W) the C x C covariance of its B·H·W
#   feature vectors; with p = eigenvalues / their sum, the block's score is the entropy -Σ p log p
#   (how isotropically the features fill their space); the network's is the sum over blocks.
# * progressivity: the smallest increase of that entropy from one block to the next.
# * trainability: per block, σ = ‖Jᵀv‖/‖v‖·√(dim_in/dim_out) for a Gaussian v, J the Jacobian of
#   the block output with respect to its input (one backward pass); the score is the mean of
#   2 - σ - 1/σ, which is 0 at σ = 1 (gradients neither vanish nor explode) and negative elsewhere.
# * complexity: the FLOPs of the full network (the caller has them).
# The probes are drawn from the caller's generator, so the scores are deterministic.


SIGMA_FLOOR = 1e-3  # a block that passes no gradient scores 2 - 1e3 - 1e-3, not -inf


def feature_blocks(model: nn.Module) -> list[nn.Module]:
    """The sequence of blocks whose outputs AZ-NAS and MeCo read: the stem, then each block of
    the body (NB201 ``cells``, NB101 ``layers``, torchvision's MobileNetV3 ``features``)."""
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
        if isinstance(module, _WEIGHTED):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def isotropy_entropy(feature: torch.Tensor) -> float:
    """Entropy of the normalised eigenvalues of the channel covariance of ``feature`` (N,C,H,W)."""
    f = feature.detach().double().transpose(0, 1).flatten(1)  # C x (N·H·W)
    f = f - f.mean(dim=1, keepdim=True)
    eig = torch.linalg.eigvalsh(f @ f.T / f.shape[1]).clamp_min(0.0)
    total = eig.sum()
    if total <= 0:
        return 0.0
    p = eig / total
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def az_nas(model: nn.Module, x: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
    """AZ-NAS's expressivity, progressivity and trainability of ``model`` (modified in place:
    re-initialised) on the minibatch ``x``; ``generator`` draws the Gaussian probe vectors."""
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
        "az_expressivity": float(sum(entropies)),
        "az_progressivity": float(min(steps)) if steps else 0.0,
        "az_trainability": float(np.mean(terms)) if terms else 0.0,
    }


# --------------------------------------------------------------------------------------------
# MeCo (Jiang et al., "Zero-Shot Neural Architecture Search via the Minimum Eigenvalue of
# Pearson Correlation on Intermediate Feature Maps", NeurIPS 2023): for one image, the Pearson
# correlation matrix of the channels of every conv output (channels x H·W samples), and the score
# is the sum over convs of its smallest eigenvalue. Channels without variance (a conv fed by
# zeros) correlate with nothing: their rows are 0, as in the authors' NaN handling.


def meco(model: nn.Module, image: torch.Tensor) -> float:
    """MeCo of ``model`` at its current initialisation for one image (1 x 3 x H x W)."""
    total = 0.0

    def hook(_module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        f = output.detach()[0].double().flatten(1)  # C x H·W
        corr = torch.nan_to_num(torch.corrcoef(f), nan=0.0)
        total += float(torch.linalg.eigvalsh(corr)[0])

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(image[:1])
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total
