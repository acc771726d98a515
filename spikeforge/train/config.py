"""The run configuration: YAML validated against a schema of nested dataclasses.

Every key is declared here with its type and default; an unknown key, a value
of the wrong type or out of range is a :class:`ConfigError` naming the key
(e.g. ``data.time_steps``). ``load_config`` merges, in order: the defaults, a
YAML file, then ``key.sub=value`` overrides from the command line.

This module is the schema (sections, keys, defaults, and which check each key
gets); the checks themselves are in :mod:`spikeforge.train.checks`, reading the
file and the overrides in :mod:`spikeforge.train.overrides`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from spikeforge.errors import ConfigError
from spikeforge.train.checks import bounded as _bounded
from spikeforge.train.checks import build as _build
from spikeforge.train.checks import check_registries
from spikeforge.train.checks import choice as _choice
from spikeforge.train.checks import neuron_params as _neuron_params
from spikeforge.train.checks import positive as _positive
from spikeforge.train.overrides import apply_override, read_values

__all__ = [
    "ConfigError", "ConvertConfig", "DataConfig", "LossConfig", "MTTConfig", "ModelConfig",
    "OptimConfig", "RunConfig", "TrainConfig", "apply_override", "config_from_dict",
    "config_to_dict", "load_config",
]


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
        # what `spikeforge train` would.
        check_registries(self)


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


def load_config(path: str | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Defaults <- YAML file at ``path`` <- ``overrides``; validated."""
    return config_from_dict(read_values(path, overrides))
