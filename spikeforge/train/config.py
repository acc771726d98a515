"""The run configuration: YAML validated against a schema of nested dataclasses.

Every key is declared here with its type and default; an unknown key, a value
of the wrong type or out of range is a :class:`ConfigError` naming the key
(e.g. ``data.time_steps``). ``load_config`` merges, in order: the defaults, a
YAML file, then ``key.sub=value`` overrides from the command line.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from spikeforge.errors import SpikeforgeError


class ConfigError(SpikeforgeError, ValueError):
    """A bad configuration: the message names the key and what was wrong."""


@dataclass
class DataConfig:
    """``data:`` section. ``name``: a registered dataset (``spikeforge datasets``);
    ``time_steps``: T; ``encoding``: how static inputs become ``[T, B, ...]``
    (``direct`` repeats the analog input, ``rate`` draws Bernoulli spikes);
    ``root``/``download``: where neuromorphic datasets live, and whether to
    fetch them; ``augment``: training-batch augmentations (``translate:N``,
    ``flip``, ``cutout:N``); null means the dataset's own default (``mnist5k``:
    ``[translate:2]``, a random shift of up to 2 pixels; the others: none) and
    ``[]`` means none.

    Event datasets become ``time_steps`` frames per sample
    (:mod:`spikeforge.data.neuromorphic`): ``frame_mode`` ``time_bins`` cuts
    each recording's time span into equal bins, ``event_bins`` into bins of
    equal event count; ``frame_overlap`` in ``[0, 1)`` widens each bin by that
    fraction (Tonic's overlap); ``frame_scale`` in ``(0, 1]`` shrinks pixel
    coordinates (null: the dataset's default, 1 except N-Caltech101's 0.25);
    ``denoise_time`` (microseconds, null = off) drops events with no
    neighbour event that recent; ``skip_corrupt`` skips unreadable files
    instead of failing; ``cache_dir`` holds converted frames (null:
    ``<root>/.spikeforge_cache``)."""

    name: str = "mnist5k"
    time_steps: int = 4
    encoding: str = "direct"
    batch_size: int = 32
    root: str | None = None
    download: bool = False
    skip_corrupt: bool = False
    augment: list[str] | None = None
    cache_dir: str | None = None
    frame_mode: str = "time_bins"
    frame_overlap: float = 0.0
    frame_scale: float | None = None
    denoise_time: float | None = None

    def validate(self, prefix: str) -> None:
        """Raise :class:`ConfigError` naming ``prefix.key`` for a value out of range."""
        _positive(self.time_steps, f"{prefix}.time_steps")
        _positive(self.batch_size, f"{prefix}.batch_size")
        _choice(self.encoding, ("direct", "rate", "poisson"), f"{prefix}.encoding")
        _choice(self.frame_mode, ("time_bins", "event_bins"), f"{prefix}.frame_mode")
        if not 0 <= self.frame_overlap < 1:
            raise ConfigError(f"{prefix}.frame_overlap must be in [0, 1), got {self.frame_overlap}")
        if self.frame_scale is not None and not 0 < self.frame_scale <= 1:
            raise ConfigError(f"{prefix}.frame_scale must be in (0, 1], got {self.frame_scale}")
        if self.denoise_time is not None:
            _bounded(self.denoise_time, f"{prefix}.denoise_time", low=0, low_open=True)


@dataclass
class ModelConfig:
    """``model:`` section. ``name``: a model in the zoo (``default_cnn``, ``mlp``);
    ``neuron``: a registered neuron type (:data:`spikeforge.neurons.NEURONS`: ``lif``,
    ``plif``, ``if``, ``alif``, ``cubalif``, ...); the shared neuron parameters as in
    :class:`spikeforge.neurons.LIF` (a type that does not take one ignores it, e.g. IF's
    ``tau``); ``neuron_params``: the type's other parameters and options, checked
    against its constructor (e.g. ``{tau_adapt: 50, beta: 0.1}`` for ``alif``,
    ``{tau_syn: 4}`` for ``cubalif``, ``{fire_strict: true}`` for any); the resolved
    config lists the type's own parameters with their defaults; ``backend``: kernel
    choice (``auto``, ``reference``, ``cpu``, ``triton``); ``channels``: conv widths;
    ``hidden``: MLP width; ``norm``: ``bn`` (BatchNorm over time and batch),
    ``tdbn`` (threshold-dependent BN) or ``none``, for ``default_cnn`` and the
    VGGs; ``width``: multiplies the zoo models' channel widths (1.0 = the
    papers'); ``connect``: SEW-ResNet's residual join (``add``, ``and``,
    ``iand``, ``or``); ``nir``: for ``name: nir`` (a run written by ``spikeforge
    import-nir``), ``{file, convention, dt, reset}`` of :func:`spikeforge.deploy.from_nir`.
    ``spikeforge models`` lists the models. ANNs for conversion (``ann_cnn``,
    ``ann_mlp``): ``activation`` (``relu`` or ``qcfs``) and ``qcfs_levels`` (QCFS's
    L). A converted SNN has ``name: converted`` and ``ann``: the zoo ANN it came from."""

    name: str = "default_cnn"
    neuron: str = "lif"
    tau: float = 2.0
    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    detach_reset: bool = True
    surrogate: str = "atan"
    alpha: float | None = None
    backend: str = "auto"
    neuron_params: dict = field(default_factory=dict)
    channels: list[int] = field(default_factory=lambda: [32, 64])
    hidden: int = 256
    dropout: float = 0.0
    norm: str = "bn"
    width: float = 1.0
    connect: str = "add"
    nir: dict = field(default_factory=dict)
    activation: str = "relu"
    qcfs_levels: int = 8
    ann: str | None = None

    def validate(self, prefix: str) -> None:
        """Raise :class:`ConfigError` naming ``prefix.key`` for a value out of range."""
        _choice(self.activation, ("relu", "qcfs"), f"{prefix}.activation")
        _positive(self.qcfs_levels, f"{prefix}.qcfs_levels")
        if self.name == "converted" and not self.ann:
            raise ConfigError(f"{prefix}.ann must name the zoo ANN a converted model came from")
        # neuron, surrogate and backend are checked against their registries in
        # spikeforge.train.checks (called by RunConfig.validate).
        _bounded(self.tau, f"{prefix}.tau", low=1)
        _bounded(self.v_threshold, f"{prefix}.v_threshold", low=0, low_open=True)
        if self.v_reset is not None:
            # A reset at or above the threshold would make the neuron fire at every step.
            _bounded(self.v_reset, f"{prefix}.v_reset", high=self.v_threshold, high_open=True)
        if self.alpha is not None:
            _bounded(self.alpha, f"{prefix}.alpha", low=0, low_open=True)
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"{prefix}.dropout must be in [0, 1), got {self.dropout}")
        if not self.channels or any(c < 1 for c in self.channels):
            raise ConfigError(
                f"{prefix}.channels must be a list of positive ints, got {self.channels}"
            )
        _positive(self.hidden, f"{prefix}.hidden")
        from spikeforge.layers.norm import NORMS
        from spikeforge.layers.residual import JOINS

        _choice(self.norm, tuple(NORMS), f"{prefix}.norm")
        _choice(self.connect, tuple(JOINS), f"{prefix}.connect")
        if not self.width > 0:
            raise ConfigError(f"{prefix}.width must be > 0, got {self.width}")
        self.neuron_params = _neuron_params(self, f"{prefix}.neuron_params")


def _neuron_params(model: ModelConfig, key: str) -> dict:
    """``model.neuron_params`` checked against the registered type's constructor: known
    names, values of the annotated types, the type's own defaults filled in, and the
    type's own range checks (by building one neuron on the reference backend)."""
    from spikeforge.functional.surrogate import get_surrogate
    from spikeforge.neurons.base import (
        NEURONS,
        config_kwargs,
        neuron_parameter_types,
        own_parameters,
    )

    if model.neuron not in NEURONS:
        return dict(model.neuron_params)  # named by checks.check_registries
    cls = NEURONS[model.neuron]
    types = neuron_parameter_types(cls)
    out = {}
    for name, value in model.neuron_params.items():
        if name not in types:
            raise ConfigError(
                f"unknown config key {key}.{name!s} for neuron {model.neuron!r}; its "
                f"parameters: {', '.join(sorted(types))} (tau, v_threshold, v_reset, "
                "detach_reset, surrogate, alpha and backend are keys of model itself)"
            )
        out[name] = _coerce(value, types[name], f"{key}.{name}")
    for name, p in own_parameters(cls).items():
        if p.default is not p.empty:
            out.setdefault(name, p.default)
    try:
        surrogate = get_surrogate(model.surrogate, model.alpha)
    except (ValueError, KeyError):
        return out  # an unknown surrogate is named by checks.check_registries
    common = dict(tau=model.tau, v_threshold=model.v_threshold, v_reset=model.v_reset,
                  detach_reset=model.detach_reset, backend="reference", surrogate=surrogate)
    try:
        cls(**config_kwargs(cls, common, out))
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{key} for neuron {model.neuron!r}: {e}") from e
    return out


@dataclass
class OptimConfig:
    """``optim:`` section: ``name`` (``adam``, ``adamw``, ``sgd``: the registry
    ``spikeforge.train.engine.OPTIMIZERS``), learning rate, weight decay,
    momentum (sgd) and the schedule (``cosine`` or ``none``)."""

    name: str = "adam"
    lr: float = 5e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "cosine"

    def validate(self, prefix: str) -> None:
        """Raise :class:`ConfigError` naming ``prefix.key`` for a value out of range."""
        _choice(self.name, ("adam", "adamw", "sgd"), f"{prefix}.name")
        _choice(self.scheduler, ("cosine", "none"), f"{prefix}.scheduler")
        _bounded(self.lr, f"{prefix}.lr", low=0, low_open=True)
        _bounded(self.weight_decay, f"{prefix}.weight_decay", low=0)
        _bounded(self.momentum, f"{prefix}.momentum", low=0, high=1, high_open=True)


@dataclass
class LossConfig:
    """``loss:`` section. ``name``: a loss of ``spikeforge.functional.loss.LOSSES``:
    ``ce`` (cross-entropy on the output averaged over time), ``tet`` (TET, Deng et
    al. 2022: mean over t of the per-step cross-entropy, plus ``lam`` times the
    MSE of the outputs to ``phi``) or ``mse_rate`` (MSE between firing rate and
    one-hot). ``label_smoothing`` (``ce``, ``tet``) in ``[0, 1)``; ``lam`` (the
    paper's lambda) in ``[0, 1]`` and ``phi`` (``tet``). A parameter the chosen
    loss does not take is an error when set (``LOSS_PARAMS`` says which)."""

    name: str = "tet"
    label_smoothing: float = 0.0
    lam: float = 0.0
    phi: float = 1.0

    def params(self) -> dict[str, float]:
        """The loss parameters as keyword arguments."""
        return {k: getattr(self, k) for k in ("label_smoothing", "lam", "phi")}

    def validate(self, prefix: str) -> None:
        """Raise :class:`ConfigError` naming ``prefix.key`` for a value out of range."""
        # the name is looked up in spikeforge.functional.loss.LOSSES by train.checks;
        # the parameters here, against what the named loss takes
        from spikeforge.functional.loss import check_loss_params

        defaults = LossConfig(name=self.name).params()
        try:
            check_loss_params(self.name, self.params(), defaults)
        except ValueError as e:
            raise ConfigError(str(e).replace("loss.", f"{prefix}.")) from e


@dataclass
class MTTConfig:
    """``train.mtt:`` mixed time-step training (Du et al., ICLR 2025;
    :mod:`spikeforge.train.mtt`). ``enabled``: on/off; ``cut_points``: names of the
    model's modules where a new stage starts (``spikeforge models`` / the model's
    ``named_modules``; stage 0 starts at the input); ``time_steps``: the set each
    stage's ``T`` is drawn from; ``samples``: temporal configurations per iteration
    (their losses are summed); ``sampler``: ``independent`` (each stage its own
    ``T``), ``shared`` (one ``T`` for all stages) or ``input_max`` (stage 0 at the
    largest ``T``, the others each their own: the authors' event-driven sampler)."""

    enabled: bool = False
    cut_points: list[str] = field(default_factory=list)
    time_steps: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    samples: int = 1
    sampler: str = "independent"

    def validate(self, prefix: str) -> None:
        """Raise :class:`ConfigError` naming ``prefix.key`` for a value out of range."""
        _positive(self.samples, f"{prefix}.samples")
        _choice(self.sampler, ("independent", "shared", "input_max"), f"{prefix}.sampler")
        if not self.time_steps or any(t < 1 for t in self.time_steps):
            raise ConfigError(f"{prefix}.time_steps must be a non-empty list of ints >= 1")


@dataclass
class TrainConfig:
    """``train:`` section. ``precision``: ``fp32`` or ``bf16`` (forward and loss
    under ``torch.autocast`` with bfloat16, on the CPU and on CUDA; weights,
    gradients and optimizer state stay float32); ``grad_clip``: clip the global
    gradient norm to this value before each step (null: no clipping); ``mtt``:
    mixed time-step training (:class:`MTTConfig`)."""

    precision: str = "fp32"
    grad_clip: float | None = None
    mtt: MTTConfig = field(default_factory=MTTConfig)

    def validate(self, prefix: str) -> None:
        """Raise :class:`ConfigError` naming ``prefix.key`` for a value out of range."""
        self.mtt.validate(f"{prefix}.mtt")
        _choice(self.precision, ("fp32", "bf16"), f"{prefix}.precision")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"{prefix}.grad_clip must be > 0 or null, got {self.grad_clip}")


