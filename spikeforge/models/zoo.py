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

import copy
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from spikeforge.errors import SpikeforgeError
from spikeforge.functional.surrogate import get_surrogate
from spikeforge.layers import Flatten, TimeDistributed, build_norm
from spikeforge.neurons import get_neuron
from spikeforge.neurons.base import config_kwargs

MODELS: dict[str, Callable[..., nn.Module]] = {}


@dataclass(frozen=True)
class ModelInfo:
    """What ``spikeforge models`` shows of a registered model: the input it takes
    (``input``, in words), a shape to build it at for counting parameters
    (``example_shape``), and ``check(input_shape) -> str | None``, the reason
    an input shape cannot be taken (None: it can)."""

    input: str = "any [*] input"
    example_shape: tuple[int, ...] = (1, 28, 28)
    check: Callable[[tuple[int, ...]], str | None] | None = None


MODEL_INFO: dict[str, ModelInfo] = {}


class ModelInputError(SpikeforgeError, ValueError):
    """A model cannot take a dataset's input shape; the message names both."""


def register_model(name: str, info: ModelInfo | None = None):
    """Decorator registering ``fn(input_shape, num_classes, cfg) -> nn.Module`` as ``name``,
    with its :class:`ModelInfo` (the input shapes it takes)."""

    def wrap(fn):
        MODELS[name] = fn
        MODEL_INFO[name] = info or ModelInfo()
        return fn

    return wrap


def image_check(min_size: int, channels: int | None = None):
    """A :class:`ModelInfo` check for ``[C, H, W]`` inputs with ``H, W >= min_size``
    (and ``C == channels`` when given)."""

    def check(shape: tuple[int, ...]) -> str | None:
        if len(shape) != 3:
            return "it needs image inputs [C, H, W]"
        if channels is not None and shape[0] != channels:
            return f"it needs {channels} input channels"
        if min(shape[1:]) < min_size:
            return f"it needs H and W of at least {min_size} (its pooling stages)"
        return None

    return check


def neuron_with(cfg, **overrides) -> Callable[[], nn.Module]:
    """:func:`neuron_factory` of a copy of ``cfg`` with some fields replaced
    (e.g. ``v_threshold=0.5`` for the transformers' attention neurons)."""
    c = copy.copy(cfg)
    for k, v in overrides.items():
        setattr(c, k, v)
    return neuron_factory(c)


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


def _cnn_norm(name: str, channels: int, v_threshold: float) -> nn.Module:
    # "bn" keeps the original module (and its state-dict keys) of the default run.
    if name == "bn":
        return TimeDistributed(nn.BatchNorm2d(channels))
    return build_norm(name, channels, alpha=1.0, v_threshold=v_threshold)


class SpikingCNN(nn.Module):
    """Conv-BN-spike-pool blocks then a linear readout, all time-first.

    ``[T, B, C, H, W]`` -> for each width ``c`` in ``channels``: 3x3 conv (pad 1),
    BatchNorm over time and batch, spiking neuron, 2x2 max-pool -> flatten ->
    (dropout) -> linear -> scores ``[T, B, classes]``. With direct encoding the
    first conv and BN run once for all steps (see :class:`TimeDistributed`).
    ``cfg.norm``: ``bn`` (default), ``tdbn`` (:class:`ThresholdDependentBatchNorm`,
    ``alpha = 1`` and the neuron's ``V_th``) or ``none``.
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
                _cnn_norm(getattr(cfg, "norm", "bn"), c, cfg.v_threshold),
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


@register_model("default_cnn", ModelInfo("[C, H, W] images, H, W >= 2^len(channels)",
                                         (1, 28, 28), image_check(4)))
def default_cnn(input_shape, num_classes, cfg) -> nn.Module:
    """The default convolutional spiking network (:class:`SpikingCNN`)."""
    return SpikingCNN(input_shape, num_classes, cfg)


@register_model("mlp", ModelInfo("any [*] input (flattened)", (1, 28, 28)))
def mlp(input_shape, num_classes, cfg) -> nn.Module:
    """A one-hidden-layer spiking MLP (:class:`SpikingMLP`)."""
    return SpikingMLP(input_shape, num_classes, cfg)


def build_model(
    name: str,
    input_shape,
    num_classes: int,
    cfg,
    time_steps: int | None = None,
    dataset: str | None = None,
) -> nn.Module:
    """Build the registered model ``name``; a clear error for an unknown name, and a
    :class:`ModelInputError` naming the model and the dataset (``dataset``) when the
    model cannot take ``input_shape``. Models whose layers depend on T (MA-SNN, TCJA)
    read ``time_steps``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r} (model.name); available: {', '.join(MODELS)}")
    shape = tuple(int(d) for d in input_shape)
    info = MODEL_INFO[name]
    reason = info.check(shape) if info.check is not None else None
    if reason is not None:
        src = f"dataset {dataset!r}" if dataset else "the input"
        raise ModelInputError(
            f"model {name!r} cannot take {src} of input shape {list(shape)}: {reason} "
            f"(model {name!r} takes {info.input})"
        )
    if time_steps is not None:
        cfg = copy.copy(cfg)
        cfg.time_steps = int(time_steps)
    return MODELS[name](shape, num_classes, cfg)
