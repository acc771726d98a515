"""ReLU networks (ANNs) in the zoo, trained with ``spikeforge train --ann`` and then
converted to SNNs by :mod:`spikeforge.convert`.

They follow the conversion papers' architectures: average pooling in place of
max pooling (Li et al., ICML 2021, ``SNN_Calibration``'s VGG builds its ``'M'``
stages with ``AvgPool2d``; Bu et al., ICLR 2022, replace every max pool by an
average pool before training), BatchNorm after each convolution (folded into it
at conversion), and the activation chosen by ``model.activation``: ``relu`` or
``qcfs`` (:class:`~spikeforge.layers.qcfs.QCFS` with ``model.qcfs_levels`` levels).
"""

from __future__ import annotations

from torch import nn

from spikeforge.layers.qcfs import QCFS
from spikeforge.models.zoo import ModelInfo, image_check, register_model


class TimeMergedANN(nn.Module):
    """Run a per-sample ANN ``net`` (``[B, ...] -> [B, K]``) on time-first input.

    ``[T, B, ...] -> [T*B, ...] -> net -> [T, B, K]``, so that the training engine
    (which always feeds ``[T, B, ...]``) trains an ANN with ``data.time_steps=1``.
    ``net`` is the plain module :func:`spikeforge.convert.convert` converts.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        """Scores ``[T, B, K]`` for input ``[T, B, ...]``."""
        if x.dim() < 3:
            raise ValueError(f"TimeMergedANN expects time-first [T, B, ...], got {tuple(x.shape)}")
        t, b = x.shape[:2]
        y = self.net(x.reshape(t * b, *x.shape[2:]))
        return y.reshape(t, b, *y.shape[1:])


def activation_factory(cfg):
    """A zero-argument constructor of the ANN activation ``cfg.activation`` names."""
    kind = getattr(cfg, "activation", "relu")
    if kind == "relu":
        return nn.ReLU
    if kind == "qcfs":
        levels = getattr(cfg, "qcfs_levels", 8)
        # 4.0: the initial bound of the authors' MyFloor module (SNN_conversion_QCFS).
        return lambda: QCFS(levels=levels, init_bound=4.0)
    raise ValueError(f"model.activation must be relu or qcfs; got {kind!r}")


def ann_cnn_net(input_shape, num_classes: int, cfg) -> nn.Sequential:
    """``[B, C, H, W] -> [B, K]``: per width ``c`` in ``cfg.channels`` a 3x3 conv
    (pad 1, no bias), BatchNorm, activation, 2x2 average pool; then flatten,
    (dropout) and a linear readout."""
    if len(input_shape) != 3:
        raise ValueError(f"ann_cnn needs image inputs [C, H, W], got {tuple(input_shape)}")
    act = activation_factory(cfg)
    c_in, h, w = input_shape
    layers: list[nn.Module] = []
    for c in cfg.channels:
        layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), act(),
                   nn.AvgPool2d(2)]
        c_in, h, w = c, h // 2, w // 2
    layers.append(nn.Flatten())
    if cfg.dropout:
        layers.append(nn.Dropout(cfg.dropout))
    layers.append(nn.Linear(c_in * h * w, num_classes))
    return nn.Sequential(*layers)


def ann_mlp_net(input_shape, num_classes: int, cfg) -> nn.Sequential:
    """``[B, ...] -> [B, K]``: flatten, linear to ``cfg.hidden``, activation, linear."""
    n_in = 1
    for d in input_shape:
        n_in *= d
    return nn.Sequential(
        nn.Flatten(), nn.Linear(n_in, cfg.hidden), activation_factory(cfg)(),
        nn.Linear(cfg.hidden, num_classes),
    )


ANN_MODELS = ("ann_cnn", "ann_mlp")


@register_model("ann_cnn", ModelInfo(input="images [C, H, W], H, W >= 4", check=image_check(4)))
def ann_cnn(input_shape, num_classes, cfg) -> nn.Module:
    """The convolutional ReLU/QCFS network for conversion (:func:`ann_cnn_net`)."""
    return TimeMergedANN(ann_cnn_net(input_shape, num_classes, cfg))


@register_model("ann_mlp")
def ann_mlp(input_shape, num_classes, cfg) -> nn.Module:
    """A one-hidden-layer ReLU/QCFS MLP for conversion (:func:`ann_mlp_net`)."""
    return TimeMergedANN(ann_mlp_net(input_shape, num_classes, cfg))