@dataclass
class ConvertConfig:
    """``convert:`` section, present in runs written by ``spikeforge convert``: how the
    SNN was made from the ANN run ``source`` (see :mod:`spikeforge.convert`).
    ``threshold``: ``percentile`` (``percentile`` % of the calibration
    activations) or ``max``; ``calibration``: ``none``, ``light``, ``advanced`` or
    ``advanced_bn``; ``calib_samples``: training samples used; ``time_steps``: the
    T it was calibrated for; ``ann_test_accuracy``: the source ANN's."""

    source: str | None = None
    threshold: str = "percentile"
    percentile: float = 99.9
    calibration: str = "none"
    calib_samples: int = 256
    time_steps: int = 32
    ann_test_accuracy: float | None = None

    def validate(self, prefix: str) -> None:
        """Raise :class:`ConfigError` naming ``prefix.key`` for a value out of range."""
        _choice(self.threshold, ("percentile", "max"), f"{prefix}.threshold")
        _choice(self.calibration, ("none", "light", "advanced", "advanced_bn"),
                f"{prefix}.calibration")
        _positive(self.calib_samples, f"{prefix}.calib_samples")
        _positive(self.time_steps, f"{prefix}.time_steps")
        if not 0 < self.percentile <= 100:
            raise ConfigError(f"{prefix}.percentile must be in (0, 100], got {self.percentile}")


