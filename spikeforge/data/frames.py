"""Event streams to dense frames, fast; event denoising / downsampling; a frame cache.

Events are Tonic's structured arrays with fields ``t, x, y, p`` (audio sets such
as SHD have no ``y``), sorted by ``t``. ``sensor_size`` is Tonic's ``(W, H, P)``.

:func:`events_to_frames` returns float32 ``[T, P, H, W]`` (``H = 1`` for audio)
with the slicing semantics of :func:`tonic.functional.to_frame_numpy` /
:class:`tonic.transforms.ToFrame` in each mode -- the same windows, the same
counts -- but computed with one :func:`numpy.bincount` over a flat
``(segment, p, y, x)`` index instead of one ``np.add.at`` per frame.

:class:`FrameCache` stores each converted sample as ``.npy`` on disk, keyed by a
hash of the transform parameters and dataset identity plus the sample index;
:class:`FramesDataset` wraps any Tonic-like ``(events, label)`` dataset into
``(float32 tensor [T, P, H, W], int label)`` through that cache.

Nothing here imports Tonic: this module works on plain numpy arrays.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from spikeforge.data.events import CorruptSampleError, SkippingView
from spikeforge.io import atomic_write

log = logging.getLogger(__name__)

__all__ = [
    "CorruptSampleError",
    "FrameCache",
    "FrameTransform",
    "FramesDataset",
    "denoise",
    "downsample",
    "events_to_frames",
    "frame_windows",
]


# --------------------------------------------------------------------------- windows


def frame_windows(
    t: np.ndarray,
    n_time_bins: int | None = None,
    n_event_bins: int | None = None,
    time_window: float | None = None,
    event_count: int | None = None,
    overlap: float = 0.0,
    include_incomplete: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Event index ranges ``(starts, ends)`` (end exclusive, clipped to ``len(t)``)
    of each frame, exactly as Tonic's slicers (``tonic.slicers.SliceByTimeBins``,
    ``SliceByEventBins``, ``SliceByTime``, ``SliceByEventCount``) compute them for
    timestamps ``t`` sorted ascending and non-empty. Exactly one mode is set.

    - ``n_time_bins``: window ``(t[-1] - t[0]) // n * (1 + overlap)`` (floor
      division, as Tonic), stride ``window * (1 - overlap)``, from ``t[0]``; the
      window ``[s, e)`` is found with ``searchsorted`` (events at exactly
      ``t[0] + n * window`` and after fall outside every bin, as in Tonic).
    - ``n_event_bins``: ``int(N // n * (1 + overlap))`` events per frame, stride
      ``int(count * (1 - overlap))``.
    - ``time_window``: fixed window, stride ``time_window - overlap``, from
      ``t[0]``; ``include_incomplete`` adds the overhanging last window.
    - ``event_count``: fixed count, stride ``event_count - overlap``.
    """
    modes = [n_time_bins, n_event_bins, time_window, event_count]
    if sum(m is not None for m in modes) != 1:
        raise ValueError("set exactly one of n_time_bins, n_event_bins, time_window, event_count")
    n = len(t)
    if n == 0:
        raise ValueError("frame_windows needs at least one event")
    if n_time_bins is not None:
        if n_time_bins < 1:
            raise ValueError(f"n_time_bins must be >= 1, got {n_time_bins}")
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap for n_time_bins must be in [0, 1), got {overlap}")
        window = (t[-1] - t[0]) // n_time_bins * (1 + overlap)
        stride = window * (1 - overlap)
        start_t = np.arange(n_time_bins) * stride + t[0]
        starts = np.searchsorted(t, start_t)
        ends = np.searchsorted(t, start_t + window)
    elif n_event_bins is not None:
        if n_event_bins < 1:
            raise ValueError(f"n_event_bins must be >= 1, got {n_event_bins}")
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap for n_event_bins must be in [0, 1), got {overlap}")
        count = int(n // n_event_bins * (1 + overlap))
        stride = int(count * (1 - overlap))
        starts = np.arange(n_event_bins) * stride
        ends = starts + count
    elif time_window is not None:
        stride = time_window - overlap
        if not stride > 0:
            raise ValueError(f"time_window - overlap must be > 0, got {time_window} - {overlap}")
        duration = t[-1] - t[0]
        rounding = np.ceil if include_incomplete else np.floor
        n_slices = max(int(rounding((duration - time_window) / stride) + 1), 1)
        start_t = np.arange(n_slices) * stride + t[0]
        starts = np.searchsorted(t, start_t)
        ends = np.searchsorted(t, start_t + time_window)
    else:
        if event_count < 1:
            raise ValueError(f"event_count must be >= 1, got {event_count}")
        count = min(event_count, n)
        stride = event_count - overlap
        if not stride > 0:
            raise ValueError(f"event_count - overlap must be > 0, got {event_count} - {overlap}")
        rounding = np.ceil if include_incomplete else np.floor
        n_slices = int(rounding((n - count) / stride) + 1)
        starts = (np.arange(n_slices) * stride).astype(np.int64)
        ends = starts + count
    starts = np.minimum(np.asarray(starts, dtype=np.int64), n)
    ends = np.minimum(np.asarray(ends, dtype=np.int64), n)
    return starts, np.maximum(ends, starts)


# --------------------------------------------------------------------------- frames


def _infer_sensor_size(events: np.ndarray) -> tuple[int, int, int]:
    """Tonic's rule when no sensor size is given: max coordinate + 1, number of
    distinct polarities."""
    w = int(events["x"].max()) + 1
    h = int(events["y"].max()) + 1 if "y" in events.dtype.names else 1
    return (w, h, len(np.unique(events["p"])))


def _check_range(values: np.ndarray, size: int, name: str) -> None:
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi >= size:
        raise ValueError(
            f"event field {name!r} has values in [{lo}, {hi}], outside the sensor's [0, {size - 1}]"
        )


def _pixel_index(events: np.ndarray, w: int, h: int, p: int) -> np.ndarray:
    """Flat ``(p * H + y) * W + x`` per event as intp, after range checks.
    Written into one preallocated array (fresh temporaries of N * 8 bytes each
    cost more in page faults than the arithmetic)."""
    names = events.dtype.names
    n = len(events)
    x = events["x"]
    _check_range(x, w, "x")
    idx = np.empty(n, dtype=np.intp)
    if "y" in names:
        y = events["y"]
        _check_range(y, h, "y")
        np.multiply(y, w, out=idx, casting="unsafe")
        np.add(idx, x, out=idx, casting="unsafe")
    else:
        idx[:] = x
    pol = events["p"]
    if p > 1:
        lo, hi = int(pol.min()), int(pol.max())
        if lo < -p or hi >= p:
            raise ValueError(
                f"event field 'p' has values in [{lo}, {hi}], but the sensor has {p} polarities"
            )
        plane = w * h
        if lo >= 0 and hi <= 1:  # the usual 0/1 (or bool) polarity: no temporary
            np.add(idx, plane, out=idx, where=pol.astype(bool, copy=False))
        else:  # Tonic indexes with p, so -1 is the last channel
            q = pol.astype(np.intp)
            q[q < 0] += p
            q *= plane
            idx += q
    elif n and pol.min() != pol.max():
        raise ValueError("Single polarity sensor, but events contain both polarities.")
    return idx


def _accumulate(pix: np.ndarray, starts: np.ndarray, ends: np.ndarray, n_pix: int) -> np.ndarray:
    """Frame ``k`` = histogram of ``pix[starts[k]:ends[k]]`` over ``n_pix`` bins,
    float32 ``[K, n_pix]``, accumulated straight into the output with
    ``np.add.at`` (numpy >= 1.25 runs a scalar float32 add over a 1-D intp
    index as a tight loop). Contiguous windows over few events, or many short
    windows: one call over the flat ``k * n_pix + pix`` index (call overhead
    dominates there). Otherwise one call per window, which needs no
    event-sized temporary (their page faults cost more than the adds) and
    counts an event in every overlapping window that holds it. ``pix`` may be
    modified."""
    k = len(starts)
    out = np.zeros((k, n_pix), dtype=np.float32)
    if k == 0 or int(ends.max()) == 0:
        return out
    one = np.float32(1)
    lo, hi = int(starts[0]), int(ends[-1])
    if (hi - lo <= 16384 or hi - lo < 256 * k) and np.array_equal(starts[1:], ends[:-1]):
        idx = pix[lo:hi]
        if k > 1:
            idx += np.repeat(np.arange(k, dtype=np.intp) * n_pix, ends - starts)
        np.add.at(out.reshape(-1), idx, one)
        return out
    for i, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
        if e > s:
            np.add.at(out[i], pix[s:e], one)
    return out


def events_to_frames(
    events: np.ndarray,
    sensor_size: Sequence[int] | None,
    n_time_bins: int | None = None,
    n_event_bins: int | None = None,
    time_window: float | None = None,
    overlap: float = 0.0,
    include_incomplete: bool = False,
    event_count: int | None = None,
) -> np.ndarray:
    """Count events per ``(frame, polarity, y, x)``: float32 ``[T, P, H, W]``.

    Same frames as ``tonic.functional.to_frame_numpy(events, sensor_size, ...)``
    (Tonic returns int16 ``[T, P, H, W]``, or ``[T, P, W]`` without a ``y``
    field; here audio gets ``H = 1``). Set exactly one of ``n_time_bins``
    (``T`` bins over the recording's time span), ``n_event_bins`` (``T`` bins
    of equal event count), ``time_window`` or ``event_count`` (fixed-size
    windows; ``T`` depends on the recording); ``overlap`` and
    ``include_incomplete`` mean what they mean in Tonic (see
    :func:`frame_windows`). ``sensor_size`` is ``(W, H, P)``; ``None`` infers
    it from the events as Tonic does.

    Differences from Tonic, none of which change a result Tonic gets right:
    the input is never modified (Tonic zeroes ``p`` in place for ``P = 1``);
    counts do not wrap at 32767 (Tonic accumulates in int16); unsorted
    timestamps are stably sorted first (Tonic's slicers assume sorted input);
    no events give all-zero frames (``T`` bins, or one frame for the window
    modes, like ``ToFrame``); coordinates outside the sensor raise
    ``ValueError`` naming the field.
    """
    names = events.dtype.names or ()
    if "x" not in names or "t" not in names or "p" not in names:
        raise ValueError(f"events need fields t, x, p (and y for cameras); got {names}")
    if sensor_size is None or len(sensor_size) == 0:
        sensor_size = _infer_sensor_size(events)
    w, h, p = (int(s) for s in sensor_size)
    if "y" not in names and h != 1:
        raise ValueError(f"events without a 'y' field need sensor height 1, got {sensor_size}")
    if len(events) == 0:
        frame_windows(
            np.zeros(1),
            n_time_bins,
            n_event_bins,
            time_window,
            event_count,
            overlap,
            include_incomplete,
        )  # validates the arguments
        n = n_time_bins or n_event_bins or 1
        return np.zeros((n, p, h, w), dtype=np.float32)
    t = events["t"]
    if len(t) > 1 and not np.all(t[1:] >= t[:-1]):
        events = events[np.argsort(t, kind="stable")]
        t = events["t"]
    starts, ends = frame_windows(
        t, n_time_bins, n_event_bins, time_window, event_count, overlap, include_incomplete
    )
    pix = _pixel_index(events, w, h, p)
    return _accumulate(pix, starts, ends, p * h * w).reshape(len(starts), p, h, w)


# --------------------------------------------------------------------------- event filters


def denoise(events: np.ndarray, filter_time: float) -> np.ndarray:
    """Keep an event only if one of its 4 pixel neighbours (x +- 1 or y +- 1) had
    an earlier event (earlier in the array) less than ``filter_time`` before it
    (``t - t_neighbour < filter_time``); drop the rest.

    Tonic's ``tonic.functional.denoise_numpy`` states this rule but is a Python
    loop over events (seconds per DVS recording), so this is our own vectorised
    version: one sort of ``(pixel, index)`` keys and a ``searchsorted`` per
    neighbour direction finds each neighbour's last previous event. It equals
    Tonic's output except for one Tonic artefact: Tonic starts every pixel's
    memory at ``filter_time``, so it keeps (almost) every event with
    ``t < filter_time`` whatever its neighbours; here those are judged by the
    rule like any other event.
    """
    names = events.dtype.names or ()
    if "x" not in names or "t" not in names:
        raise ValueError(f"denoise needs fields t, x (and y); got {names}")
    n = len(events)
    if n == 0:
        return events.copy()
    x = events["x"].astype(np.int64)
    has_y = "y" in names
    y = events["y"].astype(np.int64) if has_y else np.zeros(n, dtype=np.int64)
    t = events["t"]
    width = int(x.max()) + 1
    height = int(y.max()) + 1
    pixel = x * height + y
    order = np.arange(n, dtype=np.int64)
    keys = np.sort(pixel * n + order)
    keep = np.zeros(n, dtype=bool)
    shifts = [(-1, 0), (1, 0)] + ([(0, -1), (0, 1)] if has_y else [])
    for dx, dy in shifts:
        nx, ny = x + dx, y + dy
        valid = (nx >= 0) & (nx < width) & (ny >= 0) & (ny < height)
        q = nx * height + ny
        pos = np.searchsorted(keys, q * n + order) - 1  # last key < (q, i)
        ok = valid & (pos >= 0)
        prev = keys[np.maximum(pos, 0)]
        ok &= prev // n == q
        j = prev % n
        ok &= t[j] > t - filter_time
        keep |= ok
    return events[keep]


def downsample(
    events: np.ndarray, sensor_size: Sequence[int], factor: float | tuple[float, float]
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Scale pixel coordinates by ``factor`` (e.g. 0.25 shrinks 128x128 to 32x32):
    ``x' = int(x * fx)``, ``y' = int(y * fy)`` (truncation, which is floor for
    pixel coordinates), timestamps and polarities unchanged, no event dropped.

    The same arithmetic as ``tonic.transforms.Downsample(spatial_factor=factor)``
    (already vectorised; not imported so this runs without Tonic). Returns the
    new events (a copy) and the new sensor size
    ``(floor((W - 1) * fx) + 1, floor((H - 1) * fy) + 1, P)``, which holds every
    scaled coordinate.
    """
    fx, fy = (factor, factor) if not isinstance(factor, (tuple, list)) else factor
    if not (0 < fx <= 1 and 0 < fy <= 1):
        raise ValueError(f"downsample factor must be in (0, 1], got {factor}")
    w, h, p = (int(s) for s in sensor_size)
    out = events.copy()
    names = events.dtype.names or ()
    if "x" in names:
        out["x"] = events["x"] * fx
    if "y" in names:
        out["y"] = events["y"] * fy
    new_w = int(np.floor((w - 1) * fx)) + 1
    new_h = int(np.floor((h - 1) * fy)) + 1 if "y" in names else h
    return out, (new_w, new_h, p)


# --------------------------------------------------------------------------- transform


@dataclass(frozen=True)
class FrameTransform:
    """Parameters of events -> frames: optional :func:`denoise` (``denoise_time``),
    optional :func:`downsample` (``spatial_factor`` < 1), then
    :func:`events_to_frames` on ``sensor_size`` (the sensor's ``(W, H, P)``
    before downsampling) in one mode. Calling it maps events to float32
    ``[T, P, H', W']``; ``frame_shape`` is ``(P, H', W')``."""

    sensor_size: tuple[int, int, int]
    n_time_bins: int | None = None
    n_event_bins: int | None = None
    time_window: float | None = None
    event_count: int | None = None
    overlap: float = 0.0
    include_incomplete: bool = False
    spatial_factor: float = 1.0
    denoise_time: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "sensor_size", tuple(int(s) for s in self.sensor_size))
        modes = [self.n_time_bins, self.n_event_bins, self.time_window, self.event_count]
        if sum(m is not None for m in modes) != 1:
            raise ValueError(
                "FrameTransform: set exactly one of n_time_bins, n_event_bins, "
                "time_window, event_count"
            )

    @property
    def out_sensor_size(self) -> tuple[int, int, int]:
        """``(W', H', P)`` after downsampling."""
        if self.spatial_factor == 1:
            return self.sensor_size
        w, h, p = self.sensor_size
        fy = self.spatial_factor if h > 1 else 1.0
        return (
            int(np.floor((w - 1) * self.spatial_factor)) + 1,
            int(np.floor((h - 1) * fy)) + 1,
            p,
        )

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """``(P, H', W')`` of one frame."""
        w, h, p = self.out_sensor_size
        return (p, h, w)

    def params(self) -> dict[str, Any]:
        """The parameters as a JSON-able dict (the cache key's transform part)."""
        d = asdict(self)
        d["sensor_size"] = list(self.sensor_size)
        return d

    def __call__(self, events: np.ndarray) -> np.ndarray:
        sensor = self.sensor_size
        if self.denoise_time is not None:
            events = denoise(events, self.denoise_time)
        if self.spatial_factor != 1:
            factor = self.spatial_factor if sensor[1] > 1 else (self.spatial_factor, 1.0)
            events, sensor = downsample(events, sensor, factor)
        return events_to_frames(
            events,
            sensor,
            n_time_bins=self.n_time_bins,
            n_event_bins=self.n_event_bins,
            time_window=self.time_window,
            event_count=self.event_count,
            overlap=self.overlap,
            include_incomplete=self.include_incomplete,
        )


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
