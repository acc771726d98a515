"""Writers of the event datasets' release formats, for the tests.

Each writes a file byte for byte as the format's documentation lays it out
(written here from the specifications, independently of the readers in
spikeforge.data.readers): ATIS .bin with timestamp-overflow markers, the
[N, 4] .npy of Tonic's DVS Gesture release, AEDAT 3.1 with its labels csv,
AEDAT 4.0 (flatbuffers, uncompressed / LZ4 / ZSTD, with the index table) and
the Heidelberg HDF5 files. Every writer returns the events it wrote as
(t, x, y, p) int64 columns, or the byte ranges of its records / packets.
"""

from __future__ import annotations

import os
import struct

import numpy as np


def _mkdir(path):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)


def random_events(rng, n, w, h, t_max, t0=0):
    """Sorted random events: (t, x, y, p) int64 arrays."""
    t = np.sort(rng.integers(t0, t0 + t_max, n))
    return t, rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n)


# --------------------------------------------------------------------------- ATIS .bin


def write_atis_bin(path, t, x, y, p):
    """5-byte records, big-endian x (8 bits), y (8), p (1), t (23 us). Times
    beyond 2**13 us are written with overflow markers (y == 240): after k
    markers a record's 23-bit field holds ``t - k * 2**13``. Returns the
    number of markers."""
    t, x, y, p = (np.asarray(a, dtype=np.int64) for a in (t, x, y, p))
    recs = []
    k = 0
    for ti, xi, yi, pi in zip(t.tolist(), x.tolist(), y.tolist(), p.tolist()):
        while ti - k * 2**13 >= 2**13:
            recs.append((0, 240, 0, 0))
            k += 1
        recs.append((xi, yi, pi, ti - k * 2**13))
    raw = np.zeros((len(recs), 5), dtype=np.uint8)
    if recs:
        a = np.asarray(recs, dtype=np.int64)
        raw[:, 0], raw[:, 1] = a[:, 0], a[:, 1]
        raw[:, 2] = (a[:, 2] << 7) | ((a[:, 3] >> 16) & 0x7F)
        raw[:, 3] = (a[:, 3] >> 8) & 0xFF
        raw[:, 4] = a[:, 3] & 0xFF
    _mkdir(path)
    raw.tofile(path)
    return k


# --------------------------------------------------------------------------- .npy


def write_gesture_npy(path, t_us, x, y, p):
    """Tonic's DVS Gesture release: float64 [N, 4] columns x, y, p, t (ms)."""
    _mkdir(path)
    arr = np.stack([x, y, p, np.asarray(t_us) / 1000.0], axis=1).astype(np.float64)
    np.save(path, arr)


# --------------------------------------------------------------------------- AEDAT 3.1


def write_aedat31(path, t, x, y, p, per_packet=50, invalid_at=(), special=True):
    """AEDAT 3.1: ASCII header, then 28-byte packet headers with their events.
    Polarity events (type 1, 8 bytes: data = x << 17 | y << 2 | p << 1 | valid,
    then the low 31 bits of t); packets never straddle a 2**31 overflow. Events
    at ``invalid_at`` are written with the valid bit clear. With ``special`` a
    special-event packet (type 0) comes first. Returns the packets' (start,
    end) byte ranges."""
    t, x, y, p = (np.asarray(a, dtype=np.int64) for a in (t, x, y, p))
    valid = np.ones(len(t), dtype=np.int64)
    valid[list(invalid_at)] = 0
    out = bytearray(b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
                    b"#Start-Time: 2017-01-01 00:00:00 (TZ+0000)\r\n#!END-HEADER\r\n")  # fmt: skip
    ranges = []

    def packet(etype, words, overflow, n_valid):
        n = len(words) // 2
        start = len(out)
        out.extend(struct.pack("<hhiiiiii", etype, 1, 8, 4, overflow, n, n, n_valid))
        out.extend(np.asarray(words, dtype="<u4").tobytes())
        ranges.append((start, len(out)))

    if special:
        packet(0, [0x4, 5, 0x8, 6], 0, 2)
    i = 0
    while i < len(t):
        ov = int(t[i] >> 31)
        j = i
        while j < len(t) and j - i < per_packet and int(t[j] >> 31) == ov:
            j += 1
        data = (x[i:j] << 17) | (y[i:j] << 2) | (p[i:j] << 1) | valid[i:j]
        words = np.stack([data, t[i:j] & 0x7FFFFFFF], axis=1).reshape(-1)
        packet(1, words, ov, int(valid[i:j].sum()))
        i = j
    _mkdir(path)
    with open(path, "wb") as f:
        f.write(out)
    return ranges


def write_labels_csv(path, rows):
    """``*_labels.csv``: ``class,startTime_usec,endTime_usec`` and one row each."""
    _mkdir(path)
    with open(path, "w", newline="") as f:
        f.write("class,startTime_usec,endTime_usec\r\n")
        for c, s, e in rows:
            f.write(f"{c},{s},{e}\r\n")


# --------------------------------------------------------------------------- AEDAT 4


