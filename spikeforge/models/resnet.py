"""Spiking ResNets: ResNet-19 with tdBN, SEW-ResNet-18 and MS-ResNet-18 (CIFAR stems).

All map ``[T, B, C, H, W]`` to per-step scores ``[T, B, classes]``; widths scale
with ``cfg.width``. The three differ in where the spike happens relative to the
residual sum:

- ResNet-19 / tdBN: ``out = SN(tdBN_a(conv(SN(tdBN(conv(s))))) + tdBN_a(shortcut(s)))``,
  ``a = 1/sqrt(2)`` on the two summed branches;
- SEW: ``out = g(SN(BN(conv(SN(BN(conv(s)))))), shortcut(s))`` with ``g`` in
  ADD/AND/IAND/OR (``cfg.connect``);
- MS: ``x_{l+1} = x_l + BN(conv(SN(BN(conv(SN(x_l))))))`` on membrane inputs.
"""

from __future__ import annotations

import math

from torch import nn

from spikeforge.layers import (
    BatchNormTB,
    Flatten,
    MembraneShortcut,
    ResidualJoin,
    ThresholdDependentBatchNorm,
    TimeDistributed,
)
from spikeforge.models.vgg import scaled
from spikeforge.models.zoo import ModelInfo, image_check, neuron_factory, register_model


def conv3(c_in: int, c_out: int, stride: int = 1) -> TimeDistributed:
    """Time-merged 3x3 conv, padding 1, no bias (a norm follows)."""
    return TimeDistributed(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False))


def conv1(c_in: int, c_out: int, stride: int = 1) -> TimeDistributed:
    """Time-merged 1x1 conv, no bias."""
    return TimeDistributed(nn.Conv2d(c_in, c_out, 1, stride, bias=False))


class TdBNBlock(nn.Module):
    """ResNet-19's basic block with tdBN (Zheng et al., AAAI 2021, Fig. 3): the
    two branches summed before the output neuron are each normalised with
    ``alpha = 1/sqrt(2)``, so that their sum has the threshold's scale."""

    def __init__(self, c_in, c_out, stride, make_neuron, v_th) -> None:
        super().__init__()
        a = 1 / math.sqrt(2)
        self.branch = nn.Sequential(
            conv3(c_in, c_out, stride),
            ThresholdDependentBatchNorm(c_out, 1.0, v_th),
            make_neuron(),
            conv3(c_out, c_out),
            ThresholdDependentBatchNorm(c_out, a, v_th),
        )
        self.shortcut = (
            nn.Sequential(conv1(c_in, c_out, stride), ThresholdDependentBatchNorm(c_out, a, v_th))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )
        self.sn = make_neuron()

    def forward(self, s):
        return self.sn(self.branch(s) + self.shortcut(s))


class SEWBlock(nn.Module):
    """SEW basic block (Fang et al., NeurIPS 2021, Fig. 1c):
    ``g(SN(BN(conv(SN(BN(conv(s)))))), shortcut(s))``; the shortcut is the identity
    or ``SN(BN(conv1x1(s)))`` where the shape changes (the paper's downsample
    keeps spikes on both inputs of ``g``)."""

    def __init__(self, c_in, c_out, stride, make_neuron, connect) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            conv3(c_in, c_out, stride), BatchNormTB(c_out), make_neuron(),
            conv3(c_out, c_out), BatchNormTB(c_out), make_neuron(),
        )
        self.shortcut = (
            nn.Sequential(conv1(c_in, c_out, stride), BatchNormTB(c_out), make_neuron())
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )
        self.join = ResidualJoin(connect)

    def forward(self, s):
        return self.join(self.branch(s), self.shortcut(s))


def ms_block(c_in, c_out, stride, make_neuron) -> MembraneShortcut:
    """MS-ResNet basic block (Hu et al., TNNLS 2024): ``x + BN(conv(SN(BN(conv(SN(x))))))``;
    where the shape changes the shortcut is ``BN(conv1x1(x))`` on the membrane input,
    as in the authors' ``BasicBlock_104`` (``Ariande1/MS-ResNet``)."""
    branch = nn.Sequential(
        make_neuron(), conv3(c_in, c_out, stride), BatchNormTB(c_out),
        make_neuron(), conv3(c_out, c_out), BatchNormTB(c_out),
    )
    shortcut = None
    if stride != 1 or c_in != c_out:
        shortcut = nn.Sequential(conv1(c_in, c_out, stride), BatchNormTB(c_out))
    return MembraneShortcut(branch, shortcut)


def _stages(block, widths, depths, strides, c_in, cfg, **kw):
    mods, c = [], c_in
    for w, d, s in zip(widths, depths, strides):
        w = scaled(w, cfg)
        for i in range(d):
            mods.append(block(c, w, s if i == 0 else 1, **kw))
            c = w
    return nn.Sequential(*mods), c


