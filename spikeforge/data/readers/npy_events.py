"""``[N, 4]`` event arrays saved with :func:`numpy.save`: Tonic's preprocessed
DVS Gesture release (``ibmGesture{Train,Test}/user<NN>_<lighting>/<label>.npy``,
columns ``x, y, p, t`` with ``t`` in milliseconds, read as Tonic's
``DVSGesture`` does: ``t_us = 1000 * t``; here rounded to the nearest
microsecond where Tonic truncates, which turns 1233.9999 into 1233).

The ``.npy`` header declares shape and dtype, so the file size is known: a
cut file, a header that is not ``[N, 4]`` of a plain numeric dtype, values
that are not finite integers, polarities other than 0/1 and pixels off the
sensor are :class:`CorruptSampleError` naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from spikeforge.data.events import CorruptSampleError
from spikeforge.data.readers import vision_events


def _header(path: str) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unknown .npy format version {version}")
        return shape, dtype, fortran, f.tell()


def check(path: str) -> str | None:
    """Cheap check: the header reads, declares an ``[N, 4]`` numeric array, and
    the file holds exactly the bytes it declares."""
    size = os.stat(path).st_size
    try:
        shape, dtype, _, offset = _header(path)
    except Exception as e:  # noqa: BLE001 - any unreadable header is this file's fault
        return f"not a readable .npy file ({type(e).__name__}: {e})"
    if len(shape) != 2 or shape[1] != 4:
        return f"expected an [N, 4] event array (x, y, p, t), the header says shape {shape}"
    if dtype.kind not in "iuf" or dtype.hasobject:
        return f"expected a numeric event array, the header says dtype {dtype}"
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    if size != expected:
        return f"{size} bytes but its header declares {expected} (truncated?)"
    return None


def read(path: str, sensor_size: Sequence[int]) -> np.ndarray:
    """The events of ``path``; see the module docstring for the checks."""
    reason = check(path)
    if reason:
        raise CorruptSampleError(path, reason)
    arr = np.load(path, allow_pickle=False).astype(np.float64, copy=False)
    x, y, p, t_ms = arr.T
    if not np.isfinite(arr).all():
        raise CorruptSampleError(path, "holds values that are not finite (NaN or inf)")
    for name, v in (("x", x), ("y", y), ("p", p)):
        if not np.array_equal(v, np.floor(v)):
            bad = v[v != np.floor(v)][0]
            raise CorruptSampleError(path, f"{name} must be integers, the file holds {bad}")
    if p.size and not np.isin(p, (0, 1)).all():
        bad = [int(v) if abs(v) < 2**62 else float(v) for v in np.unique(p[~np.isin(p, (0, 1))])]
        raise CorruptSampleError(path, f"polarity must be 0 or 1, the file holds {bad[:5]}")
    if t_ms.size and (t_ms.min() < 0 or t_ms.max() > 2**52 / 1000):
        raise CorruptSampleError(
            path, f"timestamps in [{t_ms.min()}, {t_ms.max()}] ms are out of range"
        )
    t = np.rint(t_ms * 1000.0)
    return vision_events(path, t.astype(np.int64), x, y, p, sensor_size)
