"""Config checks: every value of its type and in its range, every name in its registry.

The per-key checks (:func:`positive`, :func:`bounded`, :func:`choice`, :func:`coerce`
to the annotated type, :func:`build` of a section from a dict, :func:`neuron_params`)
are what the sections of :mod:`spikeforge.train.config` call; each raises
:class:`~spikeforge.errors.ConfigError` naming the key (e.g. ``data.time_steps``).

:meth:`spikeforge.train.config.RunConfig.validate` calls :func:`check_registries`
after the per-key bounds, so ``spikeforge config`` rejects every name that
``spikeforge train`` would fail on later: the dataset, model, neuron, surrogate,
loss and augmentation names are looked up in the dicts their packages register
into (``DATASETS``, ``MODELS``, ``NEURONS``, ``SURROGATES``, ``LOSSES``, the
augmentation parser), never in a copy of their names; ``device=cuda`` without a
CUDA device and an explicit fused backend that cannot run here are errors now,
not at the first batch.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from spikeforge.errors import ConfigError


def positive(value: int, key: str) -> None:
    """Raise naming ``key`` unless ``value >= 1``."""
    if value < 1:
        raise ConfigError(f"{key} must be >= 1, got {value}")


def bounded(
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


def choice(value: str, choices: tuple[str, ...], key: str) -> None:
    """Raise naming ``key`` and the choices unless ``value`` is one of them."""
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {value!r}")


def coerce(value: Any, tp: Any, key: str) -> Any:
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
                return coerce(value, a, key)
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
        return [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping of keys, got {value!r}")
        return build(tp, value, key)
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


def build(cls, values: dict, prefix: str = ""):
    """The dataclass ``cls`` from ``values``: every key known, every value of its
    annotated type (nested sections built alike); an error names ``prefix.key``."""
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
        kwargs[k] = coerce(v, hints[k], f"{prefix}.{k}" if prefix else k)
    return cls(**kwargs)


def neuron_params(model, key: str) -> dict:
    """``model.neuron_params`` of a :class:`~spikeforge.train.config.ModelConfig`
    checked against the registered type's constructor: known names, values of the
    annotated types, the type's own defaults filled in, and the type's own range checks
    (by building one neuron on the reference backend)."""
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
        out[name] = coerce(value, types[name], f"{key}.{name}")
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


class UnavailableError(ConfigError):
    """A config this installation cannot run (no CUDA, a fused backend that cannot run
    here); the config itself may be fine elsewhere."""


def _lookup(value: str, registry, key: str, what: str) -> None:
    if value not in registry:
        names = ", ".join(sorted(registry))
        raise ConfigError(f"{key} must be one of {names} (the registered {what}); got {value!r}")


def resolved_device(name: str):
    """``torch.device`` for the config's ``device`` (``auto``: CUDA when torch sees it)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def check_device(name: str) -> None:
    """Raise :class:`ConfigError` if ``device`` names a device torch cannot use here."""
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        raise UnavailableError(
            f"device is 'cuda' but torch sees no CUDA device (torch {torch.__version__}, "
            f"{build}); use device=cpu, or device=auto to take CUDA when there is one"
        )


def check_backend(backend: str, device_name: str) -> None:
    """Raise :class:`ConfigError` if ``model.backend`` is unknown or cannot run on the
    config's device (e.g. ``triton`` without Triton or without CUDA)."""
    from spikeforge.ops import dispatch

    choices = ("auto", "reference", *dispatch.BACKENDS)
    if backend not in choices:
        raise ConfigError(f"model.backend must be one of {', '.join(choices)}; got {backend!r}")
    if backend in dispatch.BACKENDS:
        reason = dispatch.unavailable_reason(backend, resolved_device(device_name))
        if reason is not None:
            raise UnavailableError(
                f"model.backend={backend} cannot run here: {reason}; "
                "use model.backend=auto (the fastest that runs) or reference"
            )


def check_augment(entries) -> None:
    """Parse every ``data.augment`` entry now; a bad one is named with its index."""
    if not entries:
        return
    from spikeforge.data.augment import AUGMENTATIONS, parse_augment

    for i, entry in enumerate(entries):
        try:
            parse_augment(entry)
        except ValueError as e:
            raise ConfigError(
                f"data.augment[{i}]: {e}" if "valid:" in str(e)
                else f"data.augment[{i}]: {e} (entries: {', '.join(AUGMENTATIONS)})"
            ) from None


def check_registries(cfg) -> None:
    """Check every name in ``cfg`` (a :class:`~spikeforge.train.config.RunConfig`)
    against its registry and the installation; raise :class:`ConfigError` naming the
    first bad key and what would be accepted."""
    import spikeforge.data  # noqa: F401  (registers the datasets)
    from spikeforge.data.registry import DATASETS
    from spikeforge.functional.loss import LOSSES
    from spikeforge.functional.surrogate import SURROGATES
    from spikeforge.models import MODELS
    from spikeforge.neurons import NEURONS

    _lookup(cfg.data.name, DATASETS, "data.name", "datasets; spikeforge datasets lists them")
    check_augment(cfg.data.augment)
    _lookup(cfg.model.name, MODELS, "model.name", "models")
    _lookup(cfg.model.neuron, NEURONS, "model.neuron", "neurons")
    _lookup(cfg.model.surrogate, SURROGATES, "model.surrogate", "surrogates")
    _lookup(cfg.loss.name, LOSSES, "loss.name", "losses")
    check_device(cfg.device)
    check_backend(cfg.model.backend, cfg.device)