class ResNet19(nn.Module):
    """ResNet-19 of tdBN (Zheng et al., AAAI 2021, Table 1 for CIFAR): conv3x3-128,
    3 blocks of 128, 3 of 256 (stride 2), 2 of 512 (stride 2), global average
    pool, FC-256, SN, FC-classes; tdBN everywhere. The paper does not release
    code; the block follows its Fig. 3 (see :class:`TdBNBlock`). One addition:
    a tdBN between FC-256 and its neuron (TET's ``resnet19`` has none there):
    without it the average-pooled spikes leave that neuron silent at
    initialisation in thin versions, and a tiny ResNet-19 did not learn. The
    hidden FC has ``cfg.hidden`` units (256 by default, the paper's), not
    scaled by ``cfg.width``: a thin version's 16 or 32 binary units at a few
    steps carry too little for the readout (a width-1/16 ResNet-19 on the
    digits: 72% with 16 units, 88% with 256, at the same budget).

    The neuron: tdBN normalises the pre-activation to ``N(0, (alpha V_th)^2)``
    for a neuron that integrates its input undivided (the paper's
    ``u[t] = tau u[t-1](1 - o[t-1]) + x[t]``, also TET's ``LIFSpike``). Our
    default LIF divides the input by ``tau`` (``decay_input=True``), which
    halves that scale and leaves a thin ResNet-19 firing at 2-5% per layer;
    ``model.neuron_params: {decay_input: false}`` gives the paper's neuron
    (``configs/resnet19-tdbn-cifar10.yaml`` sets it), ~14% per layer at
    initialisation."""

    def __init__(self, input_shape, num_classes, cfg) -> None:
        super().__init__()
        make_neuron, v_th = neuron_factory(cfg), cfg.v_threshold
        c0 = scaled(128, cfg)
        self.stem = nn.Sequential(
            conv3(input_shape[0], c0), ThresholdDependentBatchNorm(c0, 1.0, v_th), make_neuron()
        )
        self.layers, c = _stages(
            TdBNBlock, [128, 256, 512], [3, 3, 2], [1, 2, 2], c0, cfg,
            make_neuron=make_neuron, v_th=v_th,
        )
        hidden = int(getattr(cfg, "hidden", 256))
        self.head = nn.Sequential(
            TimeDistributed(nn.AdaptiveAvgPool2d(1)), Flatten(),
            TimeDistributed(nn.Linear(c, hidden)),
            ThresholdDependentBatchNorm(hidden, 1.0, v_th), make_neuron(),
            TimeDistributed(nn.Linear(hidden, num_classes)),
        )

    def forward(self, x):
        return self.head(self.layers(self.stem(x)))


class SEWResNet18(nn.Module):
    """SEW-ResNet-18 (Fang et al., NeurIPS 2021) with a CIFAR stem (conv3x3-64, no
    max-pool), stages of 2 blocks of 64/128/256/512 (strides 1/2/2/2), global
    average pool, FC. ``cfg.connect``: the join ``g`` (``add``, ``and``, ``iand``,
    ``or``). SpikingJelly's ``sew_resnet18`` has the ImageNet stem (7x7 stride 2
    and a max-pool), which leaves a 1x1 map for 32x32 inputs."""

    def __init__(self, input_shape, num_classes, cfg) -> None:
        super().__init__()
        make_neuron = neuron_factory(cfg)
        c0 = scaled(64, cfg)
        self.stem = nn.Sequential(conv3(input_shape[0], c0), BatchNormTB(c0), make_neuron())
        self.layers, c = _stages(
            SEWBlock, [64, 128, 256, 512], [2, 2, 2, 2], [1, 2, 2, 2], c0, cfg,
            make_neuron=make_neuron, connect=getattr(cfg, "connect", "add"),
        )
        self.head = nn.Sequential(
            TimeDistributed(nn.AdaptiveAvgPool2d(1)), Flatten(),
            TimeDistributed(nn.Linear(c, num_classes)),
        )

    def forward(self, x):
        return self.head(self.layers(self.stem(x)))


class MSResNet18(nn.Module):
    """MS-ResNet-18 (Hu et al., TNNLS 2024) with a CIFAR stem (conv3x3-64-BN, no
    neuron: the blocks take membrane inputs), stages of 2 :func:`ms_block` of
    64/128/256/512 (strides 1/2/2/2), then SN, global average pool, FC."""

    def __init__(self, input_shape, num_classes, cfg) -> None:
        super().__init__()
        make_neuron = neuron_factory(cfg)
        c0 = scaled(64, cfg)
        self.stem = nn.Sequential(conv3(input_shape[0], c0), BatchNormTB(c0))
        self.layers, c = _stages(
            ms_block, [64, 128, 256, 512], [2, 2, 2, 2], [1, 2, 2, 2], c0, cfg,
            make_neuron=make_neuron,
        )
        self.head = nn.Sequential(
            make_neuron(), TimeDistributed(nn.AdaptiveAvgPool2d(1)), Flatten(),
            TimeDistributed(nn.Linear(c, num_classes)),
        )

    def forward(self, x):
        return self.head(self.layers(self.stem(x)))


_CIFAR = "images [C, H, W], H, W >= 8 (CIFAR: [3, 32, 32])"


@register_model(
    "resnet19",
    ModelInfo("images [C, H, W], H, W >= 4 (CIFAR: [3, 32, 32])", (3, 32, 32), image_check(4)),
)
def resnet19(input_shape, num_classes, cfg):
    """ResNet-19 with tdBN (:class:`ResNet19`)."""
    return ResNet19(input_shape, num_classes, cfg)


@register_model("sew_resnet18", ModelInfo(_CIFAR, (3, 32, 32), image_check(8)))
def sew_resnet18(input_shape, num_classes, cfg):
    """SEW-ResNet-18 (:class:`SEWResNet18`)."""
    return SEWResNet18(input_shape, num_classes, cfg)


@register_model("ms_resnet18", ModelInfo(_CIFAR, (3, 32, 32), image_check(8)))
def ms_resnet18(input_shape, num_classes, cfg):
    """MS-ResNet-18 (:class:`MSResNet18`)."""
    return MSResNet18(input_shape, num_classes, cfg)
