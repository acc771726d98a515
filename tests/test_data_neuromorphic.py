"""The Tonic-backed datasets on small files written in each real format.

Each fixture writes files byte for byte as the real releases hold them, in the
folder layout Tonic 1.7 expects after extraction, then reads them back
through the registered builders (so through Tonic's own readers).
"""

from __future__ import annotations

import os

import event_writers as w
import numpy as np
import pytest
import torch

from spikeforge.data import event_sets as es
from spikeforge.data import get_dataset
from spikeforge.data import neuromorphic as nm
from spikeforge.data.frames import CorruptSampleError, events_to_frames
from spikeforge.train.config import DataConfig

pytest.importorskip("tonic")
h5py = pytest.importorskip("h5py")

T = 4


def cfg(root, name, **kw):
    kw.setdefault("time_steps", T)
    return DataConfig(name=name, root=str(root), **kw)


# --------------------------------------------------------------------------- writers


def write_nmnist_bin(path, x, y, p, t):
    """Raw ATIS .bin records (x, y, p, t); a y == 240 record is an overflow marker."""
    w.write_atis_bin(path, t, x, y, p)


def random_events(rng, n, w_, h, t_max):
    t = np.sort(rng.integers(0, t_max, n))
    return rng.integers(0, w_, n), rng.integers(0, h, n), rng.integers(0, 2, n), t


write_aedat4 = w.write_aedat4
write_hsd = w.write_hsd


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def nmnist_root(tmp_path):
    rng = np.random.default_rng(0)
    truth = {}
    for split, per_class in (("Train", 2), ("Test", 1)):
        for digit in range(10):
            for k in range(per_class):
                ev = random_events(rng, 60 + digit, 34, 34, 300_000)
                path = tmp_path / "NMNIST" / split / str(digit) / f"{k:05d}.bin"
                write_nmnist_bin(path, *ev)
                truth[str(path)] = (ev, digit)
    return tmp_path, truth


def structured(ev):
    """(x, y, p, t) columns as N-MNIST's Tonic event array."""
    x, y, p, t = ev
    out = np.zeros(len(x), dtype=[("x", int), ("y", int), ("t", int), ("p", int)])
    out["x"], out["y"], out["t"], out["p"] = x, y, t, p
    return out


# --------------------------------------------------------------------------- N-MNIST


def test_nmnist_reads_real_bin_files_through_tonic(nmnist_root):
    root, truth = nmnist_root
    b = get_dataset("nmnist", cfg(root, "nmnist"))
    assert b.temporal and b.num_classes == 10 and b.input_shape == (2, 34, 34)
    assert len(b.train) == 20 and len(b.test) == 10
    assert b.info["skipped"] == 0
    seen = set()
    for ds in (b.train, b.test):
        for k in range(len(ds)):
            x, y = ds[k]
            path = ds.source(ds.indices[k])
            ev, digit = truth[path]
            seen.add(path)
            assert y == digit
            raw, _ = ds.events_dataset[ds.indices[k]]  # Tonic's decoding of our bytes
            np.testing.assert_array_equal(raw["x"], ev[0])
            np.testing.assert_array_equal(raw["y"], ev[1])
            np.testing.assert_array_equal(raw["p"], ev[2])
            np.testing.assert_array_equal(raw["t"], ev[3])
            assert x.shape == (T, 2, 34, 34) and x.dtype == torch.float32
            expect = events_to_frames(structured(ev), (34, 34, 2), n_time_bins=T)
            np.testing.assert_array_equal(x.numpy(), expect)
    assert len(seen) == 30


def test_nmnist_timestamp_overflow_marker(tmp_path):
    # y == 240 marks a timestamp overflow: later events gain 2**13 us
    path = tmp_path / "NMNIST" / "Train" / "3" / "a.bin"
    write_nmnist_bin(path, [1, 0, 2], [1, 240, 2], [0, 0, 1], [100, 0, 50])
    write_nmnist_bin(tmp_path / "NMNIST" / "Test" / "3" / "b.bin", [1], [1], [0], [5])
    b = get_dataset("nmnist", cfg(tmp_path, "nmnist"))
    ev, label = b.train.events_dataset[0]
    assert label == 3 and ev["t"].tolist() == [100, 50 + 2**13] and ev["x"].tolist() == [1, 2]