@dataclass
class RunConfig:
    """Top level: ``seed``, ``epochs``, ``device`` (``cpu``, ``cuda``, ``auto``),
    ``threads`` (CPU threads; null = all cores), ``progress`` (show a bar)."""

    seed: int = 0
    epochs: int = 10
    device: str = "cpu"
    threads: int | None = None
    progress: bool = True
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    convert: ConvertConfig | None = None

    def validate(self, prefix: str = "") -> None:
        """Check every section; raise :class:`ConfigError` naming the first bad key."""
        if not 0 <= self.seed < 2**63:
            raise ConfigError(f"seed must be in [0, 2**63), got {self.seed}")
        _positive(self.epochs, "epochs")
        _choice(self.device, ("cpu", "cuda", "auto"), "device")
        if self.threads is not None:
            _positive(self.threads, "threads")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if dataclasses.is_dataclass(v):
                v.validate(f.name)
        # Names are looked up in the registries now, so `spikeforge config` rejects
        # what `spikeforge train` would (imported here: the registries import torch).
        from spikeforge.train.checks import check_registries

        check_registries(self)


def _positive(value: int, key: str) -> None:
    if value < 1:
        raise ConfigError(f"{key} must be >= 1, got {value}")


def _bounded(
    value: float,
    key: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise naming ``key`` unless ``value`` is finite and inside the given bounds."""
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        bounds = " and ".join(parts)
        raise ConfigError(f"{key} must be {bounds + ' and ' if bounds else ''}finite, got {value}")


def _choice(value: str, choices: tuple[str, ...], key: str) -> None:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {value!r}")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert ``value`` to the annotated type ``tp`` or raise naming ``key``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping of keys, got {value!r}")
        return dict(value)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping of keys, got {value!r}")
        return _build(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            # YAML 1.1 reads 1e-3 (no dot) as a string; accept plain numerals.
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover


def _build(cls, values: dict, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for k in values:
        if k not in names:
            where = f"{prefix}.{k}" if prefix else k
            raise ConfigError(
                f"unknown config key {where!r}; valid keys here: {', '.join(sorted(names))}"
            )
    kwargs = {}
    for k, v in values.items():
        kwargs[k] = _coerce(v, hints[k], f"{prefix}.{k}" if prefix else k)
    return cls(**kwargs)


def config_from_dict(values: dict) -> RunConfig:
    """Build and validate a :class:`RunConfig` from a (possibly partial) dict."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(
            f"a config must be a mapping at the top level, got {type(values).__name__}"
        )
    cfg = _build(RunConfig, values)
    cfg.validate()
    return cfg


def config_to_dict(cfg: RunConfig) -> dict:
    """The full resolved config as plain dicts (what ``config.yaml`` holds)."""
    return dataclasses.asdict(cfg)


def apply_override(values: dict, override: str) -> None:
    """Apply one ``a.b.c=value`` override (value parsed as YAML) to a nested dict."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} must look like key.sub=value")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {override!r} has an empty key part")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"override {key}: cannot parse value {raw!r}: {e}") from e
    node = values
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}: {p!r} is not a section")
    node[parts[-1]] = value


def load_config(path: str | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Defaults <- YAML file at ``path`` <- ``overrides``; validated."""
    values: dict = {}
    if path is not None:
        try:
            with open(path) as f:
                loaded = yaml.safe_load(f)
        except FileNotFoundError as e:
            raise ConfigError(f"config file not found: {path}") from e
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or e
            raise ConfigError(f"cannot read config file {path}: {reason}") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        values = loaded or {}
    for o in overrides or []:
        apply_override(values, o)
    return config_from_dict(values)
