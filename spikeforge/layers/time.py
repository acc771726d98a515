"""Apply per-sample layers to time-first tensors ``[T, B, ...]``."""

from __future__ import annotations

import torch
from torch import nn


class TimeDistributed(nn.Module):
    """Run a per-sample layer (Conv2d, Linear, BatchNorm, pooling, ...) on every step.

    ``y[t] = layer(x[t])``, computed in one call by merging time into batch:
    ``[T, B, ...] -> [T*B, ...] -> layer -> [T, B, ...]``. With BatchNorm this
    normalises over time and batch together (the statistics of tdBN,
    Zheng et al. AAAI 2021, without its threshold scaling).

    A direct-encoded input repeats one tensor over time; when ``x`` is such a
    broadcast view (stride 0 along time) the layer runs once on ``x[0]`` and the
    result is broadcast back: the same outputs (BatchNorm's batch mean and
    biased variance over T identical copies equal those over one), T times less
    work. The one difference: BatchNorm's running variance applies its unbiased
    correction ``n/(n-1)`` with ``n = B*H*W`` rather than ``T*B*H*W``.
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2:
            raise ValueError(
                f"TimeDistributed({type(self.layer).__name__}) expects time-first [T, B, ...], "
                f"got shape {tuple(x.shape)}"
            )
        t, b = x.shape[:2]
        if t > 1 and x.stride(0) == 0:
            y = self.layer(x[0])
            return y.unsqueeze(0).expand(t, *y.shape)
        y = self.layer(x.reshape(t * b, *x.shape[2:]))
        return y.reshape(t, b, *y.shape[1:])


class Flatten(nn.Module):
    """Flatten all dims after time and batch: ``[T, B, d1, d2, ...] -> [T, B, d1*d2*...]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(f"Flatten expects [T, B, ...] with >= 3 dims, got {tuple(x.shape)}")
        return x.flatten(2)


class MeanOverTime(nn.Module):
    """Average a time-first output over time: ``y = (1/T) sum_t x[t]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(0)
