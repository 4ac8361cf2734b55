"""Zero-cost proxies used as baselines for MOTE: SynFlow, NASWOT, grad-norm and MeCo
(AZ-NAS is in ``az_nas``).

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
