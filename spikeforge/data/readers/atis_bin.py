"""ATIS ``.bin`` files of N-MNIST and N-Caltech101 (Orchard et al., Front.
Neurosci. 2015).

Layout: 5-byte records, big-endian bit fields ``x`` (8 bits), ``y`` (8),
``p`` (1), ``t`` (23, microseconds). A record with ``y == 240`` is a
timestamp-overflow marker, not an event: every later event gains ``2**13``
microseconds (the rule of Orchard's reader and of Tonic's
``tonic.io.read_mnist_file``, which decodes the records here).

What the format lets a reader check: a file is a whole number of records (a
cut inside a record is an error; a cut exactly between two records leaves a
valid, shorter recording and cannot be told), and every event lies on the
dataset's sensor. 8-bit coordinates allow ``x, y <= 255``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np

from spikeforge.data.events import CorruptSampleError
from spikeforge.data.readers import vision_events

RECORD = 5
#: Tonic's decoding dtype; converted to VISION_EVENT_DTYPE after the checks.
_TONIC_DTYPE = np.dtype([("x", "<i4"), ("y", "<i4"), ("t", "<i8"), ("p", "<i4")])


def check(path: str) -> str | None:
    """Cheap check: the size is a positive whole number of 5-byte records."""
    size = os.stat(path).st_size
    if size == 0:
        return "empty file (no 5-byte records)"
    if size % RECORD:
        return (
            f"{size} bytes is not a whole number of 5-byte records: the last record "
            f"is cut after {size % RECORD} of its 5 bytes (truncated?)"
        )
    return None


def read(path: str, sensor_size: Sequence[int]) -> np.ndarray:
    """The events of ``path`` (see the module docstring); a
    :class:`CorruptSampleError` naming it when it is not whole records or an
    event lies off ``sensor_size``."""
    from tonic.io import read_mnist_file

    with open(path, "rb") as f:
        raw = f.read()
    reason = None if raw else "empty file (no 5-byte records)"
    if raw and len(raw) % RECORD:
        reason = (
            f"{len(raw)} bytes is not a whole number of 5-byte records: the last "
            f"record is cut after {len(raw) % RECORD} of its 5 bytes (truncated?)"
        )
    if reason:
        raise CorruptSampleError(path, reason)
    ev = read_mnist_file(io.BytesIO(raw), dtype=_TONIC_DTYPE, is_stream=True)
    return vision_events(path, ev["t"], ev["x"], ev["y"], ev["p"], sensor_size)