def test_frame_options_reach_the_frames(nmnist_root):
    root, truth = nmnist_root
    b = get_dataset(
        "nmnist", cfg(root, "nmnist", frame_mode="event_bins", frame_overlap=0.5, frame_scale=0.5)
    )
    assert b.input_shape == (2, 17, 17)
    x, y = b.test[0]
    ev, _ = truth[b.test.source(b.test.indices[0])]
    from spikeforge.data.frames import downsample

    small, sensor = downsample(structured(ev), (34, 34, 2), 0.5)
    expect = events_to_frames(small, sensor, n_event_bins=T, overlap=0.5)
    np.testing.assert_array_equal(x.numpy(), expect)


def test_missing_data_says_what_and_how(tmp_path):
    with pytest.raises(nm.DatasetNotFoundError) as e:
        get_dataset("nmnist", cfg(tmp_path, "nmnist"))
    msg = str(e.value)
    assert os.path.join(str(tmp_path), "NMNIST", "Train") in msg
    assert os.path.join(str(tmp_path), "NMNIST", "Test") in msg
    assert f"spikeforge train --dataset nmnist data.root={tmp_path} data.download=true" in msg
    assert "train.zip" in msg
    (tmp_path / "SHD").mkdir()
    write_hsd(tmp_path / "SHD" / "shd_train.h5", [([0.1], [3])], [0], 20)
    with pytest.raises(nm.DatasetNotFoundError, match="shd_test.h5") as e:
        get_dataset("shd", cfg(tmp_path, "shd"))
    assert "shd_train.h5 (file)" not in str(e.value)
    with pytest.raises(nm.DatasetNotFoundError, match="data.root"):
        get_dataset("dvs_gesture", DataConfig(name="dvs_gesture"))


def test_download_only_when_asked(tmp_path, monkeypatch):
    calls = []

    def fake_download(spec, root):  # stands in for Tonic's downloader (no network here)
        calls.append((spec.name, root))
        for split in ("Train", "Test"):
            write_nmnist_bin(os.path.join(root, "NMNIST", split, "1", "x.bin"), [1], [2], [1], [7])

    monkeypatch.setattr(es, "download", fake_download)
    with pytest.raises(nm.DatasetNotFoundError):
        get_dataset("nmnist", cfg(tmp_path, "nmnist"))
    assert calls == []
    b = get_dataset("nmnist", cfg(tmp_path, "nmnist", download=True))
    assert calls == [("nmnist", str(tmp_path))] and len(b.train) == 1
    get_dataset("nmnist", cfg(tmp_path, "nmnist", download=True))
    assert len(calls) == 1  # present now: no second download


def test_truncated_bin_named_or_skipped(nmnist_root, caplog):
    root, _ = nmnist_root
    bad = root / "NMNIST" / "Train" / "4" / "00001.bin"
    data = bad.read_bytes()
    bad.write_bytes(data[:-3])
    with pytest.raises(CorruptSampleError, match=str(bad)):
        get_dataset("nmnist", cfg(root, "nmnist"))
    with caplog.at_level("WARNING"):
        b = get_dataset("nmnist", cfg(root, "nmnist", skip_corrupt=True))
    assert len(b.train) == 19 and len(b.test) == 10
    assert b.info["skipped"] == 1 and b.info["skipped_files"] == [str(bad)]
    assert "skipped 1 corrupt samples" in caplog.text and str(bad) in caplog.text
    assert all(b.train.source(i) != str(bad) for i in b.train.indices)


def test_bad_events_found_when_read(nmnist_root):
    root, _ = nmnist_root
    bad = root / "NMNIST" / "Test" / "2" / "00000.bin"
    write_nmnist_bin(bad, [5, 50], [3, 3], [0, 1], [10, 20])  # x=50 is off the 34x34 sensor
    b = get_dataset("nmnist", cfg(root, "nmnist"))
    k = [b.test.source(i) for i in b.test.indices].index(str(bad))
    with pytest.raises(CorruptSampleError, match=str(bad)):
        b.test[k]
    b = get_dataset("nmnist", cfg(root, "nmnist", skip_corrupt=True, cache_dir=str(root / "c2")))
    assert b.info["skipped"] == 0  # not visible to the cheap check
    x, y = b.test[k]
    assert y == 3  # the next sample stands in
    assert b.info["skipped"] == 1 and b.info["skipped_files"] == [str(bad)]


