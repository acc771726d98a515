"""Model zoo and name registry.

``build_model(name, input_shape, num_classes, cfg)`` builds a registered model;
``cfg`` is any object with the attributes of ``spikeforge.train.config.ModelConfig``
(``neuron``, ``neuron_params``, ``tau``, ``v_threshold``, ``v_reset``, ``detach_reset``,
``surrogate``, ``alpha``, ``backend``, ``channels``, ``hidden``, ``dropout``).
Every model maps time-first input ``[T, B, *input_shape]`` to class scores
``[T, B, num_classes]`` (per-step outputs, so that losses such as TET can use
every step; the prediction is their mean over time).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from spikeforge.functional.surrogate import get_surrogate
from spikeforge.layers import Flatten, TimeDistributed
from spikeforge.neurons import get_neuron
from spikeforge.neurons.base import config_kwargs

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Decorator registering ``fn(input_shape, num_classes, cfg) -> nn.Module`` as ``name``."""

    def wrap(fn):
        MODELS[name] = fn
        return fn

    return wrap


def neuron_factory(cfg) -> Callable[[], nn.Module]:
    """A zero-argument constructor of the spiking neuron the config describes: the
    registered type ``cfg.neuron`` (:data:`spikeforge.neurons.NEURONS`) built from the
    shared keys (``tau``, ``v_threshold``, ``v_reset``, ``detach_reset``, ``surrogate``,
    ``alpha``, ``backend``; a key the type does not take is dropped) and its own
    parameters ``cfg.neuron_params`` (a mapping, may be absent)."""
    cls = get_neuron(cfg.neuron)
    common = dict(
        tau=cfg.tau,
        v_threshold=cfg.v_threshold,
        v_reset=cfg.v_reset,
        detach_reset=cfg.detach_reset,
        surrogate=get_surrogate(cfg.surrogate, cfg.alpha),
        backend=cfg.backend,
    )
    kwargs = config_kwargs(cls, common, dict(getattr(cfg, "neuron_params", None) or {}))
    return lambda: cls(**kwargs)


class SpikingCNN(nn.Module):
    """Conv-BN-spike-pool blocks then a linear readout, all time-first.

    ``[T, B, C, H, W]`` -> for each width ``c`` in ``channels``: 3x3 conv (pad 1),
    BatchNorm over time and batch, spiking neuron, 2x2 max-pool -> flatten ->
    (dropout) -> linear -> scores ``[T, B, classes]``. With direct encoding the
    first conv and BN run once for all steps (see :class:`TimeDistributed`).
    """

    def __init__(self, input_shape, num_classes: int, cfg) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"SpikingCNN needs image inputs [C, H, W], got {tuple(input_shape)}")
        make_neuron = neuron_factory(cfg)
        c_in, h, w = input_shape
        blocks: list[nn.Module] = []
        for c in cfg.channels:
            blocks += [
                TimeDistributed(nn.Conv2d(c_in, c, 3, padding=1, bias=False)),
                TimeDistributed(nn.BatchNorm2d(c)),
                make_neuron(),
                TimeDistributed(nn.MaxPool2d(2)),
            ]
            c_in, h, w = c, h // 2, w // 2
        self.features = nn.Sequential(*blocks)
        head: list[nn.Module] = [Flatten()]
        if cfg.dropout:
            head.append(nn.Dropout(cfg.dropout))
        head.append(TimeDistributed(nn.Linear(c_in * h * w, num_classes)))
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        return self.classifier(self.features(x))


class SpikingMLP(nn.Module):
    """Flatten -> linear -> spiking neuron -> linear readout, time-first:
    ``[T, B, ...] -> [T, B, classes]``."""

    def __init__(self, input_shape, num_classes: int, cfg) -> None:
        super().__init__()
        n_in = 1
        for d in input_shape:
            n_in *= d
        self.net = nn.Sequential(
            Flatten() if len(input_shape) > 1 else nn.Identity(),
            TimeDistributed(nn.Linear(n_in, cfg.hidden)),
            neuron_factory(cfg)(),
            TimeDistributed(nn.Linear(cfg.hidden, num_classes)),
        )

    def forward(self, x):
        return self.net(x)


@register_model("default_cnn")
def default_cnn(input_shape, num_classes, cfg) -> nn.Module:
    """The default convolutional spiking network (:class:`SpikingCNN`)."""
    return SpikingCNN(input_shape, num_classes, cfg)


@register_model("mlp")
def mlp(input_shape, num_classes, cfg) -> nn.Module:
    """A one-hidden-layer spiking MLP (:class:`SpikingMLP`)."""
    return SpikingMLP(input_shape, num_classes, cfg)


def build_model(name: str, input_shape, num_classes: int, cfg) -> nn.Module:
    """Build the registered model ``name``; a clear error for an unknown name."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r} (model.name); available: {', '.join(MODELS)}")
    return MODELS[name](tuple(input_shape), num_classes, cfg)
