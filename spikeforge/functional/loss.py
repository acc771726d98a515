"""Losses over time-first network outputs ``[T, B, classes]``."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(outputs: torch.Tensor, target: torch.Tensor) -> None:
    if outputs.dim() != 3:
        raise ValueError(f"outputs must be [T, B, classes], got shape {tuple(outputs.shape)}")
    if target.shape != outputs.shape[1:2]:
        raise ValueError(
            f"target must be [B] = [{outputs.shape[1]}] class indices, got {tuple(target.shape)}"
        )


def mean_output_cross_entropy(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the time-averaged output: ``CE((1/T) sum_t O[t], y)``."""
    _check(outputs, target)
    return F.cross_entropy(outputs.mean(0), target)


def tet_loss(
    outputs: torch.Tensor, target: torch.Tensor, lam: float = 0.0, phi: float = 1.0
) -> torch.Tensor:
    """Temporal efficient training (Deng et al., ICLR 2022)::

        L = (1 - lam) (1/T) sum_t CE(O[t], y) + lam (1/T) sum_t MSE(O[t], phi)

    Supervising every step, not the mean, lets the net recover momentum from
    steps that are already right; ``lam`` weights the optional MSE regulariser.
    """
    _check(outputs, target)
    t, b, c = outputs.shape
    ce = F.cross_entropy(outputs.reshape(t * b, c), target.repeat(t))
    if lam == 0:
        return ce
    return (1 - lam) * ce + lam * F.mse_loss(outputs, torch.full_like(outputs, phi))


def mse_rate_loss(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE between the time-averaged output and the one-hot target:
    ``mean((1/T sum_t O[t] - onehot(y))^2)`` (the loss of SpikingJelly's tutorials)."""
    _check(outputs, target)
    onehot = F.one_hot(target, outputs.shape[-1]).to(outputs.dtype)
    return F.mse_loss(outputs.mean(0), onehot)


LOSSES = {"ce": mean_output_cross_entropy, "tet": tet_loss, "mse_rate": mse_rate_loss}
