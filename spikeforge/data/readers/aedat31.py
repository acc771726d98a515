"""iniVation AEDAT 3.1 files (IBM's DVS Gesture release, ``DvsGesture/*.aedat``)
and their ``*_labels.csv``.

Layout (iniVation's AEDAT 3.1 specification)::

    ASCII header lines, each starting with '#', the first "#!AER-DAT3.1\\r\\n",
    the last "#!END-HEADER\\r\\n"
    packets: a 28-byte little-endian header
                 i16 eventType, i16 eventSource, i32 eventSize,
                 i32 eventTSOffset, i32 eventTSOverflow, i32 eventCapacity,
                 i32 eventNumber, i32 eventValid
             then eventCapacity * eventSize bytes of events

Polarity events (type 1, 8 bytes): u32 data (bit 0 valid, bit 1 polarity,
bits 2-16 y, bits 17-31 x), then the u32 timestamp (microseconds, at
eventTSOffset 4); the full time is ``eventTSOverflow << 31 | timestamp``.
Other event types (special events, frames, IMU samples) are skipped. Only
events whose valid bit is set are kept.

Tonic's ``read_dvs_ibm`` reads every packet as polarity events and stops
quietly at a cut, so the packets are decoded here: every header must be
consistent (``0 <= valid <= number <= capacity``, polarity packets of 8-byte
events with the timestamp at offset 4) and its events whole inside the file.
A cut exactly between two packets leaves a valid, shorter recording and
cannot be told.

``*_labels.csv``: a header ``class,startTime_usec,endTime_usec`` and one row
per gesture; gesture ``k`` is the events with ``start <= t < end`` (the rule of
SpikingJelly's ``DVS128Gesture``) and its label ``class - 1`` (0..10).
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Sequence

import numpy as np

from spikeforge.data.events import CorruptSampleError
from spikeforge.data.readers import vision_events

HEADER_END = b"#!END-HEADER\r\n"
PACKET_HEADER = struct.Struct("<hhiiiiii")
MAX_HEADER = 1 << 20
NUM_CLASSES = 11


class _Bad(Exception):
    pass


def _data_start(f) -> int:
    first = f.readline(MAX_HEADER)
    if not first.startswith(b"#!AER-DAT3."):
        raise _Bad("does not start with the AEDAT 3.x magic '#!AER-DAT3.1'")
    line = first
    while line != HEADER_END:
        line = f.readline(MAX_HEADER)
        if not line.startswith(b"#"):
            raise _Bad("its ASCII header does not end with '#!END-HEADER' (truncated?)")
        if f.tell() > MAX_HEADER:
            raise _Bad("its ASCII header runs past 1 MiB")
    return f.tell()


def _packets(path: str, decode: bool):
    """Walk the packets; with ``decode`` return the polarity events' raw
    ``(data, ts, overflow)`` arrays."""
    size = os.stat(path).st_size
    chunks = []
    with open(path, "rb") as f:
        pos = _data_start(f)
        k = 0
        while pos < size:
            raw = f.read(PACKET_HEADER.size)
            if len(raw) < PACKET_HEADER.size:
                raise _Bad(f"cut inside the header of packet {k} at byte {pos} (truncated?)")
            etype, _, esize, tsoff, overflow, cap, number, valid = PACKET_HEADER.unpack(raw)
            what = f"packet {k} (byte {pos})"
            if esize <= 0 or cap < 0 or not 0 <= valid <= number <= cap or overflow < 0:
                raise _Bad(
                    f"{what} has an inconsistent header (event size {esize}, capacity {cap}, "
                    f"number {number}, valid {valid}, overflow {overflow})"
                )
            if etype == 1 and (esize != 8 or tsoff != 4):
                raise _Bad(f"{what}: polarity events of {esize} bytes with the time at {tsoff}")
            body = cap * esize
            if pos + PACKET_HEADER.size + body > size:
                raise _Bad(
                    f"{what} declares {cap} events of {esize} bytes but only "
                    f"{size - pos - PACKET_HEADER.size} bytes remain (truncated?)"
                )
            if decode and etype == 1 and number:
                words = np.frombuffer(f.read(number * 8), dtype="<u4")
                chunks.append((words[0::2], words[1::2], overflow))
                f.seek((cap - number) * 8, 1)
            else:
                f.seek(body, 1)
            pos += PACKET_HEADER.size + body
            k += 1
    return chunks


def check(path: str) -> str | None:
    """Build-time check: the header and every packet's framing (no decoding)."""
    try:
        _packets(path, decode=False)
    except _Bad as e:
        return str(e)
    return None


@functools.lru_cache(maxsize=2)
def _recording(path: str, sensor_size: tuple[int, int, int], stamp: tuple[int, int]):
    # ``stamp`` (size, mtime) keys the cache so a replaced file is read again.
    try:
        chunks = _packets(path, decode=True)
    except _Bad as e:
        raise CorruptSampleError(path, str(e)) from None
    if not chunks:
        raise CorruptSampleError(path, "holds no polarity events (cut after its header?)")
    data = np.concatenate([c[0] for c in chunks])
    ts = np.concatenate([c[1].astype(np.int64) | (np.int64(c[2]) << 31) for c in chunks])
    keep = (data & 1).astype(bool)
    data, ts = data[keep], ts[keep]
    x = (data >> 17) & 0x7FFF
    y = (data >> 2) & 0x7FFF
    p = (data >> 1) & 1
    return vision_events(path, ts, x, y, p, sensor_size)


def read_recording(path: str, sensor_size: Sequence[int]) -> np.ndarray:
    """All valid polarity events of ``path`` in time order (cached for the two
    most recent recordings: the gestures of one recording are read in turn)."""
    st = os.stat(path)
    return _recording(path, tuple(int(s) for s in sensor_size), (st.st_size, st.st_mtime_ns))


def read_labels(csv_path: str) -> np.ndarray:
    """Rows ``[class - 1, start, end]`` (int64) of a ``*_labels.csv``; a
    :class:`CorruptSampleError` naming it for a malformed file."""
    try:
        with open(csv_path, encoding="ascii") as f:
            lines = [ln.strip() for ln in f if ln.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise CorruptSampleError(csv_path, f"cannot read it ({e})") from None
    if not lines or lines[0].replace(" ", "") != "class,startTime_usec,endTime_usec":
        raise CorruptSampleError(csv_path, "no header 'class,startTime_usec,endTime_usec'")
    rows = []
    for n, ln in enumerate(lines[1:], start=2):
        try:
            c, s, e = (int(v) for v in ln.split(","))
        except ValueError:
            raise CorruptSampleError(csv_path, f"line {n} is not three integers: {ln!r}") from None
        if not 1 <= c <= NUM_CLASSES or not 0 <= s < e:
            raise CorruptSampleError(
                csv_path, f"line {n}: class {c} (1..{NUM_CLASSES}) from {s} to {e} us"
            )
        rows.append((c - 1, s, e))
    if not rows:
        raise CorruptSampleError(csv_path, "lists no gesture")
    return np.asarray(rows, dtype=np.int64)


def read_gesture(path: str, start: int, end: int, sensor_size: Sequence[int]) -> np.ndarray:
    """The events of ``path`` with ``start <= t < end``."""
    ev = read_recording(path, sensor_size)
    lo, hi = np.searchsorted(ev["t"], [start, end], side="left")
    return ev[lo:hi].copy()
