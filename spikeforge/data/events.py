"""Raw events as a public call: each sample's events in time order, with its label.

Frames are built from these events; the event-driven simulator
(:mod:`spikeforge.deploy`) consumes them directly. Every event dataset
registers a raw-event builder here beside its frame builder in
:mod:`spikeforge.data.registry`, so ``get_raw_events(name, cfg, split)`` works
for each of them::

    from spikeforge.data import get_raw_events
    from spikeforge.train.config import DataConfig

    ds = get_raw_events("nmnist-sim", DataConfig(name="nmnist-sim"), "test")
    events, label = ds[0]          # structured array, fields t, x, y, p
    ds.sensor_size                 # (width, height, polarities)

Event layouts (numpy structured dtypes, one row per event, sorted by ``t``):

- vision (:data:`VISION_EVENT_DTYPE`): ``t`` int64 microseconds from the
  recording's start (or the file's own clock; each dataset says which),
  ``x`` and ``y`` pixel coordinates, ``p`` polarity in ``{0, 1}``;
- audio (:data:`AUDIO_EVENT_DTYPE`): ``t`` int64 microseconds, ``x`` the
  channel (cochlea unit), ``p`` always 0 (SHD, SSC).

Every event lies on ``sensor_size``: ``0 <= x < width``, ``0 <= y < height``,
``0 <= p < polarities``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from torch.utils.data import Dataset

#: One event of a vision sensor: time (microseconds), pixel, polarity.
VISION_EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])
#: One event of an audio sensor: time (microseconds), channel (in ``x``), polarity 0.
AUDIO_EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<i2"), ("p", "i1")])


class EventDataset(Dataset):
    """Base of the raw-event datasets: ``ds[i] -> (events, label)``.

    ``events`` is a structured array of :data:`VISION_EVENT_DTYPE` (or
    :data:`AUDIO_EVENT_DTYPE`) sorted by ``t``; ``label`` an ``int``.
    ``sensor_size`` is ``(width, height, polarities)`` (audio: ``(channels, 1, 1)``);
    ``num_classes`` the number of labels. Subclasses implement ``__len__`` and
    ``__getitem__``.
    """

    sensor_size: tuple[int, int, int]
    num_classes: int

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:  # pragma: no cover - abstract
        raise NotImplementedError


RAW_EVENTS: dict[str, Callable[[Any, str], EventDataset]] = {}
SPLITS = ("train", "test", "valid")


def register_raw_events(name: str):
    """Decorator registering ``fn(cfg, split) -> EventDataset`` for dataset ``name``."""

    def wrap(fn):
        if name in RAW_EVENTS:
            raise ValueError(f"raw events of {name!r} registered twice")
        RAW_EVENTS[name] = fn
        return fn

    return wrap


def get_raw_events(name: str, cfg, split: str = "test") -> EventDataset:
    """The raw events of split ``split`` (``train``, ``test``; ``valid`` where the
    dataset has one) of the event dataset ``name``, read with data config ``cfg``
    (its ``root``, ``download`` and ``skip_corrupt`` apply)."""
    if name not in RAW_EVENTS:
        raise ValueError(
            f"dataset {name!r} has no raw events (it is not an event dataset); "
            f"event datasets: {', '.join(sorted(RAW_EVENTS)) or 'none registered'}"
        )
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return RAW_EVENTS[name](cfg, split)


__all__ = [
    "AUDIO_EVENT_DTYPE",
    "RAW_EVENTS",
    "VISION_EVENT_DTYPE",
    "EventDataset",
    "get_raw_events",
    "register_raw_events",
]
