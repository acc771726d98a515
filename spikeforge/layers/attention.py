"""Attention on membrane inputs of spiking conv layers, time-first ``[T, B, C, H, W]``.

Both layers sit between a conv-BN and its spiking neuron (``conv -> BN ->
attention -> SN``): they rescale the membrane input, not the spikes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check5(x: torch.Tensor, name: str, t: int | None, c: int) -> None:
    if x.dim() != 5 or x.shape[2] != c or (t is not None and x.shape[0] != t):
        want = f"[{t if t is not None else 'T'}, B, {c}, H, W]"
        raise ValueError(f"{name} expects {want}, got shape {tuple(x.shape)}")


class _SharedMLP(nn.Module):
    """``W2 ReLU(W1 z)`` with ``W1: n -> n/r``, ``W2: n/r -> n``, no bias (CBAM's MLP)."""

    def __init__(self, n: int, reduction: int) -> None:
        super().__init__()
        # at least min(n, 4) units: a one-unit ReLU bottleneck can start dead and
        # then never learn (seen with T = 3, r = 4)
        hidden = max(n // reduction, min(n, 4))
        self.net = nn.Sequential(
            nn.Linear(n, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, n, bias=False)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MultiDimensionalAttention(nn.Module):
    r"""MA-SNN: temporal, channel and spatial attention (Yao et al., "Attention
    Spiking Neural Networks", TPAMI 2023, eqs. 10-16), applied in that order to
    the membrane input ``U`` ``[T, B, C, H, W]``::

        temporal:  f_t = sigma(MLP_t(AvgPool_{C,H,W}(U)) + MLP_t(MaxPool_{C,H,W}(U)))  [T, B]
                   U <- f_t * U
        channel:   f_c = sigma(MLP_c(AvgPool_{T,H,W}(U)) + MLP_c(MaxPool_{T,H,W}(U)))  [B, C]
                   U <- f_c * U
        spatial:   f_s = sigma(conv_k([mean_{T,C}(U); max_{T,C}(U)]))                  [B, H, W]
                   U <- f_s * U
        out = ReLU(U)

    ``MLP_t`` maps ``T -> T/r_t -> T``, ``MLP_c`` ``C -> C/r_c -> C`` (shared
    between the average and max branches, as in CBAM); ``conv_k`` is a
    ``2 -> 1`` conv with kernel 3 or 7.

    Following the authors' code (``MA-SNN/MA-SNN``, also SpikingJelly's
    ``MultiDimensionalAttention``) the channel and spatial weights are pooled
    over all steps and shared across time, and a ReLU ends the block. Two
    differences: the bottleneck has ``max(n // r, min(n, 4))`` units (so
    ``T = 4`` with ``reduction_t = 16`` is allowed) instead of asserting
    ``T >= reduction``, since a one-unit ReLU bottleneck can start dead; and
    dimensions can be switched off by name (``dims=("temporal", "channel")``),
    as the paper's TA/CA/SA ablations do.

    Initialisation (``zero_init=True``, the default): the layer that produces each
    gate's logit (the second linear map of both MLPs, the spatial conv) starts at
    zero, so every gate starts at ``sigma(0) = 1/2`` and the block at
    ``ReLU(U) / 8``, a known factor a preceding norm can undo (``vggsnn_ma``
    uses a tdBN with ``alpha = 8``). The authors keep PyTorch's random
    initialisation; on membrane inputs of the threshold's scale the max-pooled
    statistics are large (tens, after such a gain), and random gates then
    start saturated: in a tiny VGGSNN-MA the temporal gate began at ~1e-9 for
    every step, no layer spiked and the network stayed at chance.
    ``zero_init=False`` keeps PyTorch's initialisation.

    Args:
        T: time steps the layer is built for (the temporal MLP's width).
        channels: ``C``.
        reduction_t, reduction_c: the bottleneck ratios ``r_t``, ``r_c``.
        kernel_size: 3 or 7, the spatial conv.
        dims: which attentions to apply, a subset of temporal/channel/spatial.
        zero_init: start every gate at exactly 1/2 (see above).

    Shape: ``[T, B, C, H, W]`` -> same.
    """

    DIMS = ("temporal", "channel", "spatial")

    def __init__(
        self,
        T: int,
        channels: int,
        reduction_t: int = 4,
        reduction_c: int = 16,
        kernel_size: int = 3,
        dims: tuple[str, ...] = DIMS,
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        bad = [d for d in dims if d not in self.DIMS]
        if bad or not dims:
            raise ValueError(f"dims must be a non-empty subset of {self.DIMS}, got {dims}")
        if kernel_size not in (3, 7):
            raise ValueError(f"kernel_size must be 3 or 7, got {kernel_size}")
        self.T, self.channels, self.dims = T, channels, tuple(dims)
        self.temporal = _SharedMLP(T, reduction_t) if "temporal" in dims else None
        self.channel = _SharedMLP(channels, reduction_c) if "channel" in dims else None
        self.spatial = (
            nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
            if "spatial" in dims
            else None
        )
        if zero_init:
            logits = [m.net[-1] for m in (self.temporal, self.channel) if m is not None]
            for layer in logits + ([self.spatial] if self.spatial is not None else []):
                nn.init.zeros_(layer.weight)

    def temporal_weights(self, u: torch.Tensor) -> torch.Tensor:
        """``f_t`` ``[T, B]``."""
        avg, mx = u.mean(dim=(2, 3, 4)), u.amax(dim=(2, 3, 4))  # [T, B]
        return torch.sigmoid(self.temporal(avg.t()) + self.temporal(mx.t())).t()

    def channel_weights(self, u: torch.Tensor) -> torch.Tensor:
        """``f_c`` ``[B, C]``."""
        avg, mx = u.mean(dim=(0, 3, 4)), u.amax(dim=(0, 3, 4))  # [B, C]
        return torch.sigmoid(self.channel(avg) + self.channel(mx))

    def spatial_weights(self, u: torch.Tensor) -> torch.Tensor:
        """``f_s`` ``[B, H, W]``."""
        avg, mx = u.mean(dim=(0, 2)), u.amax(dim=(0, 2))  # [B, H, W]
        return torch.sigmoid(self.spatial(torch.stack([avg, mx], 1))).squeeze(1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        _check5(u, "MultiDimensionalAttention", self.T if self.temporal else None, self.channels)
        if self.temporal is not None:
            u = u * self.temporal_weights(u)[:, :, None, None, None]
        if self.channel is not None:
            u = u * self.channel_weights(u)[None, :, :, None, None]
        if self.spatial is not None:
            u = u * self.spatial_weights(u)[None, :, None]
        return torch.relu(u)

    def extra_repr(self) -> str:
        return f"T={self.T}, channels={self.channels}, dims={self.dims}"


class TemporalChannelJointAttention(nn.Module):
    r"""TCJA (Zhu et al., "TCJA-SNN: Temporal-Channel Joint Attention for Spiking
    Neural Networks", TNNLS 2024, eqs. 4-8). With ``Z = mean_{H,W}(X)`` ``[T, B, C]``::

        TLA: T_{t,c} = sum_j Wt_{c,j} Z_{t+j, c'}   1-D conv along time, C in/out channels
             (kernel k_t)
        CLA: C_{t,c} = sum_j Wc_{t,j} Z_{t', c+j}   1-D conv along channels, T in/out channels
             (kernel k_c)
        CCF: M = sigma(T * C),   Y = M * X           (M broadcast over H, W)

    Each weight mixes the whole other axis (the conv's in-channels), so ``M``
    joins time and channel. As in the authors' code (``ridgerchu/TCJA``,
    ``src/layers.py``) both convs are bias-free with ``padding='same'``; the
    authors name the kernels the other way round (their ``kernel_size_t`` is
    the kernel of the conv over channels); we name each kernel after the axis
    it slides along. Our default kernels are 3 and 3 (odd, so ``'same'``
    padding is symmetric); the authors' defaults are 1 along time and 2 along
    channels, their VGGSNN-TCJA uses 2 and 2. An even kernel is padded as
    PyTorch's ``'same'`` does (the extra zero at the end), explicitly, which
    avoids the warning PyTorch gives for even ``'same'`` kernels.

    Args:
        T: time steps (in/out channels of the channel-axis conv).
        channels: ``C``.
        kernel_t: kernel of TLA (along time).
        kernel_c: kernel of CLA (along channels).

    Shape: ``[T, B, C, H, W]`` -> same.
    """

    def __init__(self, T: int, channels: int, kernel_t: int = 3, kernel_c: int = 3) -> None:
        super().__init__()
        self.T, self.channels = T, channels
        if kernel_t < 1 or kernel_c < 1:
            raise ValueError(f"kernels must be >= 1, got kernel_t={kernel_t}, kernel_c={kernel_c}")
        self.tla = nn.Conv1d(channels, channels, kernel_t, bias=False)
        self.cla = nn.Conv1d(T, T, kernel_c, bias=False)

    @staticmethod
    def _same(z: torch.Tensor, k: int) -> torch.Tensor:
        """Zero-pad the last axis as ``padding='same'`` does (odd excess at the end)."""
        return F.pad(z, ((k - 1) // 2, k // 2))

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """``M`` ``[T, B, C]``."""
        z = x.mean(dim=(3, 4))  # [T, B, C]
        kt, kc = self.tla.kernel_size[0], self.cla.kernel_size[0]
        t_out = self.tla(self._same(z.permute(1, 2, 0), kt)).permute(2, 0, 1)  # along T
        c_out = self.cla(self._same(z.transpose(0, 1), kc)).transpose(0, 1)  # along C
        return torch.sigmoid(t_out * c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check5(x, "TemporalChannelJointAttention", self.T, self.channels)
        return x * self.weights(x)[..., None, None]

    def extra_repr(self) -> str:
        return f"T={self.T}, channels={self.channels}"
