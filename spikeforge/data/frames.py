"""Event streams to dense frames, fast; event denoising / downsampling.

Events are Tonic's structured arrays with fields ``t, x, y, p`` (audio sets such
as SHD have no ``y``), sorted by ``t``. ``sensor_size`` is Tonic's ``(W, H, P)``.

:func:`events_to_frames` returns float32 ``[T, P, H, W]`` (``H = 1`` for audio)
with the slicing semantics of :func:`tonic.functional.to_frame_numpy` /
:class:`tonic.transforms.ToFrame` in each mode -- the same windows, the same
counts -- but computed with one :func:`numpy.bincount` over a flat
``(segment, p, y, x)`` index instead of one ``np.add.at`` per frame.

:class:`FrameTransform` bundles one conversion's parameters; the on-disk frame cache
and the dataset that uses it are in :mod:`spikeforge.data.frame_cache`.

Nothing here imports Tonic: this module works on plain numpy arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from spikeforge.data.events import CorruptSampleError

log = logging.getLogger(__name__)

__all__ = [
    "CorruptSampleError",
    "FrameTransform",
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