def test_cache_used_on_second_run_and_rebuilt_when_corrupt(nmnist_root):
    root, _ = nmnist_root
    b1 = get_dataset("nmnist", cfg(root, "nmnist"))
    first = [b1.train[k] for k in range(len(b1.train))]
    assert b1.train.conversions == 20
    assert b1.info["cache_dir"].startswith(os.path.join(str(root), ".spikeforge_cache"))
    [b1.train[k] for k in range(len(b1.train))]
    assert b1.train.conversions == 20  # second epoch
    b2 = get_dataset("nmnist", cfg(root, "nmnist"))
    again = [b2.train[k] for k in range(len(b2.train))]
    assert b2.train.conversions == 0  # second run
    assert all(torch.equal(a[0], c[0]) and a[1] == c[1] for a, c in zip(first, again))
    entry = b2.train.cache.path(b2.train.indices[3])
    with open(entry, "r+b") as f:
        f.truncate(100)
    b3 = get_dataset("nmnist", cfg(root, "nmnist"))
    x, y = b3.train[3]
    assert b3.train.conversions == 1 and b3.train.cache.rebuilt == 1
    assert torch.equal(x, first[3][0]) and y == first[3][1]
    b4 = get_dataset("nmnist", cfg(root, "nmnist", time_steps=T + 1))
    assert b4.train[0][0].shape[0] == T + 1 and b4.train.conversions == 1  # new key


# --------------------------------------------------------------------------- DVS Gesture


def write_gesture(root, rng, split, user, lighting, labels):
    truth = {}
    folder = root / "DVSGesture" / f"ibmGesture{split}" / f"user{user:02d}_{lighting}"
    folder.mkdir(parents=True, exist_ok=True)
    for label in labels:
        x, y, p, t_ms = random_events(rng, 200, 128, 128, 6000)
        arr = np.stack([x, y, p, t_ms], axis=1).astype(np.float64)  # columns x, y, p, t [ms]
        np.save(folder / f"{label}.npy", arr)
        truth[str(folder / f"{label}.npy")] = ((x, y, p, t_ms * 1000), label)
    return truth


def test_dvs_gesture_npy_release(tmp_path):
    rng = np.random.default_rng(1)
    truth = {}
    truth.update(write_gesture(tmp_path, rng, "Train", 1, "fluorescent", [0, 5, 10]))
    truth.update(write_gesture(tmp_path, rng, "Train", 2, "lab", [1, 2]))
    truth.update(write_gesture(tmp_path, rng, "Test", 24, "led", [3, 10]))
    b = get_dataset("dvs_gesture", cfg(tmp_path, "dvs_gesture"))
    assert b.num_classes == 11 and b.input_shape == (2, 128, 128)
    assert len(b.train) == 5 and len(b.test) == 2
    for ds in (b.train, b.test):
        for k in range(len(ds)):
            x, y = ds[k]
            (ex, ey, ep, et), label = truth[ds.source(ds.indices[k])]
            assert y == label
            ev = np.zeros(len(ex), dtype=[("x", int), ("y", int), ("p", int), ("t", int)])
            ev["x"], ev["y"], ev["p"], ev["t"] = ex, ey, ep, et
            np.testing.assert_array_equal(
                x.numpy(), events_to_frames(ev, (128, 128, 2), n_time_bins=T)
            )
    # a truncated .npy is caught by its header before any read
    bad = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user02_lab" / "1.npy"
    bad.write_bytes(bad.read_bytes()[:-40])
    with pytest.raises(CorruptSampleError, match=str(bad)):
        get_dataset("dvs_gesture", cfg(tmp_path, "dvs_gesture"))
    b = get_dataset("dvs_gesture", cfg(tmp_path, "dvs_gesture", skip_corrupt=True))
    assert len(b.train) == 4 and b.info["skipped"] == 1


# --------------------------------------------------------------------------- CIFAR10-DVS


