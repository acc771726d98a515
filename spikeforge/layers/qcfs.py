"""QCFS activation: the quantisation-clip-floor-shift ReLU of Bu et al. (ICLR 2022).

Lives in ``layers/`` so that the model zoo's ANNs can use it; it is re-exported
as :class:`spikeforge.convert.QCFS`, the package that converts such ANNs.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _FloorSTE(torch.autograd.Function):
    """``floor`` in forward, identity gradient in backward (straight-through)."""

    @staticmethod
    def forward(ctx, x):
        return x.floor()

    @staticmethod
    def backward(ctx, grad):
        return grad


def floor_ste(x: torch.Tensor) -> torch.Tensor:
    """``floor(x)`` whose gradient is that of the identity (straight-through estimator)."""
    return _FloorSTE.apply(x)


class QCFS(nn.Module):
    """Quantisation-clip-floor-shift activation (Bu et al., "Optimal ANN-SNN Conversion
    for High-accuracy and Ultra-low-latency Spiking Neural Networks", ICLR 2022)::

        h(x) = lambda * clip( floor(x L / lambda + phi) / L, 0, 1 )

    with ``L`` quantisation levels, shift ``phi = 1/2`` and a learnable upper bound
    ``lambda`` (one per layer, trained with the weights through a straight-through
    floor). An IF neuron with threshold ``lambda``, reset by subtraction and an
    initial membrane of ``lambda/2`` fires on average exactly ``h(x)/lambda`` per
    step over ``T = L`` steps for a constant input ``x``, so converting such an ANN
    loses nothing from quantisation at ``T = L`` and the expected error is zero at
    any ``T`` (their Theorem 2). The converter uses ``lambda`` as the threshold.

    Args:
        levels: ``L``, the number of quantisation steps (the paper's ``L``; 4-16 typical).
        init_bound: initial ``lambda`` (the authors' code starts at 8 on CIFAR).

    Shape: any; elementwise.

    Example::

        >>> act = QCFS(levels=4, init_bound=2.0)
        >>> act(torch.tensor([-1.0, 0.3, 1.0, 5.0]))
        tensor([0.0000, 0.5000, 1.0000, 2.0000], grad_fn=<MulBackward0>)
    """

    def __init__(self, levels: int = 8, init_bound: float = 8.0) -> None:
        super().__init__()
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"QCFS: levels must be a positive integer, got {levels!r}")
        if not (math.isfinite(init_bound) and init_bound > 0):
            raise ValueError(f"QCFS: init_bound must be a positive number, got {init_bound!r}")
        self.levels = levels
        self.bound = nn.Parameter(torch.tensor(float(init_bound)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``h(x)`` as in the class docstring."""
        q = floor_ste(x / self.bound * self.levels + 0.5) / self.levels
        return q.clamp(0.0, 1.0) * self.bound

    def extra_repr(self) -> str:
        return f"levels={self.levels}, bound={float(self.bound):.4g}"
