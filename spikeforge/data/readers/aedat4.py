"""iniVation AEDAT 4.0 files (CIFAR10-DVS), framing validated here, events
decoded by Tonic's ``tonic.io.read_aedat4`` (the Rust package ``aedat``).

Layout (iniVation's AEDAT 4.0 specification; the flatbuffers schemas
``ioheader.fbs``, ``events.fbs``, ``file_data_table.fbs`` of dv-processing and
of ``aedat``)::

    "#!AER-DAT4.0\\r\\n"
    u32 size, IOHeader flatbuffer (compression, dataTablePosition, infoNode XML)
    packets: i32 streamID, i32 size, size bytes = one size-prefixed flatbuffer
             (EventPacket "EVTS": a vector of 16-byte events t i64, x i16,
             y i16, on u8, 3 pad), compressed whole with the header's
             compression (0 none, 1/2 LZ4 frame, 3/4 Zstandard frame)
    at dataTablePosition (when >= 0): the FileDataTable "FTAB" flatbuffer
             (size-prefixed, compressed the same way) to the end of the file:
             per packet its ByteOffset, streamID, size, NumElements,
             TimestampStart, TimestampEnd

``aedat`` reads the header without verifying it and stops quietly at a packet
cut short, so this module walks the framing itself: every packet must lie
whole inside the file (before the table), decompress completely, be a
flatbuffer of the type its stream declares whose offsets stay inside it, and
the index table must list exactly these packets (offset of the packet's
header or of its payload -- writers differ --, stream, size, element count,
first and last timestamp). The build-time check walks the packet headers
only (no decompression). A file without a table (``dataTablePosition``
-1, a recording not closed) is read to its end; cut exactly between two
packets it cannot be told from a shorter recording.
"""

from __future__ import annotations

import os
import struct
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spikeforge.data.events import CorruptSampleError
from spikeforge.data.readers import vision_events

MAGIC = b"#!AER-DAT4.0\r\n"
COMPRESSION = {0: "none", 1: "LZ4", 2: "LZ4 (high)", 3: "ZSTD", 4: "ZSTD (high)"}
EVENT_BYTES = 16
#: A decompressed packet larger than this is refused (a damaged frame must not
#: exhaust memory); dv writes packets of at most a few MiB.
MAX_PACKET = 1 << 28


class _Bad(Exception):
    """A framing error; turned into CorruptSampleError with the file's name."""


