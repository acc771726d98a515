"""Fuzz every event-file reader: random truncations, random byte flips and
random bytes with the right extension either read as events that all lie on
the sensor, in time order, or raise CorruptSampleError naming the file --
never any other error. Seeded, so CI runs the same cases every time."""

from __future__ import annotations

import event_writers as w
import numpy as np
import pytest

from spikeforge.data.events import AUDIO_EVENT_DTYPE, VISION_EVENT_DTYPE, CorruptSampleError
from spikeforge.data.readers import aedat4, aedat31, atis_bin, hdf5_spikes, npy_events

pytest.importorskip("tonic")

CASES = 300  # mutants per kind (truncation, flips, random bytes) and format


def mutants(data: bytes, rng, cases=None):
    """``CASES`` truncations, ``CASES`` copies with 1-8 flipped bytes and
    ``CASES`` random byte strings (up to twice the size)."""
    n, cases = len(data), cases or CASES
    for _ in range(cases):
        yield "cut", data[: int(rng.integers(0, n))]
    for _ in range(cases):
        b = bytearray(data)
        for pos in rng.integers(0, n, int(rng.integers(1, 9))):
            b[pos] ^= int(rng.integers(1, 256))
        yield "flip", bytes(b)
    for _ in range(cases):
        yield "random", rng.integers(0, 256, int(rng.integers(0, 2 * n))).astype(np.uint8).tobytes()


def on_sensor(ev, sensor):
    w_, h, p = sensor
    assert ev.dtype in (VISION_EVENT_DTYPE, AUDIO_EVENT_DTYPE)
    if len(ev):
        assert 0 <= ev["x"].min() and ev["x"].max() < w_
        assert 0 <= ev["p"].min() and ev["p"].max() < p
        if "y" in ev.dtype.names:
            assert 0 <= ev["y"].min() and ev["y"].max() < h
        assert np.all(np.diff(ev["t"]) >= 0)


def fuzz(tmp_path, suffix, data, read, check, seed, sensor, cases=None):
    rng = np.random.default_rng(seed)
    outcomes = {"events": 0, "corrupt": 0}
    for k, (kind, blob) in enumerate(mutants(data, rng, cases)):
        path = str(tmp_path / f"m{k:04d}_{kind}{suffix}")
        with open(path, "wb") as f:
            f.write(blob)
        if check is not None:
            reason = check(path)
            assert reason is None or isinstance(reason, str)
        try:
            ev = read(path)
        except CorruptSampleError as e:
            assert path in e.path, (kind, e)
            outcomes["corrupt"] += 1
            continue
        on_sensor(ev, sensor)
        outcomes["events"] += 1
    assert outcomes["corrupt"] > (cases or CASES)  # every random-bytes mutant, at least
    return outcomes


def test_fuzz_atis_bin(tmp_path):
    rng = np.random.default_rng(0)
    w.write_atis_bin(tmp_path / "src.bin", *w.random_events(rng, 60, 34, 34, 40_000))
    fuzz(tmp_path, ".bin", (tmp_path / "src.bin").read_bytes(),
         lambda p: atis_bin.read(p, (34, 34, 2)), atis_bin.check, 1, (34, 34, 2))  # fmt: skip


def test_fuzz_npy(tmp_path):
    rng = np.random.default_rng(2)
    w.write_gesture_npy(tmp_path / "src.npy", *w.random_events(rng, 40, 128, 128, 10**6))
    fuzz(tmp_path, ".npy", (tmp_path / "src.npy").read_bytes(),
         lambda p: npy_events.read(p, (128, 128, 2)), npy_events.check, 3,
         (128, 128, 2))  # fmt: skip


@pytest.mark.parametrize("compression", [0, 1, 3], ids=["none", "lz4", "zstd"])
def test_fuzz_aedat4(tmp_path, compression):
    pytest.importorskip("aedat")
    rng = np.random.default_rng(4)
    ev = w.random_events(rng, 40, 128, 128, 10**6, t0=10**15)
    w.write_aedat4(tmp_path / "src.aedat4", *ev, packets=3, compression=compression)
    fuzz(tmp_path, ".aedat4", (tmp_path / "src.aedat4").read_bytes(),
         lambda p: aedat4.read(p, (128, 128, 2)), aedat4.check, 5 + compression,
         (128, 128, 2))  # fmt: skip


def test_fuzz_aedat31_and_labels(tmp_path):
    rng = np.random.default_rng(6)
    w.write_aedat31(tmp_path / "src.aedat", *w.random_events(rng, 60, 128, 128, 10**6),
                    per_packet=16)  # fmt: skip
    fuzz(tmp_path, ".aedat", (tmp_path / "src.aedat").read_bytes(),
         lambda p: aedat31.read_gesture(p, 0, 10**6, (128, 128, 2)), aedat31.check, 7,
         (128, 128, 2))  # fmt: skip
    w.write_labels_csv(tmp_path / "src.csv", [(1, 0, 10), (11, 10, 50)])

    def labels(p):
        rows = aedat31.read_labels(p)
        assert rows.shape[1] == 3 and (rows[:, 0] >= 0).all() and (rows[:, 0] < 11).all()
        return np.zeros(0, VISION_EVENT_DTYPE)

    fuzz(tmp_path, "_labels.csv", (tmp_path / "src.csv").read_bytes(), labels, None, 8,
         (128, 128, 2))  # fmt: skip


def test_fuzz_hdf5(tmp_path):
    pytest.importorskip("h5py")
    rng = np.random.default_rng(9)
    spikes = [(np.sort(rng.uniform(0, 1, 20)).astype(np.float32), rng.integers(0, 700, 20))
              for _ in range(3)]  # fmt: skip
    w.write_hsd(tmp_path / "src.h5", spikes, [0, 1, 2], 20)

    def read(p):
        hdf5_spikes.read_labels(p, 20)
        for j in range(3):
            on_sensor(hdf5_spikes.read(p, j, 700), (700, 1, 1))
        return np.zeros(0, AUDIO_EVENT_DTYPE)

    # HDF5 opens are slower: fewer cases (a damaged vlen length once took minutes)
    fuzz(tmp_path, ".h5", (tmp_path / "src.h5").read_bytes(), read, None, 10, (700, 1, 1),
         cases=100)  # fmt: skip
