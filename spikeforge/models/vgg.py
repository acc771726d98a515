"""VGG-style spiking networks: VGGSNN (TET's event-frame network), its MA-SNN and
TCJA variants, and spiking VGG-11.

All map ``[T, B, C, H, W]`` to per-step scores ``[T, B, classes]``. Channel
widths scale with ``cfg.width`` (1.0: the papers' widths) so that tiny versions
can be trained in tests; ``cfg.norm`` picks the normalisation (``bn``: BatchNorm
over time and batch, ``tdbn``, ``none``).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from spikeforge.layers import (
    Flatten,
    MultiDimensionalAttention,
    TemporalChannelJointAttention,
    ThresholdDependentBatchNorm,
    TimeDistributed,
    build_norm,
)
from spikeforge.models.zoo import ModelInfo, image_check, neuron_factory, register_model

# TET's VGGSNN (Deng et al., ICLR 2022, code: brain-intelligence-lab/temporal_efficient_training,
# models/VGG_models.py): "A" = 2x2 average pool.
VGGSNN_CFG = [64, 128, "A", 256, 256, "A", 512, 512, "A", 512, 512, "A"]
# VGG-11 for CIFAR (Simonyan & Zisserman config "A", "M" = 2x2 max pool), as in spiking VGG-11
# of Rathi et al. (ICLR 2020) and SpikingJelly's spiking_vgg11.
VGG11_CFG = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


def scaled(c: int, cfg) -> int:
    """Channel width ``c`` times ``cfg.width`` (at least 1)."""
    return max(1, round(c * getattr(cfg, "width", 1.0)))


def need_time_steps(cfg, model: str) -> int:
    """``cfg.time_steps`` (set by :func:`~spikeforge.models.build_model`), or a clear error."""
    t = getattr(cfg, "time_steps", None)
    if t is None:
        raise ValueError(
            f"model {model} has layers sized by T: build it with "
            "build_model(..., time_steps=T) (the trainer passes data.time_steps)"
        )
    return t


class SpikingVGG(nn.Module):
    """Conv3x3-norm-[attention]-SN layers and pools from a layer list, then a linear readout.

    ``layers``: ints are conv widths, ``"A"``/``"M"`` 2x2 average/max pools.
    ``attention(c)`` (optional) builds a layer put between every conv's norm and
    its neuron (MA-SNN acts on the membrane input); with ``attention_gain`` the
    norm before it is a tdBN with ``alpha = attention_gain``, to undo the
    attention's known factor at initialisation (MA-SNN's three gates start at
    1/2 each) so that the input reaching the neuron has the threshold's scale,
    tdBN's own argument. ``spike_attention`` maps a conv's index (0 = first
    conv) to a builder ``f(c)`` of a layer applied to that conv's output spikes
    (TCJA acts on the spike stream). The readout is one linear layer on the
    flattened map (TET's VGGSNN; VGG-11's three-layer ImageNet head is replaced
    by it for 32x32 inputs, as in CIFAR spiking VGGs).
    """

    def __init__(
        self,
        input_shape,
        num_classes: int,
        cfg,
        layers: list,
        attention: Callable[[int], nn.Module] | None = None,
        attention_gain: float = 1.0,
        spike_attention: dict[int, Callable[[int], nn.Module]] | None = None,
    ) -> None:
        super().__init__()
        c_in, h, w = input_shape
        make_neuron = neuron_factory(cfg)
        norm = getattr(cfg, "norm", "bn")
        spike_attention = spike_attention or {}
        mods: list[nn.Module] = []
        n_conv = 0
        for item in layers:
            if item in ("A", "M"):
                pool = nn.AvgPool2d(2) if item == "A" else nn.MaxPool2d(2)
                mods.append(TimeDistributed(pool))
                h, w = h // 2, w // 2
                continue
            c = scaled(item, cfg)
            mods.append(TimeDistributed(nn.Conv2d(c_in, c, 3, padding=1, bias=norm == "none")))
            if attention is not None and attention_gain != 1.0 and norm != "none":
                mods.append(ThresholdDependentBatchNorm(c, attention_gain, cfg.v_threshold))
            else:
                mods.append(build_norm(norm, c, v_threshold=cfg.v_threshold))
            if attention is not None:
                mods.append(attention(c))
            mods.append(make_neuron())
            if n_conv in spike_attention:
                mods.append(spike_attention[n_conv](c))
            c_in = c
            n_conv += 1
        self.features = nn.Sequential(*mods)
        head: list[nn.Module] = [Flatten()]
        if getattr(cfg, "dropout", 0.0):
            head.append(nn.Dropout(cfg.dropout))
        head.append(TimeDistributed(nn.Linear(c_in * h * w, num_classes)))
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        return self.classifier(self.features(x))


@register_model(
    "vggsnn",
    ModelInfo(
        "event frames [C, H, W], H, W >= 16 (TET: [2, 48, 48])", (2, 48, 48), image_check(16)
    ),
)
def vggsnn(input_shape, num_classes, cfg):
    """VGGSNN of TET (Deng et al., "Temporal Efficient Training of Spiking Neural
    Network via Gradient Re-weighting", ICLR 2022): 64C3-128C3-AP2-256C3-256C3-AP2-
    512C3-512C3-AP2-512C3-512C3-AP2-FC, for CIFAR10-DVS frames resized to 48x48.

    Differences from the authors' ``VGG_models.py``: their LIF is ``v = 0.5 v + x``
    (no input scaling, hard reset to 0, threshold 1), ours the configured neuron;
    our default ``v += (x - v)/tau`` halves the BatchNorm's output and leaves a
    thin VGGSNN firing at ~4% per layer with half its neurons silent (a tiny
    VGGSNN reached 35% where the authors' neuron reaches 92% at the same budget),
    so ``model.neuron_params: {decay_input: false}`` (with ``tau: 2``) is the
    authors' neuron, as ``configs/vggsnn-tet-cifar10dvs.yaml`` sets it. The
    readout size follows the input instead of being fixed at 48x48.
    """
    return SpikingVGG(input_shape, num_classes, cfg, VGGSNN_CFG)


@register_model(
    "vggsnn_ma",
    ModelInfo("event frames [C, H, W], H, W >= 16; T fixed at build", (2, 48, 48),
              image_check(16)),
)
def vggsnn_ma(input_shape, num_classes, cfg):
    """VGGSNN with MA-SNN attention (Yao et al., TPAMI 2023) after every conv's norm:
    :class:`~spikeforge.layers.MultiDimensionalAttention` (temporal, channel,
    spatial) on each membrane input, before the neuron, as in the authors'
    ``ConvAttLIF`` (conv, BN, attention, neuron). The authors' DVS networks
    (``MA-SNN/MA-SNN``) are shallower 3-5 conv nets; we put the attention into
    TET's VGGSNN so the two event-frame networks can be compared layer for layer.
    The attention's three gates start at exactly 1/2 (its ``zero_init``), so the
    norm before it is a tdBN with ``alpha = 8``, which makes the neuron's input
    at initialisation that of the plain VGGSNN. The authors use BatchNorm and
    random gates; with random gates behind this x8 norm the temporal gate began
    at ~1e-9, no layer of a tiny VGGSNN-MA spiked and it stayed at chance.
    Caveat: the x8 also scales the pooled statistics the gates' MLPs read, which
    makes the gates sensitive to large steps: with Adam at lr 2e-2 a tiny
    VGGSNN-MA did not learn (its loss stayed at ln 10), at 1.4e-2 it reached
    78%, at 7e-3 and 1e-2 93-95% on the digits; the plain VGGSNN learns at 2e-2."""
    t = need_time_steps(cfg, "vggsnn_ma")
    return SpikingVGG(
        input_shape, num_classes, cfg, VGGSNN_CFG,
        attention=lambda c: MultiDimensionalAttention(t, c, reduction_t=4, reduction_c=16),
        attention_gain=8.0,  # 1 / (1/2)^3: the three gates at initialisation
    )


@register_model(
    "vggsnn_tcja",
    ModelInfo("event frames [C, H, W], H, W >= 16; T fixed at build", (2, 48, 48),
              image_check(16)),
)
def vggsnn_tcja(input_shape, num_classes, cfg):
    """VGGSNN with TCJA (Zhu et al., TNNLS 2024), as the authors' ``VGGSNN_TCJA``
    (``ridgerchu/TCJA``, ``src/tet/models/VGG_models.py``): one
    :class:`~spikeforge.layers.TemporalChannelJointAttention` (both kernels 2) on
    the output spikes of the second conv, before the first pool. TCJA weighs the
    spike stream (the paper's squeeze averages spikes), after the neuron, not the
    membrane input as MA-SNN does."""
    t = need_time_steps(cfg, "vggsnn_tcja")
    return SpikingVGG(
        input_shape, num_classes, cfg, VGGSNN_CFG,
        spike_attention={1: lambda c: TemporalChannelJointAttention(t, c, kernel_t=2, kernel_c=2)},
    )


@register_model(
    "vgg11",
    ModelInfo("images [C, H, W], H, W >= 32 (CIFAR: [3, 32, 32])", (3, 32, 32), image_check(32)),
)
def vgg11(input_shape, num_classes, cfg):
    """Spiking VGG-11 (VGG config "A": 64-M-128-M-256-256-M-512-512-M-512-512-M), BN
    over time and batch after every conv, a linear readout (see :class:`SpikingVGG`).
    SpikingJelly's ``spiking_vgg11`` keeps torchvision's ImageNet head (adaptive
    7x7 pool, FC-4096-4096); for 32x32 inputs that head is 120M parameters on a
    1x1 map, so we use one linear layer, as CIFAR spiking VGGs do."""
    return SpikingVGG(input_shape, num_classes, cfg, VGG11_CFG)