def _ioheader(compression: int, table_pos: int, description: str) -> bytes:
    """IOHeader flatbuffer (identifier IOHE): table fields compression (i32),
    dataTablePosition (i64), infoNode (string), behind a u32 size."""
    text = description.encode() + b"\0"
    text += b"\0" * (-len(text) % 4)
    body = (
        struct.pack("<I", 20)  # root table at 20
        + b"IOHE"
        + struct.pack("<HHHHH", 10, 24, 4, 16, 8)  # vtable: 3 fields
        + b"\0\0"
        + struct.pack("<iiI", 12, compression, 44 - 28)  # table at 20; string at 44
        + b"\0" * 4
        + struct.pack("<q", table_pos)  # at 36 = 20 + 16
        + struct.pack("<I", len(description))
        + text
    )
    return struct.pack("<I", len(body)) + body


def _event_packet(t, x, y, p) -> bytes:
    """Size-prefixed EventPacket flatbuffer (identifier EVTS): a vector of
    16-byte events (t i64, x i16, y i16, on u8, 3 bytes padding)."""
    ev = np.zeros(len(t), dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "u1"),
                                 ("_", "V3")])  # fmt: skip
    ev["t"], ev["x"], ev["y"], ev["on"] = t, x, y, p
    body = (
        struct.pack("<I", 16) + b"EVTS" + struct.pack("<HHH", 6, 8, 4) + b"\0\0"
        + struct.pack("<iI", 8, 4) + struct.pack("<I", len(t)) + ev.tobytes()
    )  # fmt: skip
    return struct.pack("<I", len(body)) + body


def _file_data_table(entries) -> bytes:
    """Size-prefixed FileDataTable flatbuffer (identifier FTAB): a vector of
    FileDataDefinition tables (ByteOffset, PacketInfo {streamID, size},
    NumElements, TimestampStart, TimestampEnd), sharing one vtable."""
    n = len(entries)
    head = (
        struct.pack("<I", 32) + b"FTAB"
        + struct.pack("<HHH", 6, 8, 4) + b"\0\0"  # root vtable at 8
        + struct.pack("<HHHHHHH", 14, 48, 8, 16, 24, 32, 40) + b"\0\0"  # entry vtable at 16
        + struct.pack("<iI", 24, 4)  # root table at 32: vector at 40
        + struct.pack("<I", n)
    )  # fmt: skip
    first = 44 + 4 * n
    first += -first % 8
    offsets = b"".join(struct.pack("<I", first + 48 * k - (44 + 4 * k)) for k in range(n))
    body = head + offsets + b"\0" * (first - 44 - 4 * n)
    for k, (off, sid, size, count, t0, t1) in enumerate(entries):
        pos = first + 48 * k
        body += struct.pack("<i", pos - 16) + b"\0" * 4
        body += struct.pack("<qiiqqq", off, sid, size, count, t0, t1)
    return struct.pack("<I", len(body)) + body


def _compress(data: bytes, compression: int) -> bytes:
    if compression == 0:
        return data
    if compression in (1, 2):
        import lz4.frame

        return lz4.frame.compress(data)
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


def write_aedat4(path, t, x, y, p, packets=3, compression=0, table=True, size=(128, 128)):
    """AEDAT 4.0 (see spikeforge.data.readers.aedat4 for the layout): events in
    ``packets`` packets of stream 0, compressed with ``compression`` (0 none,
    1 LZ4, 3 ZSTD), and (``table``) the index table at the end. Returns the
    (start, end) byte ranges of the packets and of the table."""
    compression_name = {0: "NONE", 1: "LZ4", 3: "ZSTD"}[compression]
    desc = (
        '<dv version="2.0"><node name="outInfo" path="/outInfo/">'
        '<node name="0" path="/outInfo/0/">'
        f'<attr key="compression" type="string">{compression_name}</attr>'
        '<attr key="typeIdentifier" type="string">EVTS</attr>'
        '<node name="info" path="/outInfo/0/info/">'
        f'<attr key="sizeX" type="int">{size[0]}</attr>'
        f'<attr key="sizeY" type="int">{size[1]}</attr>'
        "</node></node></node></dv>"
    )
    header_len = len(b"#!AER-DAT4.0\r\n") + len(_ioheader(compression, -1, desc))
    body = bytearray()
    entries, ranges = [], []
    for c in np.array_split(np.arange(len(t)), packets):
        payload = _compress(_event_packet(t[c], x[c], y[c], p[c]), compression)
        pos = header_len + len(body)
        body += struct.pack("<ii", 0, len(payload)) + payload
        t0, t1 = (int(t[c[0]]), int(t[c[-1]])) if len(c) else (0, 0)
        entries.append((pos, 0, len(payload), len(c), t0, t1))
        ranges.append((pos, header_len + len(body)))
    table_pos = header_len + len(body) if table else -1
    out = b"#!AER-DAT4.0\r\n" + _ioheader(compression, table_pos, desc) + bytes(body)
    if table:
        out += _compress(_file_data_table(entries), compression)
        ranges.append((table_pos, len(out)))
    _mkdir(path)
    with open(path, "wb") as f:
        f.write(out)
    return ranges


# --------------------------------------------------------------------------- HDF5


def write_hsd(path, spikes, labels, n_keys):
    """SHD / SSC HDF5: spikes/times (vlen float32, seconds), spikes/units
    (vlen uint16), labels, extra/keys, extra/speaker."""
    import h5py

    _mkdir(path)
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (len(spikes),), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (len(spikes),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (tt, uu) in enumerate(spikes):
            times[i] = tt
            units[i] = uu
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        f.create_dataset("extra/keys", data=np.array([f"k{i}".encode() for i in range(n_keys)]))
        f.create_dataset("extra/speaker", data=np.zeros(len(spikes), dtype=np.uint16))
