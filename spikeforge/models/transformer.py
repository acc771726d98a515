"""Spiking transformers: Spikformer (tiny and CIFAR sizes) and the Spike-driven
Transformer (tiny), over ``[T, B, C, H, W]`` images or frames -> ``[T, B, classes]``."""

from __future__ import annotations

import math

from torch import nn

from spikeforge.layers import SpikeDrivenSelfAttention, SpikingPatchSplitting, SpikingSelfAttention
from spikeforge.layers.time import TimeDistributed
from spikeforge.layers.transformer import SpikingMLP, TransformerBlock
from spikeforge.models.zoo import (
    ModelInfo,
    image_check,
    neuron_factory,
    neuron_with,
    register_model,
)


def _dim(dim: int, heads: int, cfg) -> int:
    """``dim * cfg.width`` rounded to a multiple of ``lcm(8, heads)`` (the stem's
    ``D/8`` and the heads' split)."""
    q = math.lcm(8, heads)
    return max(q, round(dim * getattr(cfg, "width", 1.0) / q) * q)


class SpikingTransformer(nn.Module):
    """Patch-splitting stem, ``depth`` blocks, mean over tokens, linear head.

    ``spike_driven=False``: Spikformer (Zhou et al., ICLR 2023): spiking tokens,
    :class:`~spikeforge.layers.SpikingSelfAttention`, the head reads the mean of
    the last block's output over tokens. ``spike_driven=True``: the Spike-driven
    Transformer (Yao et al., NeurIPS 2023): membrane tokens (MS shortcut),
    :class:`~spikeforge.layers.SpikeDrivenSelfAttention`, a neuron before the head.

    The authors average over time before the linear head; we apply the head at
    every step (``[T, B, classes]``, for per-step losses such as TET): the mean
    over time of our scores equals their output exactly, since the head is linear.
    """

    def __init__(self, input_shape, num_classes, cfg, dim, depth, heads, mlp_ratio,
                 spike_driven: bool, pools: int = 2) -> None:
        super().__init__()
        make_neuron = neuron_factory(cfg)
        make_attn = neuron_with(cfg, v_threshold=0.5)
        dim = _dim(dim, heads, cfg)
        self.stem = SpikingPatchSplitting(input_shape[0], dim, make_neuron, spike_driven, pools)
        attn_cls = SpikeDrivenSelfAttention if spike_driven else SpikingSelfAttention
        self.blocks = nn.Sequential(*[
            TransformerBlock(
                attn_cls(dim, heads, make_neuron, make_attn),
                SpikingMLP(dim, dim * mlp_ratio, make_neuron, membrane=spike_driven),
            )
            for _ in range(depth)
        ])
        self.head_sn = make_neuron() if spike_driven else nn.Identity()
        self.head = TimeDistributed(nn.Linear(dim, num_classes))

    def forward(self, x):
        tokens = self.blocks(self.stem(x))  # [T, B, D, N]
        return self.head(self.head_sn(tokens.mean(-1)))


_INFO = ModelInfo("images or frames [C, H, W], H, W >= 4", (3, 32, 32), image_check(4))


@register_model("spikformer_tiny", _INFO)
def spikformer_tiny(input_shape, num_classes, cfg):
    """Spikformer-1-64 (1 block, embedding 64, 4 heads, MLP ratio 4): a size for
    tests and small inputs."""
    return SpikingTransformer(input_shape, num_classes, cfg, 64, 1, 4, 4, spike_driven=False)


@register_model("spikformer_cifar", _INFO)
def spikformer_cifar(input_shape, num_classes, cfg):
    """Spikformer-4-384 of the paper's CIFAR-10 table (4 blocks, embedding 384, 12
    heads, MLP ratio 4; 95.19% at T = 4 reported with 300 epochs)."""
    return SpikingTransformer(input_shape, num_classes, cfg, 384, 4, 12, 4, spike_driven=False)


@register_model("sdt_tiny", _INFO)
def sdt_tiny(input_shape, num_classes, cfg):
    """Spike-driven Transformer, 1 block, embedding 64, 4 heads, MLP ratio 4 (tiny)."""
    return SpikingTransformer(input_shape, num_classes, cfg, 64, 1, 4, 4, spike_driven=True)


@register_model("sdt_cifar", _INFO)
def sdt_cifar(input_shape, num_classes, cfg):
    """Spike-driven Transformer-2-512 of the paper's CIFAR-10 table (2 blocks,
    embedding 512, 8 heads, MLP ratio 4; 95.6% at T = 4 reported)."""
    return SpikingTransformer(input_shape, num_classes, cfg, 512, 2, 8, 4, spike_driven=True)
