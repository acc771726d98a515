"""The Heidelberg spike files (SHD, SSC; Cramer et al., IEEE TNNLS 2020):
HDF5 with ``spikes/times`` (one float array per sample, seconds),
``spikes/units`` (one integer array per sample, channel 0..699) and
``labels``.

Checked when the dataset is built: the file opens, the three arrays exist
and have one entry per sample, the labels lie in ``[0, num_classes)``, and
(contiguous layout, as the released files are) the lengths each sample's
``times`` and ``units`` declare fit in the file -- read from the raw vlen
descriptors, because HDF5 follows a damaged length for minutes. A file
that fails is unusable as a whole: a :class:`CorruptSampleError` naming it
even with ``skip_corrupt``. Checked on read: a sample's times and units have
equal lengths, times are finite and non-negative, units lie on the sensor.
Times become ``round(1e6 * seconds)`` microseconds (Tonic's ``SHD`` truncates
``1e6 * seconds``; rounding keeps ``0.7`` s at 700000 us).
"""

from __future__ import annotations

import os

import numpy as np

from spikeforge.data.events import CorruptSampleError
from spikeforge.data.readers import audio_events

KEYS = ("spikes/times", "spikes/units", "labels")
#: How HDF5 stores one variable-length sequence in a contiguous dataset: its
#: length, then the global-heap ID (file address with 8-byte offsets, index).
VLEN_DESCRIPTOR = np.dtype([("length", "<u4"), ("address", "<u8"), ("index", "<u4")])


def _vlen_lengths(f, key: str, path: str, index: int | None = None) -> np.ndarray | None:
    """The sequence lengths a contiguous vlen dataset declares (all, or the one
    at ``index``), read from its raw descriptors without following them
    (HDF5 follows a damaged length for minutes before failing); None when
    the layout is not contiguous. A length the file cannot hold is an error."""
    ds = f[key]
    offset = ds.id.get_offset()
    if offset is None or ds.id.get_storage_size() != VLEN_DESCRIPTOR.itemsize * len(ds):
        return None
    first, count = (0, len(ds)) if index is None else (index, 1)
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        fh.seek(offset + first * VLEN_DESCRIPTOR.itemsize)
        desc = np.frombuffer(fh.read(count * VLEN_DESCRIPTOR.itemsize), VLEN_DESCRIPTOR)
    if len(desc) != count:
        raise ValueError(f"{key}: its descriptors run past the end of the file")
    item = ds.dtype.metadata["vlen"].itemsize if ds.dtype.metadata else 1
    too_long = desc["length"].astype(np.int64) * item > size
    if too_long.any():
        j = first + int(np.argmax(too_long))
        raise ValueError(
            f"{key}[{j}] declares {int(desc['length'][j - first])} values, more than the "
            f"{size}-byte file can hold"
        )
    return desc["length"]


def read_labels(path: str, num_classes: int) -> np.ndarray:
    """The labels of ``path`` after the whole-file checks (module docstring)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            for key in KEYS:
                if key not in f:
                    raise KeyError(f"no dataset {key!r}")
            n = len(f["labels"])
            nt, nu = len(f["spikes/times"]), len(f["spikes/units"])
            if nt != n or nu != n:
                raise ValueError(f"{nt} spike-time arrays, {nu} unit arrays and {n} labels")
            if n * f["labels"].dtype.itemsize > os.path.getsize(path):
                raise ValueError(f"{n} labels declared, more than the file can hold")
            labels = np.asarray(f["labels"][()], dtype=np.int64)
            _vlen_lengths(f, "spikes/times", path)
            _vlen_lengths(f, "spikes/units", path)
    except Exception as e:  # noqa: BLE001 - h5py's errors for a damaged file vary
        raise CorruptSampleError(
            path, f"{type(e).__name__}: {e}; delete it and download it again"
        ) from None
    if labels.ndim != 1:
        raise CorruptSampleError(path, f"labels have shape {labels.shape}, expected [N]")
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        raise CorruptSampleError(
            path, f"label {int(labels[bad][0])} of sample {int(np.argmax(bad))} is outside "
            f"[0, {num_classes - 1}]"
        )
    return labels


def read(path: str, index: int, channels: int) -> np.ndarray:
    """The spikes of sample ``index`` of ``path`` as audio events."""
    import h5py

    name = f"{path} (sample {index})"
    try:
        with h5py.File(path, "r") as f:
            _vlen_lengths(f, "spikes/times", path, index)
            _vlen_lengths(f, "spikes/units", path, index)
            times = np.asarray(f["spikes/times"][index], dtype=np.float64)
            units = np.asarray(f["spikes/units"][index])
    except Exception as e:  # noqa: BLE001 - h5py's errors for a damaged file vary
        raise CorruptSampleError(name, f"{type(e).__name__}: {e}") from None
    if times.ndim != 1 or units.shape != times.shape:
        raise CorruptSampleError(
            name, f"{times.size} spike times but {units.size} units (they must pair up)"
        )
    if units.dtype.kind not in "iu":
        raise CorruptSampleError(name, f"units of dtype {units.dtype}, expected integers")
    if times.size and not (np.isfinite(times).all() and times.min() >= 0 and times.max() < 1e6):
        raise CorruptSampleError(
            name, f"spike times in [{times.min()}, {times.max()}] s are not valid seconds"
        )
    return audio_events(name, np.rint(times * 1e6).astype(np.int64), units, channels)
