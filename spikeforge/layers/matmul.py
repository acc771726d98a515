"""A matrix product as a module, so that monitors can see it (spiking attention)."""

from __future__ import annotations

import torch
from torch import nn


class SpikeMatmul(nn.Module):
    """``y = a @ b`` (:func:`torch.matmul`) as a module: the hook point of spiking attention.

    Spiking self-attention (Spikformer, Zhou et al. ICLR 2023:
    ``SSA(Q, K, V) = SN(Q K^T V * s)``) multiplies spike matrices with each other.
    Written as ``torch.matmul`` inside a layer's ``forward`` these products are
    invisible to forward hooks; written as ``self.qk = SpikeMatmul()`` and
    ``self.qk(q, k.transpose(-2, -1))`` they are counted by
    :mod:`spikeforge.analysis` like any synaptic layer: one accumulate per pair
    of non-zero operands when either operand is a spike tensor, one
    multiply-accumulate otherwise. The module has no parameters and changes
    nothing else.

    Shape:
        ``a`` ``[..., n, k]``, ``b`` ``[..., k, m]`` (broadcast as in ``torch.matmul``)
        -> ``[..., n, m]``.

    Example::

        >>> mm = SpikeMatmul()
        >>> mm(torch.ones(2, 3, 4), torch.ones(2, 4, 5)).shape
        torch.Size([2, 3, 5])
    """

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.dim() < 2 or b.dim() < 2:
            raise ValueError(
                f"SpikeMatmul needs operands with >= 2 dims, got {tuple(a.shape)} and "
                f"{tuple(b.shape)}"
            )
        return torch.matmul(a, b)
