"""Spiking transformers' layers over time-first tokens ``[T, B, D, N]``.

Tokens are channels-first (``D`` features, ``N = H*W`` tokens), the layout of
the authors' code, so that the 1x1 convs and BatchNorms run on ``[T*B, D, N]``.
Each layer takes its spiking neurons from zero-argument constructors
(``make_neuron``; ``make_attn_neuron`` for the attention neuron, whose threshold
the papers set to 0.5), so any registered neuron type can be used.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from spikeforge.layers.norm import BatchNormTB
from spikeforge.layers.time import TimeDistributed

MakeNeuron = Callable[[], nn.Module]


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    """1x1 conv (a linear map of each token) then BatchNorm over time, batch and tokens."""
    return nn.Sequential(TimeDistributed(nn.Conv1d(c_in, c_out, 1, bias=False)), BatchNormTB(c_out))


def _check_tokens(x: torch.Tensor, dim: int, name: str) -> None:
    if x.dim() != 4 or x.shape[2] != dim:
        raise ValueError(f"{name} expects tokens [T, B, {dim}, N], got shape {tuple(x.shape)}")


def _heads(x: torch.Tensor, h: int) -> torch.Tensor:
    """``[T, B, D, N] -> [T, B, h, N, D/h]``."""
    t, b, d, n = x.shape
    return x.reshape(t, b, h, d // h, n).transpose(-1, -2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """``[T, B, h, N, d] -> [T, B, h*d, N]``."""
    t, b, h, n, d = x.shape
    return x.transpose(-1, -2).reshape(t, b, h * d, n)


class SpikingSelfAttention(nn.Module):
    r"""Spiking self-attention, SSA (Zhou et al., "Spikformer: When Spiking Neural
    Network Meets Transformer", ICLR 2023, eqs. 7-10)::

        Q = SN_Q(BN(X W_Q)),  K = SN_K(BN(X W_K)),  V = SN_V(BN(X W_V))     (spikes)
        SSA'(Q, K, V) = SN(Q K^T V * s)                                  (per head)
        SSA(X) = SN(BN(Linear(SSA'(Q, K, V))))

    No softmax: ``Q K^T`` of spikes is non-negative already. ``s = 0.125`` and
    the ``SN`` after ``Q K^T V`` has threshold 0.5, as in the authors' code
    (``ZK-Zhou/spikformer``). We compute ``Q (K^T V)`` instead of ``(Q K^T) V``:
    on spikes both are sums of integers, exact in float32 below 2^24, so the
    result is the same, at ``O(N d^2)`` instead of ``O(N^2 d)`` (SpikingJelly's
    ``SpikingSelfAttention`` reorders the same way).

    Shape: ``[T, B, D, N]`` -> same.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        make_neuron: MakeNeuron,
        make_attn_neuron: MakeNeuron,
        scale: float = 0.125,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.dim, self.heads, self.scale = dim, heads, scale
        self.q, self.k, self.v = (_conv_bn(dim, dim) for _ in range(3))
        self.q_sn, self.k_sn, self.v_sn = make_neuron(), make_neuron(), make_neuron()
        self.attn_sn = make_attn_neuron()
        self.proj = _conv_bn(dim, dim)
        self.proj_sn = make_neuron()

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``Q K^T V * s`` per head on ``[T, B, D, N]`` spikes (before its neuron)."""
        qh, kh, vh = (_heads(z, self.heads) for z in (q, k, v))
        return _merge(qh @ (kh.transpose(-1, -2) @ vh) * self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_tokens(x, self.dim, "SpikingSelfAttention")
        q = self.q_sn(self.q(x))
        k = self.k_sn(self.k(x))
        v = self.v_sn(self.v(x))
        y = self.attn_sn(self.attention(q, k, v))
        return self.proj_sn(self.proj(y))


class SpikeDrivenSelfAttention(nn.Module):
    r"""Spike-driven self-attention, SDSA (Yao et al., "Spike-driven Transformer",
    NeurIPS 2023, eq. 12, with the membrane shortcut of eq. 14)::

        S = SN(U)                                       (U: membrane input of the block)
        Q = SN_Q(BN(Conv(S))),  K = SN_K(...),  V = SN_V(...)
        SDSA(Q, K, V) = Q * SN(SUM_c(K * V))            (* : Hadamard; SUM_c: over tokens)
        out = BN(Conv(SDSA))                            (membrane, no neuron)

    Only masks and additions: ``K * V`` is an AND of spikes, ``SUM_c`` a column
    sum per head, and ``Q *`` a mask. As in the authors' code
    (``BICLab/Spike-Driven-Transformer``, ``MS_SSA_Conv``) the sum's neuron
    ("talking heads") has threshold 0.5 and the block opens with a neuron on the
    membrane shortcut; their convs are 1x1 Conv2d over ``[H, W]``, ours 1x1
    Conv1d over the ``N = H*W`` flattened tokens: the same map.

    Shape: ``[T, B, D, N]`` membrane -> same.
    """

    def __init__(
        self, dim: int, heads: int, make_neuron: MakeNeuron, make_attn_neuron: MakeNeuron
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.dim, self.heads = dim, heads
        self.shortcut_sn = make_neuron()
        self.q, self.k, self.v = (_conv_bn(dim, dim) for _ in range(3))
        self.q_sn, self.k_sn, self.v_sn = make_neuron(), make_neuron(), make_neuron()
        self.talking_heads_sn = make_attn_neuron()
        self.proj = _conv_bn(dim, dim)

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``Q * SN(SUM_c(K * V))`` on ``[T, B, D, N]`` spikes."""
        kv = (_heads(k, self.heads) * _heads(v, self.heads)).sum(dim=-2, keepdim=True)
        return _merge(_heads(q, self.heads) * self.talking_heads_sn(kv))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        _check_tokens(u, self.dim, "SpikeDrivenSelfAttention")
        s = self.shortcut_sn(u)
        q = self.q_sn(self.q(s))
        k = self.k_sn(self.k(s))
        v = self.v_sn(self.v(s))
        return self.proj(self.attention(q, k, v))


class SpikingMLP(nn.Module):
    """The transformers' MLP: ``[SN] -> conv1x1-BN -> SN -> conv1x1-BN -> [SN]``.

    Spikformer (``membrane=False``) ends each linear with a neuron; the
    Spike-driven Transformer (``membrane=True``) opens with one and returns the
    membrane (MS shortcut). Shape: ``[T, B, D, N]`` -> same.
    """

    def __init__(self, dim: int, hidden: int, make_neuron: MakeNeuron, membrane: bool) -> None:
        super().__init__()
        self.dim = dim
        self.pre = make_neuron() if membrane else nn.Identity()
        self.fc1, self.sn1 = _conv_bn(dim, hidden), make_neuron()
        self.fc2 = _conv_bn(hidden, dim)
        self.post = nn.Identity() if membrane else make_neuron()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_tokens(x, self.dim, "SpikingMLP")
        return self.post(self.fc2(self.sn1(self.fc1(self.pre(x)))))


class TransformerBlock(nn.Module):
    """``x <- x + Attn(x); x <- x + MLP(x)`` (both papers' block, eqs. 5-6 of
    Spikformer, 13-14 of the Spike-driven Transformer)."""

    def __init__(self, attn: nn.Module, mlp: nn.Module) -> None:
        super().__init__()
        self.attn, self.mlp = attn, mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class SpikingPatchSplitting(nn.Module):
    r"""The patch-splitting stem, SPS (Spikformer, eq. 1; Spike-driven
    Transformer, eq. 4): four 3x3 conv-BN-SN stages widening ``C -> D/8 -> D/4
    -> D/2 -> D`` (2x2-stride max-pools after the last ``pools`` stages), then a
    relative position embedding ``RPE = conv3x3-BN`` added back::

        Spikformer:      x = SN(BN(Conv(x)))...;       out = x + SN(BN(Conv(x)))   (spikes)
        Spike-driven:    u = BN(Conv(..)); x_feat = u; out = x_feat + BN(Conv(SN(u)))
                                                                           (membrane, MS)

    In the Spike-driven Transformer the max-pool comes before the neuron and
    the block returns membrane potentials (its ``MS_SPS``); in Spikformer the
    pool follows the neuron. We use the authors' CIFAR stem (3x3 convs, pools
    ``kernel 3, stride 2, pad 1``). Shape: ``[T, B, C, H, W]`` -> tokens
    ``[T, B, D, H'*W']`` with ``H' = ceil(H / 2^pools)``.
    """

    def __init__(
        self, in_channels: int, dim: int, make_neuron: MakeNeuron, membrane: bool, pools: int = 2
    ) -> None:
        super().__init__()
        if dim % 8:
            raise ValueError(f"embedding dim must be divisible by 8, got {dim}")
        if not 0 <= pools <= 4:
            raise ValueError(f"pools must be in 0..4, got {pools}")
        self.in_channels, self.membrane = in_channels, membrane
        widths = [dim // 8, dim // 4, dim // 2, dim]
        stages: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths):
            conv = TimeDistributed(nn.Conv2d(c, w, 3, padding=1, bias=False))
            pool = TimeDistributed(nn.MaxPool2d(3, 2, 1)) if i >= 4 - pools else nn.Identity()
            last = i == len(widths) - 1
            if membrane:  # conv-BN-pool (-SN except at the last stage)
                sn = nn.Identity() if last else make_neuron()
                stages.append(nn.Sequential(conv, BatchNormTB(w), pool, sn))
            else:
                stages.append(nn.Sequential(conv, BatchNormTB(w), make_neuron(), pool))
            c = w
        self.stages = nn.Sequential(*stages)
        rpe = [TimeDistributed(nn.Conv2d(dim, dim, 3, padding=1, bias=False)), BatchNormTB(dim)]
        self.rpe = nn.Sequential(make_neuron(), *rpe) if membrane else nn.Sequential(
            *rpe, make_neuron()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[2] != self.in_channels:
            raise ValueError(
                f"SpikingPatchSplitting expects [T, B, {self.in_channels}, H, W], "
                f"got shape {tuple(x.shape)}"
            )
        x = self.stages(x)
        x = x + self.rpe(x)
        return x.flatten(3)
