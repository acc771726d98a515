"""Config checks that read the registries and the installation, at config time.

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

from spikeforge.train.config import ConfigError


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
