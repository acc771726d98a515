"""The dataset registry: one name -> a builder returning a :class:`DatasetBundle`.

A builder is ``fn(cfg: DataConfig) -> DatasetBundle``. Static datasets yield
``(x [C, H, W] or [F], label)`` and are encoded over time by the training
engine (``temporal=False``); event datasets yield ``(x [T, C, H, W], label)``
already binned in time (``temporal=True``) and are transposed to time-first
``[T, B, ...]`` when batched. ``train_transform``, if set, augments each
training batch (batch-first, before the transpose).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import Dataset


@dataclass
class DatasetBundle:
    """Train and test splits plus what a model needs to know about them."""

    train: Dataset
    test: Dataset
    input_shape: tuple[int, ...]
    num_classes: int
    temporal: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    # Batch augmentation for training only: fn(x [B, ...], generator) -> x. The
    # engine seeds the generator from (seed, epoch) so resumed runs match.
    train_transform: Callable[..., Any] | None = None
    # A validation split, where the dataset has one (SSC); the engine does not use it.
    valid: Dataset | None = None


DATASETS: dict[str, Callable[..., DatasetBundle]] = {}
DESCRIPTIONS: dict[str, str] = {}


def register_dataset(name: str, description: str):
    """Decorator registering ``fn(cfg) -> DatasetBundle`` under ``name``."""

    def wrap(fn):
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} registered twice")
        DATASETS[name] = fn
        DESCRIPTIONS[name] = description
        return fn

    return wrap


def get_dataset(name: str, cfg) -> DatasetBundle:
    """Build the registered dataset ``name`` from the data config ``cfg``."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}")
    return DATASETS[name](cfg)
