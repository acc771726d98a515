"""A directory cache of converted event samples, and the dataset that reads through it.

:class:`FrameCache` stores each converted sample as ``.npy`` on disk, keyed by a
hash of the transform parameters and dataset identity plus the sample index;
:class:`FramesDataset` wraps any Tonic-like ``(events, label)`` dataset into
``(float32 tensor [T, P, H, W], int label)`` through that cache, converting with a
:class:`~spikeforge.data.frames.FrameTransform`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from spikeforge.data.events import CorruptSampleError, SkippingView
from spikeforge.data.frames import FrameTransform
from spikeforge.io import atomic_write

log = logging.getLogger(__name__)

__all__ = ["FrameCache", "FramesDataset"]


# --------------------------------------------------------------------------- cache


def _smallest_dtype(frames: np.ndarray) -> np.dtype:
    """uint8 / uint16 when the (integer) counts fit exactly, else float32."""
    if frames.size == 0:
        return np.dtype(np.uint8)
    m = float(frames.max())
    if frames.min() >= 0 and np.array_equal(frames, np.floor(frames)):
        if m < 256:
            return np.dtype(np.uint8)
        if m < 65536:
            return np.dtype(np.uint16)
    return np.dtype(np.float32)


class FrameCache:
    """A directory of converted samples: ``<cache_dir>/<hash>/<index>.npy``.

    ``<hash>`` is the SHA-256 (first 16 hex digits) of ``key_params`` as sorted
    JSON -- put the dataset name, split, a fingerprint of its files and the
    transform parameters in it, so any change gives a fresh directory. Counts
    are stored in the smallest exact dtype (uint8 / uint16 / float32) and come
    back as float32. Writes are atomic (:func:`spikeforge.io.atomic_write`,
    without fsync: a lost entry is only rebuilt), so concurrent workers and
    killed runs never leave a half-written entry under the final name; an
    unreadable or wrong-shaped entry reads as a miss and is rewritten by the
    next ``save``.
    """

    def __init__(self, cache_dir: str | os.PathLike, key_params: Mapping[str, Any]):
        self.key_params = dict(key_params)
        blob = json.dumps(self.key_params, sort_keys=True, default=str)
        self.key = hashlib.sha256(blob.encode()).hexdigest()[:16]
        self.directory = os.path.join(os.fspath(cache_dir), self.key)
        os.makedirs(self.directory, exist_ok=True)
        meta = os.path.join(self.directory, "params.json")
        if not os.path.exists(meta):
            text = json.dumps(self.key_params, sort_keys=True, indent=1, default=str)
            atomic_write(meta, lambda f: f.write(text.encode()), fsync=False)
        self.rebuilt = 0  # corrupt entries found by load()

    def path(self, index: int) -> str:
        """File of sample ``index``."""
        return os.path.join(self.directory, f"{int(index):07d}.npy")

    def load(self, index: int, frame_shape: tuple[int, ...] | None = None) -> np.ndarray | None:
        """The cached float32 frames of ``index``, or ``None`` if absent or corrupt
        (unreadable, or not ``[T, *frame_shape]`` when given)."""
        path = self.path(index)
        if not os.path.exists(path):
            return None
        try:
            arr = np.load(path, allow_pickle=False)
            if frame_shape is not None and (
                arr.ndim != len(frame_shape) + 1 or tuple(arr.shape[1:]) != tuple(frame_shape)
            ):
                raise ValueError(f"shape {arr.shape}, expected [T, {frame_shape}]")
        except Exception as e:  # noqa: BLE001 - any unreadable entry is a miss
            log.warning("frame cache entry %s is corrupt (%s); rebuilding it", path, e)
            self.rebuilt += 1
            return None
        return arr.astype(np.float32, copy=False)

    def save(self, index: int, frames: np.ndarray) -> None:
        """Store ``frames`` for ``index`` (atomically)."""
        arr = frames.astype(_smallest_dtype(frames), copy=False)
        atomic_write(self.path(index), lambda f: np.save(f, arr, allow_pickle=False), fsync=False)


# --------------------------------------------------------------------------- dataset


class FramesDataset(SkippingView):
    """``(torch.float32 [T, P, H, W], int label)`` from a Tonic-like dataset of
    ``(events, label)``, converted by a :class:`FrameTransform` (or a dict of its
    parameters) and cached in ``cache`` (a :class:`FrameCache`, or ``None``).

    - Labels come from ``labels`` or the wrapped dataset's ``targets`` when it
      has them, so a cache hit reads no event file; otherwise the sample is
      read for its label.
    - ``flatten`` returns ``[T, P * H * W]`` (audio: ``[T, channels]``).
    - ``indices`` restricts to a subset of the wrapped dataset (e.g. a split);
      cache entries are keyed by the wrapped dataset's index.
    - ``source_name(i)`` names the file of wrapped sample ``i`` in errors
      (default: ``events_dataset.data[i]`` when it exists).
    - A sample whose reading raises, or whose events do not fit the sensor,
      raises :class:`CorruptSampleError` naming the file; with
      ``skip_corrupt`` it is logged, counted in ``skipped`` (and in
      ``report["skipped"]`` when a dict is given, e.g. ``bundle.info``), and
      the next good sample is returned in its place.
    - ``conversions`` counts samples converted (cache misses) in this process.
    """

    def __init__(
        self,
        events_dataset,
        transform_params: FrameTransform | Mapping[str, Any],
        cache: FrameCache | None = None,
        *,
        labels: Sequence[int] | None = None,
        indices: Sequence[int] | None = None,
        flatten: bool = False,
        skip_corrupt: bool = False,
        source_name: Callable[[int], str] | None = None,
        report: dict | None = None,
    ):
        super().__init__(
            range(len(events_dataset)) if indices is None else indices, skip_corrupt, report
        )
        self.events_dataset = events_dataset
        self.transform = (
            transform_params
            if isinstance(transform_params, FrameTransform)
            else FrameTransform(**dict(transform_params))
        )
        self.cache = cache
        if labels is None and hasattr(events_dataset, "targets"):
            targets = events_dataset.targets
            if len(targets) == len(events_dataset):
                labels = targets
        self.labels = None if labels is None else [int(v) for v in labels]
        self.flatten = flatten
        self._source_name = source_name
        self.conversions = 0

    def source(self, i: int) -> str:
        """Name (usually the path) of the wrapped sample ``i``."""
        if self._source_name is not None:
            return self._source_name(i)
        data = getattr(self.events_dataset, "data", None)
        if isinstance(data, Sequence) and len(data) == len(self.events_dataset):
            return str(data[i])
        return f"{type(self.events_dataset).__name__}[{i}]"

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one time step: ``(P, H, W)``, or ``(P * H * W,)`` when flattened."""
        shape = self.transform.frame_shape
        return (int(np.prod(shape)),) if self.flatten else shape

    def _convert(self, i: int) -> tuple[np.ndarray, Any]:
        try:
            events, label = self.events_dataset[i]
        except (CorruptSampleError, ImportError, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 - reported with the file's name
            raise CorruptSampleError(self.source(i), f"{type(e).__name__}: {e}") from e
        try:
            frames = self.transform(events)
        except ValueError as e:
            raise CorruptSampleError(self.source(i), str(e)) from e
        self.conversions += 1
        if self.cache is not None:
            self.cache.save(i, frames)
        return frames, label

    def _load(self, i: int) -> tuple[torch.Tensor, int]:
        frames = None
        if self.cache is not None and self.labels is not None:
            frames = self.cache.load(i, self.transform.frame_shape)
        if frames is not None:
            label = self.labels[i]
        else:
            frames, label = self._convert(i)
            label = int(label) if self.labels is None else self.labels[i]
        if self.flatten:
            frames = frames.reshape(frames.shape[0], -1)
        return torch.from_numpy(np.ascontiguousarray(frames)), label