def test_cifar10dvs_aedat4_and_seeded_split(tmp_path):
    pytest.importorskip("aedat")
    rng = np.random.default_rng(2)
    truth = {}
    for c, name in enumerate(nm.CIFAR10DVS_CLASSES):
        for k in range(10):
            x, y, p, t = random_events(rng, 40, 128, 128, 1_000_000)
            path = tmp_path / "CIFAR10DVS" / name / f"cifar10_{name}_{k}.aedat4"
            write_aedat4(path, t, x, y, p)
            truth[str(path)] = ((x, y, p, t), c)
    b = get_dataset("cifar10dvs", cfg(tmp_path, "cifar10dvs"))
    assert b.num_classes == 10 and b.input_shape == (2, 128, 128)
    assert len(b.train) == 90 and len(b.test) == 10
    assert set(b.train.indices).isdisjoint(b.test.indices)
    test_classes = sorted(truth[b.test.source(i)][1] for i in b.test.indices)
    assert test_classes == list(range(10))  # one per class
    again = get_dataset("cifar10dvs", cfg(tmp_path, "cifar10dvs", cache_dir=str(tmp_path / "c")))
    assert again.test.indices == b.test.indices  # the split is fixed
    for k in (0, 5):
        x, y = b.test[k]
        (ex, ey, ep, et), label = truth[b.test.source(b.test.indices[k])]
        assert y == label
        ev = np.zeros(len(ex), dtype=[("x", int), ("y", int), ("p", int), ("t", int)])
        ev["x"], ev["y"], ev["p"], ev["t"] = ex, ey, ep, et
        np.testing.assert_array_equal(x.numpy(), events_to_frames(ev, (128, 128, 2), n_time_bins=T))
    # truncated inside a packet: found when read, named, or skipped
    victim = b.train.source(b.train.indices[0])
    with open(victim, "r+b") as f:
        f.truncate(os.path.getsize(victim) - 10)
    fresh = get_dataset("cifar10dvs", cfg(tmp_path, "cifar10dvs", cache_dir=str(tmp_path / "d")))
    with pytest.raises(CorruptSampleError, match=victim):
        fresh.train[0]
    skip = get_dataset(
        "cifar10dvs", cfg(tmp_path, "cifar10dvs", skip_corrupt=True, cache_dir=str(tmp_path / "e"))
    )
    skip.train[0]
    assert skip.info["skipped"] == 1 and skip.info["skipped_files"] == [victim]
    # not an AEDAT4 file at all: the cheap check names it
    (tmp_path / "CIFAR10DVS" / "cat" / "cifar10_cat_3.aedat4").write_bytes(b"garbage")
    with pytest.raises(CorruptSampleError, match="cifar10_cat_3.aedat4"):
        get_dataset("cifar10dvs", cfg(tmp_path, "cifar10dvs"))


def test_cifar10dvs_missing_class_folders(tmp_path):
    (tmp_path / "CIFAR10DVS" / "airplane").mkdir(parents=True)
    with pytest.raises(nm.DatasetNotFoundError) as e:
        get_dataset("cifar10dvs", cfg(tmp_path, "cifar10dvs"))
    msg = str(e.value)
    assert "airplane" in msg and "holds no .aedat4 files" in msg and "truck" in msg
    assert "CIFAR10DVS.zip" in msg


# --------------------------------------------------------------------------- N-Caltech101


def test_ncaltech101_bins_classes_and_split(tmp_path):
    rng = np.random.default_rng(3)
    classes = ["BACKGROUND_Google", "Faces_easy", "accordion"]
    truth = {}
    for c, name in enumerate(classes):
        for k in range(10):
            x, y, p, t = random_events(rng, 80, 200, 150, 300_000)
            x, y = x + 55, y + 89  # up to 254 and 238: the .bin range, beyond 240x180
            path = tmp_path / "NCALTECH101" / "Caltech101" / name / f"image_{k:04d}.bin"
            write_nmnist_bin(path, x, y, p, t)
            truth[str(path)] = ((x, y, p, t), c)  # the file's own coordinates, no shift
    b = get_dataset("ncaltech101", cfg(tmp_path, "ncaltech101"))
    assert b.num_classes == 3 and b.info["classes"] == classes
    assert b.input_shape == (2, 64, 64)  # the 256x256 .bin range at the default scale 0.25
    assert len(b.train) == 27 and len(b.test) == 3
    x, y = b.test[1]
    (ex, ey, ep, et), label = truth[b.test.source(b.test.indices[1])]
    assert y == label
    ev = np.zeros(len(ex), dtype=[("x", int), ("y", int), ("t", int), ("p", int)])
    ev["x"], ev["y"], ev["t"], ev["p"] = ex, ey, et, ep
    from spikeforge.data.frames import downsample

    small, sensor = downsample(ev, (256, 256, 2), 0.25)
    np.testing.assert_array_equal(x.numpy(), events_to_frames(small, sensor, n_time_bins=T))


