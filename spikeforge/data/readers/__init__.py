"""One reader per container format, each validating what it reads against what
the file declares and returning events in the layouts of
:mod:`spikeforge.data.events`.

Every reader is ``read(path, sensor_size, ...) -> events`` and raises
:class:`~spikeforge.data.events.CorruptSampleError` naming the file for any
file that is short, cut, inconsistent or holds events off the sensor; most
also have a cheap ``check(path) -> reason | None`` run when a dataset is built.

- :mod:`.atis_bin`: ATIS ``.bin`` (N-MNIST, N-Caltech101);
- :mod:`.npy_events`: ``[N, 4]`` ``.npy`` arrays (Tonic's DVS Gesture release);
- :mod:`.aedat4`: iniVation AEDAT 4.0 (CIFAR10-DVS), uncompressed, LZ4, ZSTD;
- :mod:`.aedat31`: iniVation AEDAT 3.1 (IBM's DVS Gesture release);
- :mod:`.hdf5_spikes`: the Heidelberg HDF5 spike files (SHD, SSC).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spikeforge.data.events import AUDIO_EVENT_DTYPE, VISION_EVENT_DTYPE, CorruptSampleError


def vision_events(path: str, t, x, y, p, sensor_size: Sequence[int]) -> np.ndarray:
    """Events of :data:`VISION_EVENT_DTYPE` in time order (stable sort when the
    file's are not), after checking the file's own values against the sensor
    ``(W, H, P)``: a value off it is a :class:`CorruptSampleError` quoting it."""
    w, h, npol = (int(s) for s in sensor_size)
    t, x, y, p = (np.asarray(a) for a in (t, x, y, p))
    for name, v, size in (("x", x, w), ("y", y, h), ("p", p, npol)):
        if v.size and (int(v.min()) < 0 or int(v.max()) >= size):
            bad = v[(v < 0) | (v >= size)]
            raise CorruptSampleError(
                path,
                f"{bad.size} events with {name} outside the sensor's [0, {size - 1}] "
                f"(the file holds {name} = {int(bad[0])}; values in [{int(v.min())}, "
                f"{int(v.max())}])",
            )
    ev = np.empty(len(t), dtype=VISION_EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["p"] = t, x, y, p
    return time_ordered(ev)


def audio_events(path: str, t, channel, channels: int) -> np.ndarray:
    """Events of :data:`AUDIO_EVENT_DTYPE` (``p = 0``) in time order, after
    checking ``0 <= channel < channels``."""
    channel = np.asarray(channel)
    if channel.size and (int(channel.min()) < 0 or int(channel.max()) >= channels):
        raise CorruptSampleError(
            path,
            f"channels in [{int(channel.min())}, {int(channel.max())}], outside the "
            f"sensor's [0, {channels - 1}]",
        )
    ev = np.zeros(len(channel), dtype=AUDIO_EVENT_DTYPE)
    ev["t"], ev["x"] = t, channel
    return time_ordered(ev)


def time_ordered(ev: np.ndarray) -> np.ndarray:
    """``ev`` stably sorted by ``t`` (returned as is when already sorted)."""
    t = ev["t"]
    if len(t) > 1 and not np.all(t[1:] >= t[:-1]):
        ev = ev[np.argsort(t, kind="stable")]
    return ev


__all__ = ["audio_events", "time_ordered", "vision_events"]
