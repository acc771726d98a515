"""Threshold-dependent batch normalisation over time-first tensors ``[T, B, C, ...]``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ThresholdDependentBatchNorm(nn.Module):
    r"""tdBN (Zheng et al., "Going Deeper With Directly-Trained Larger Spiking
    Neural Networks", AAAI 2021, eqs. 7-8).

    For each channel ``k`` the statistics are taken over time, batch and space
    together, and the normalised value is scaled by ``alpha * V_th``::

        x_hat[k] = alpha * V_th * (x[k] - E[x[k]]) / sqrt(Var[x[k]] + eps)
        y[k]     = lambda[k] * x_hat[k] + beta[k]

    ``alpha * V_th`` keeps the pre-activations at the scale of the threshold
    (the paper's condition against vanishing and exploding spikes); the
    residual blocks of ResNet-19 use ``alpha = 1/sqrt(2)`` on the two branches
    that are summed before a neuron, ``alpha = 1`` elsewhere.

    We keep ``alpha * V_th`` a fixed factor and initialise ``lambda = 1``, as the
    paper writes it. SpikingJelly's ``ThresholdDependentBatchNorm2d`` and the
    authors' released code instead fold it into the BatchNorm weight at
    initialisation (``weight = alpha * V_th``): the same function at the start,
    but a learnable scale whose gradient and weight decay then act on
    ``alpha * V_th * lambda`` rather than on ``lambda``.

    A direct-encoded input (a broadcast view, stride 0 along time) is
    normalised once and broadcast back, as in :class:`~spikeforge.layers.TimeDistributed`.

    Args:
        num_features: channels ``C`` (dim 2 of the input).
        alpha: the paper's ``alpha``.
        v_threshold: ``V_th`` of the neurons this layer feeds.
        eps, momentum, affine, track_running_stats: as in :class:`torch.nn.BatchNorm2d`.

    Shape:
        ``[T, B, C, *]`` -> same shape.

    Example::

        >>> bn = ThresholdDependentBatchNorm(16, alpha=1.0, v_threshold=0.5)
        >>> bn(torch.randn(4, 8, 16, 10, 10)).shape
        torch.Size([4, 8, 16, 10, 10])
    """

    def __init__(
        self,
        num_features: int,
        alpha: float = 1.0,
        v_threshold: float = 1.0,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(f"num_features must be >= 1, got {num_features}")
        if not alpha > 0 or not v_threshold > 0:
            raise ValueError(f"alpha and v_threshold must be > 0, got {alpha}, {v_threshold}")
        self.num_features = num_features
        self.alpha = float(alpha)
        self.v_threshold = float(v_threshold)
        self.eps = eps
        self.momentum = momentum
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.alpha * self.v_threshold
        weight = self.weight * scale if self.weight is not None else None
        if weight is None:
            # No affine: still scale by alpha * V_th.
            weight = torch.full((self.num_features,), scale, dtype=x.dtype, device=x.device)
        use_batch = self.training or self.running_mean is None
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            weight,
            self.bias,
            use_batch,
            self.momentum,
            self.eps,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3 or x.shape[2] != self.num_features:
            raise ValueError(
                f"ThresholdDependentBatchNorm({self.num_features}) expects [T, B, "
                f"{self.num_features}, ...], got shape {tuple(x.shape)}"
            )
        t, b = x.shape[:2]
        if t > 1 and x.stride(0) == 0:
            y = self._normalise(x[0])
            return y.unsqueeze(0).expand(t, *y.shape)
        y = self._normalise(x.reshape(t * b, *x.shape[2:]))
        return y.reshape(x.shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, alpha={self.alpha}, v_threshold={self.v_threshold}"


class BatchNormTB(ThresholdDependentBatchNorm):
    """Plain BatchNorm over time and batch (tdBN's statistics, ``alpha * V_th = 1``).

    ``y = lambda * (x - E[x]) / sqrt(Var[x] + eps) + beta`` per channel over
    ``[T, B, *]``. Used where the papers put an ordinary BatchNorm after a
    time-merged conv or linear layer (Spikformer, the Spike-driven Transformer,
    SEW/MS-ResNet, VGGSNN).
    """

    def __init__(self, num_features: int, **kw) -> None:
        super().__init__(num_features, alpha=1.0, v_threshold=1.0, **kw)


NORMS = {
    "bn": lambda c, alpha=1.0, v_threshold=1.0: BatchNormTB(c),
    "tdbn": lambda c, alpha=1.0, v_threshold=1.0: ThresholdDependentBatchNorm(
        c, alpha=alpha, v_threshold=v_threshold
    ),
    "none": lambda c, alpha=1.0, v_threshold=1.0: nn.Identity(),
}
"""Normalisation layers by name (``model.norm``): ``fn(channels, alpha, v_threshold)``."""


def build_norm(name: str, channels: int, alpha: float = 1.0, v_threshold: float = 1.0):
    """The normalisation ``name`` (``bn``, ``tdbn``, ``none``) over ``channels``."""
    if name not in NORMS:
        raise ValueError(f"unknown norm {name!r} (model.norm); choose one of {', '.join(NORMS)}")
    return NORMS[name](channels, alpha=alpha, v_threshold=v_threshold)