class _Buf:
    """Bounds-checked little-endian reads of a flatbuffer (every offset a
    file could hold is checked before it is followed)."""

    def __init__(self, data: bytes, what: str):
        self.d = data
        self.what = what

    def _need(self, pos: int, n: int) -> None:
        if pos < 0 or pos + n > len(self.d):
            raise _Bad(f"{self.what}: offset {pos}+{n} outside its {len(self.d)} bytes")

    def u16(self, pos: int) -> int:
        self._need(pos, 2)
        return struct.unpack_from("<H", self.d, pos)[0]

    def i32(self, pos: int) -> int:
        self._need(pos, 4)
        return struct.unpack_from("<i", self.d, pos)[0]

    def u32(self, pos: int) -> int:
        self._need(pos, 4)
        return struct.unpack_from("<I", self.d, pos)[0]

    def i64(self, pos: int) -> int:
        self._need(pos, 8)
        return struct.unpack_from("<q", self.d, pos)[0]

    def table(self, pos: int) -> tuple[int, list[int]]:
        """``(table position, [field offsets or 0])`` of the table at ``pos``."""
        vt = pos - self.i32(pos)
        vsize, tsize = self.u16(vt), self.u16(vt + 2)
        if vsize < 4 or vsize % 2:
            raise _Bad(f"{self.what}: bad vtable size {vsize}")
        self._need(pos, tsize)
        fields = [self.u16(vt + 4 + 2 * k) for k in range((vsize - 4) // 2)]
        if any(f >= tsize for f in fields if f):
            raise _Bad(f"{self.what}: a field lies outside its table")
        return pos, fields

    def field_pos(self, table: tuple[int, list[int]], k: int) -> int | None:
        pos, fields = table
        return pos + fields[k] if k < len(fields) and fields[k] else None

    def deref(self, pos: int) -> int:
        """Follow the uoffset stored at ``pos``."""
        return pos + self.u32(pos)

    def vector(self, pos: int, elem: int) -> tuple[int, int]:
        """``(start, length)`` of the vector whose uoffset is at ``pos``."""
        vec = self.deref(pos)
        n = self.u32(vec)
        self._need(vec + 4, n * elem)
        return vec + 4, n


@dataclass
class _Packet:
    offset: int  # of its 8-byte header
    stream: int
    size: int
    count: int  # events (EVTS) or -1
    t_first: int
    t_last: int


def _root(buf: bytes, what: str, ident: bytes | None, size_prefixed: bool) -> tuple[_Buf, int]:
    b = _Buf(buf, what)
    base = 4 if size_prefixed else 0
    if size_prefixed:
        declared = b.u32(0)
        if declared + 4 > len(buf):
            raise _Bad(f"{what}: declares {declared} bytes but holds {len(buf) - 4}")
    if ident is not None:
        b._need(base + 4, 4)
        if buf[base + 4 : base + 8] != ident:
            raise _Bad(f"{what}: identifier {buf[base + 4:base + 8]!r}, expected {ident!r}")
    return b, base + b.u32(base)


def _header(f, size: int) -> tuple[int, int, dict[int, tuple[str, int, int]], int]:
    """``(compression, dataTablePosition, {stream: (type, w, h)}, data start)``."""
    if f.read(len(MAGIC)) != MAGIC:
        raise _Bad("does not start with the AEDAT4 magic '#!AER-DAT4.0'")
    raw = f.read(4)
    if len(raw) < 4:
        raise _Bad("cut inside its header size")
    n = struct.unpack("<I", raw)[0]
    start = len(MAGIC) + 4 + n
    if start > size:
        raise _Bad(f"its header declares {n} bytes but the file ends before (truncated?)")
    b, root = _root(f.read(n), "IOHeader", None, size_prefixed=False)
    table = b.table(root)
    p = b.field_pos(table, 0)
    compression = b.i32(p) if p is not None else 0
    p = b.field_pos(table, 1)
    table_pos = b.i64(p) if p is not None else -1
    p = b.field_pos(table, 2)
    if p is None:
        raise _Bad("IOHeader has no stream description")
    s = b.deref(p)
    text = b.d[s + 4 : s + 4 + b.u32(s)]
    if compression not in COMPRESSION:
        raise _Bad(f"unknown compression {compression} in its header")
    try:
        root_node = ET.fromstring(text.decode("utf-8"))
    except (UnicodeDecodeError, ET.ParseError) as e:
        raise _Bad(f"its stream description is not readable XML ({e})") from None
    streams = {}
    for node in root_node.iter("node"):
        if node.get("path", "").count("/") != 3 or not node.get("path", "").startswith(
            "/outInfo/"
        ):
            continue
        attrs = {a.get("key"): (a.text or "") for a in node.iter("attr")}
        try:
            sid = int(node.get("name", ""))
            w, h = int(attrs.get("sizeX", 0)), int(attrs.get("sizeY", 0))
        except ValueError:
            raise _Bad("its stream description has a non-numeric stream id or size") from None
        streams[sid] = (attrs.get("typeIdentifier", ""), w, h)
    if not any(kind == "EVTS" for kind, _, _ in streams.values()):
        raise _Bad("its stream description declares no event (EVTS) stream")
    if table_pos != -1 and not start <= table_pos <= size:
        raise _Bad(
            f"its header puts the index table at byte {table_pos}, but the file has "
            f"{size} bytes (truncated?)"
        )
    return compression, table_pos, streams, start


def _decompress(data: bytes, compression: int, what: str) -> bytes:
    if compression == 0:
        return data
    try:
        if compression in (1, 2):
            import lz4.frame
        else:
            import zstandard
    except ImportError as e:
        raise ImportError(
            f"AEDAT4 files with {COMPRESSION[compression]} packets need: pip install lz4 zstandard"
        ) from e
    try:
        if compression in (1, 2):
            d = lz4.frame.LZ4FrameDecompressor()
            out = d.decompress(data, max_length=MAX_PACKET)
            if not d.eof or d.unused_data or not d.needs_input:
                raise _Bad(f"{what}: its LZ4 frame is cut short or followed by stray bytes")
            return out
        d = zstandard.ZstdDecompressor().decompressobj()
        out = d.decompress(data)
        if not d.eof or d.unused_data or len(out) > MAX_PACKET:
            raise _Bad(f"{what}: its ZSTD frame is cut short or followed by stray bytes")
        return out
    except _Bad:
        raise
    except Exception as e:  # noqa: BLE001 - the codec's own error on damaged bytes
        name = COMPRESSION[compression]
        raise _Bad(f"{what}: its {name} data does not decompress ({e})") from None


def _events_stats(buf: bytes, what: str) -> tuple[int, int, int]:
    """Element count and first/last timestamp of an EventPacket buffer."""
    b, root = _root(buf, what, b"EVTS", size_prefixed=True)
    p = b.field_pos(b.table(root), 0)
    if p is None:
        return 0, 0, 0
    start, n = b.vector(p, EVENT_BYTES)
    if n == 0:
        return 0, 0, 0
    return n, b.i64(start), b.i64(start + (n - 1) * EVENT_BYTES)


def _walk(path: str, decode: bool = True) -> tuple[list[_Packet], dict, int]:
    """Walk the packets (and the index table); without ``decode`` only their
    headers and sizes are checked (no decompression: the build-time check)."""
    size = os.stat(path).st_size
    packets: list[_Packet] = []
    with open(path, "rb") as f:
        compression, table_pos, streams, pos = _header(f, size)
        end = table_pos if table_pos >= 0 else size
        f.seek(pos)
        while pos < end:
            if pos + 8 > end:
                raise _Bad(f"cut inside the header of packet {len(packets)} at byte {pos}")
            sid, n = struct.unpack("<ii", f.read(8))
            what = f"packet {len(packets)} (byte {pos})"
            if sid not in streams:
                raise _Bad(f"{what} belongs to stream {sid}, which the header does not declare")
            if n <= 0 or pos + 8 + n > end:
                raise _Bad(
                    f"{what} declares {n} bytes but only {end - pos - 8} remain before "
                    f"{'the index table' if table_pos >= 0 else 'the end of the file'} "
                    "(truncated?)"
                )
            if not decode:
                f.seek(n, 1)
                pos += 8 + n
                continue
            buf = _decompress(f.read(n), compression, what)
            kind = streams[sid][0]
            if kind == "EVTS":
                count, t0, t1 = _events_stats(buf, what)
            else:
                _root(buf, what, kind.encode()[:4] or None, size_prefixed=True)
                count, t0, t1 = -1, 0, 0
            packets.append(_Packet(pos, sid, n, count, t0, t1))
            pos += 8 + n
        if table_pos >= 0 and not decode:
            if table_pos == size:
                raise _Bad("the index table is missing: the file ends where its header puts it")
        elif table_pos >= 0:
            f.seek(table_pos)
            _check_table(f.read(), compression, packets)
    return packets, streams, compression


def _check_table(raw: bytes, compression: int, packets: list[_Packet]) -> None:
    what = "the index table (FileDataTable)"
    if not raw:
        raise _Bad(f"{what} is missing: the file ends where its header puts it (truncated?)")
    b, root = _root(_decompress(raw, compression, what), what, b"FTAB", size_prefixed=True)
    p = b.field_pos(b.table(root), 0)
    start, n = b.vector(p, 4) if p is not None else (0, 0)
    if n != len(packets):
        raise _Bad(f"{what} lists {n} packets, the file holds {len(packets)}")
    for k, pk in enumerate(packets):
        entry = b.table(b.deref(start + 4 * k))
        vals = []
        for j in (0, 2, 3, 4):
            q = b.field_pos(entry, j)
            vals.append(b.i64(q) if q is not None else 0)
        q = b.field_pos(entry, 1)
        sid, size = (b.i32(q), b.i32(q + 4)) if q is not None else (0, 0)
        offset, count, t0, t1 = vals
        problems = []
        if offset not in (pk.offset, pk.offset + 8):
            problems.append(f"offset {offset} (the packet starts at {pk.offset})")
        if (sid, size) != (pk.stream, pk.size):
            problems.append(f"stream {sid} / {size} bytes (the packet: {pk.stream} / {pk.size})")
        if pk.count >= 0 and count != pk.count:
            problems.append(f"{count} elements (the packet holds {pk.count})")
        if pk.count > 0 and (t0, t1) != (pk.t_first, pk.t_last):
            problems.append(f"times [{t0}, {t1}] (the packet: [{pk.t_first}, {pk.t_last}])")
        if problems:
            raise _Bad(f"{what} entry {k} disagrees with packet {k}: " + "; ".join(problems))


def check(path: str) -> str | None:
    """Cheap check: the header, and every packet's header and size in place
    (packets are decompressed and the index table compared on read)."""
    try:
        _walk(path, decode=False)
    except _Bad as e:
        return str(e)
    return None


def read(path: str, sensor_size: Sequence[int]) -> np.ndarray:
    """The events of the first event stream of ``path`` after validating its
    whole framing (see the module docstring)."""
    try:
        packets, streams, _ = _walk(path)
    except _Bad as e:
        raise CorruptSampleError(path, str(e)) from None
    try:
        from tonic.io import read_aedat4
    except ImportError as e:
        raise ImportError("reading AEDAT4 files needs the package aedat: pip install aedat") from e
    target = min(s for s, (kind, _, _) in streams.items() if kind == "EVTS")
    expected = sum(p.count for p in packets if p.stream == target)
    if expected == 0:
        raise CorruptSampleError(path, "holds no events")
    try:
        ev = read_aedat4(path)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as e:  # noqa: BLE001 - aedat's Rust panics are BaseException
        raise CorruptSampleError(path, f"aedat could not decode it ({e})") from None
    if len(ev) != expected:
        raise CorruptSampleError(
            path, f"aedat decoded {len(ev)} events, its packets declare {expected}"
        )
    names = ev.dtype.names
    on = ev["on"] if "on" in names else ev[names[3]]
    return vision_events(path, ev["t"], ev["x"], ev["y"], on.astype(np.int8), sensor_size)
