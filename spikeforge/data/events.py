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

- vision (:data:`VISION_EVENT_DTYPE`): ``t`` int64 microseconds on the
  clock of the file, ``x`` and ``y`` pixel coordinates as the file holds
  them, ``p`` polarity in ``{0, 1}`` (1 = ON);
- audio (:data:`AUDIO_EVENT_DTYPE`): ``t`` int64 microseconds, ``x`` the
  channel (cochlea unit), ``p`` always 0 (SHD, SSC).

Time unit and origin per dataset (all microseconds; docs/data.md has the table):

- ``nmnist``, ``ncaltech101`` (ATIS ``.bin``): from the recording's start,
  with Tonic's timestamp-overflow rule (a record with ``y == 240`` adds 2**13);
- ``dvs_gesture``: ``.npy`` release: ``round(1000 * column 3)`` (the column
  is milliseconds); AEDAT 3.1 release: the recording's own clock
  (``tsOverflow << 31 | timestamp``), the gesture being the events with
  ``start <= t < end`` of its ``*_labels.csv`` row;
- ``cifar10dvs`` (AEDAT4): the file's own clock (microseconds since the Unix
  epoch in the released files);
- ``shd``, ``ssc``: ``round(1e6 * seconds)`` from the recording's start;
- ``nmnist-sim``: from the start of the first saccade.

Every event lies on ``sensor_size``: ``0 <= x < width``, ``0 <= y < height``,
``0 <= p < polarities``; a file whose events do not is a
:class:`CorruptSampleError` naming it and quoting the file's own values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

#: One event of a vision sensor: time (microseconds), pixel, polarity.
VISION_EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])
#: One event of an audio sensor: time (microseconds), channel (in ``x``), polarity 0.
AUDIO_EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<i2"), ("p", "i1")])

log = logging.getLogger(__name__)


class CorruptSampleError(RuntimeError):
    """A sample's file is short, cut, inconsistent with what it declares, or
    holds invalid events; ``path`` names it (with the sample inside it, where
    one file holds several), ``reason`` says what is wrong."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"corrupt or truncated data in {path}: {reason}")
        self.path = path
        self.reason = reason


class SkippingView(Dataset):
    """A split over the samples ``indices`` of a larger set, loading sample
    ``i`` with ``self._load(i)`` (subclasses define it).

    A :class:`CorruptSampleError` propagates, unless ``skip_corrupt``: then the
    sample is logged, counted once (in ``skipped`` and, when a dict is given,
    in ``report["skipped"]`` / ``report["skipped_files"]``, e.g. a bundle's
    ``info``, which also counts the files the build-time check skipped) and
    the next good sample of the split stands in for it. Every message quotes
    the count of ``report`` when there is one, so it equals
    ``info["skipped"]``."""

    def __init__(self, indices: Sequence[int], skip_corrupt: bool = False,
                 report: dict | None = None):
        self.indices = [int(i) for i in indices]
        self.skip_corrupt = bool(skip_corrupt)
        self.report = report
        self.skipped: list[str] = []
        self._bad: set[int] = set()

    def _load(self, i: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.indices)

    def skipped_count(self) -> int:
        """Samples skipped so far: ``report["skipped"]`` when reporting, else this view's."""
        if self.report is not None:
            return int(self.report.get("skipped", 0))
        return len(self.skipped)

    def __getitem__(self, k: int):
        n = len(self.indices)
        if not -n <= k < n:
            raise IndexError(f"index {k} out of range for a split of {n} samples")
        k %= n
        for step in range(n):
            i = self.indices[(k + step) % n]
            if i in self._bad:
                continue
            try:
                return self._load(i)
            except CorruptSampleError as e:
                if not self.skip_corrupt:
                    raise
                self._bad.add(i)
                self.skipped.append(e.path)
                if self.report is not None:
                    self.report["skipped"] = self.report.get("skipped", 0) + 1
                    self.report.setdefault("skipped_files", []).append(e.path)
                log.warning("skipping %s (%d skipped so far)", e, self.skipped_count())
        raise CorruptSampleError(
            f"all {n} samples of this split",
            f"every one is corrupt ({self.skipped_count()} skipped in all)",
        )


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
    "CorruptSampleError",
    "SkippingView",
    "RAW_EVENTS",
    "VISION_EVENT_DTYPE",
    "EventDataset",
    "get_raw_events",
    "register_raw_events",
]