# --------------------------------------------------------------------------- SHD / SSC


@pytest.mark.parametrize("name,n_classes", [("shd", 20), ("ssc", 35)])
def test_hsd_audio_sets(tmp_path, name, n_classes):
    rng = np.random.default_rng(4)
    data = {}
    for split, n in (("train", 6), ("test", 3)):
        spikes, labels = [], []
        for i in range(n):
            k = 50 + 10 * i
            times = np.sort(rng.uniform(0, 0.9, k)).astype(np.float32)
            units = rng.integers(0, 700, k).astype(np.uint16)
            spikes.append((times, units))
            labels.append((3 * i + 1) % n_classes)
        write_hsd(tmp_path / name.upper() / f"{name}_{split}.h5", spikes, labels, n_classes)
        data[split] = (spikes, labels)
    b = get_dataset(name, cfg(tmp_path, name))
    assert b.num_classes == n_classes and b.input_shape == (700,) and b.temporal
    assert len(b.train) == 6 and len(b.test) == 3
    for split, ds in (("train", b.train), ("test", b.test)):
        spikes, labels = data[split]
        for k in range(len(ds)):
            x, y = ds[k]
            assert y == labels[k] and x.shape == (T, 700)
            times, units = spikes[k]
            ev = np.zeros(len(times), dtype=[("t", int), ("x", int), ("p", int)])
            ev["t"] = np.rint(times.astype(np.float64) * 1e6)  # seconds -> microseconds
            ev["x"], ev["p"] = units, 1
            expect = events_to_frames(ev, (700, 1, 1), n_time_bins=T).reshape(T, 700)
            np.testing.assert_array_equal(x.numpy(), expect)
            assert 0 < x.sum() <= len(times)
    assert b.train.conversions == 6
    b2 = get_dataset(name, cfg(tmp_path, name))
    [b2.train[k] for k in range(6)]
    assert b2.train.conversions == 0


def test_hsd_corrupt_file_and_sample(tmp_path):
    rng = np.random.default_rng(5)
    spikes = [
        (np.sort(rng.uniform(0, 1, 30)).astype(np.float32), rng.integers(0, 700, 30))
        for _ in range(3)
    ]
    write_hsd(tmp_path / "SHD" / "shd_train.h5", spikes, [0, 1, 2], 20)
    test_path = tmp_path / "SHD" / "shd_test.h5"
    write_hsd(test_path, spikes, [0, 1, 2], 20)
    # a sample whose units do not match its times: found when read
    with h5py.File(tmp_path / "SHD" / "shd_train.h5", "r+") as f:
        f["spikes/units"][1] = np.arange(5, dtype=np.uint16)
    b = get_dataset("shd", cfg(tmp_path, "shd"))
    b.train[0]
    with pytest.raises(CorruptSampleError, match=r"shd_train.h5 \(sample 1\)"):
        b.train[1]
    b = get_dataset("shd", cfg(tmp_path, "shd", skip_corrupt=True, cache_dir=str(tmp_path / "c")))
    x, y = b.train[1]
    assert y == 2 and b.info["skipped"] == 1
    # a truncated HDF5 file is unusable as a whole: an error naming it
    test_path.write_bytes(test_path.read_bytes()[:1000])
    with pytest.raises(CorruptSampleError, match="shd_test.h5"):
        get_dataset("shd", cfg(tmp_path, "shd", skip_corrupt=True))


def test_registry_lists_the_datasets():
    from spikeforge.data.registry import DESCRIPTIONS

    for name in ("nmnist", "dvs_gesture", "cifar10dvs", "ncaltech101", "shd", "ssc"):
        assert name in DESCRIPTIONS
