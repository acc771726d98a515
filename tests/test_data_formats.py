"""Every release format, written from its specification with known events
(tests/event_writers.py), read through the public raw-event call and the
frame datasets: exactly those events; every copy cut inside a record, packet
or index table is an error naming the file, or with skip_corrupt skipped and
counted (the count in messages equal to info["skipped"])."""

from __future__ import annotations

import logging
import os
import re

import event_writers as w
import numpy as np
import pytest

from spikeforge.data import get_dataset, get_raw_events
from spikeforge.data.events import VISION_EVENT_DTYPE, CorruptSampleError
from spikeforge.data.frames import FrameTransform, events_to_frames
from spikeforge.data.readers import aedat4, aedat31, atis_bin, npy_events
from spikeforge.train.config import DataConfig

pytest.importorskip("tonic")
h5py = pytest.importorskip("h5py")


def cfg(root, name, **kw):
    kw.setdefault("time_steps", 4)
    return DataConfig(name=name, root=str(root), **kw)


def assert_events(ev, t, x, y, p):
    assert ev.dtype == VISION_EVENT_DTYPE
    np.testing.assert_array_equal(ev["t"], t)
    np.testing.assert_array_equal(ev["x"], x)
    np.testing.assert_array_equal(ev["y"], y)
    np.testing.assert_array_equal(ev["p"], p)


def all_items(ds):
    return [ds[k] for k in range(len(ds))]


# --------------------------------------------------------------------------- exact events


def test_nmnist_bin_with_overflow_markers(tmp_path):
    rng = np.random.default_rng(0)
    truth = {}
    for split, folder in (("train", "Train"), ("test", "Test")):
        for digit in (2, 7):
            ev = w.random_events(rng, 150, 34, 34, 300_000)  # ~36 overflow markers each
            path = tmp_path / "NMNIST" / folder / str(digit) / "a.bin"
            assert w.write_atis_bin(path, *ev) > 30
            truth[(split, digit)] = ev
    for split in ("train", "test"):
        ds = get_raw_events("nmnist", cfg(tmp_path, "nmnist"), split)
        assert ds.sensor_size == (34, 34, 2) and len(ds) == 2
        for ev, label in all_items(ds):
            assert_events(ev, *truth[(split, label)])
    b = get_dataset("nmnist", cfg(tmp_path, "nmnist"))
    x, label = b.test[0]
    raw, _ = get_raw_events("nmnist", cfg(tmp_path, "nmnist"), "test")[0]
    np.testing.assert_array_equal(x.numpy(), events_to_frames(raw, (34, 34, 2), n_time_bins=4))


def test_off_sensor_values_quote_the_file(tmp_path):
    w.write_atis_bin(tmp_path / "NMNIST" / "Train" / "1" / "a.bin", [5, 9], [40, 3], [3, 3], [0, 1])
    w.write_atis_bin(tmp_path / "NMNIST" / "Test" / "1" / "a.bin", [5], [3], [3], [0])
    ds = get_raw_events("nmnist", cfg(tmp_path, "nmnist"), "train")
    with pytest.raises(CorruptSampleError, match=r"a\.bin.*x = 40"):
        ds[0]


def test_ncaltech101_full_8bit_range_not_refused(tmp_path):
    rng = np.random.default_rng(1)
    t, x, y, p = w.random_events(rng, 300, 256, 240, 400_000)
    x[:2], y[:2] = 255, 239  # the format's largest coordinates (y == 240 is the marker)
    y[2:4] = [241, 255]
    for c in ("cat", "dog"):
        for k in range(10):
            w.write_atis_bin(tmp_path / "NCALTECH101" / "Caltech101" / c / f"{k}.bin", t, x, y, p)
    ds = get_raw_events("ncaltech101", cfg(tmp_path, "ncaltech101"), "train")
    assert ds.sensor_size == (256, 256, 2) and len(ds) == 18
    ev, _ = ds[0]
    order = np.argsort(t, kind="stable")
    assert_events(ev, t[order], x[order], y[order], p[order])
    b = get_dataset("ncaltech101", cfg(tmp_path, "ncaltech101"))
    assert b.input_shape == (2, 64, 64)
    raw, _ = get_raw_events("ncaltech101", cfg(tmp_path, "ncaltech101"), "test")[0]
    tf = FrameTransform((256, 256, 2), n_time_bins=4, spatial_factor=0.25)
    np.testing.assert_array_equal(b.test[0][0].numpy(), tf(raw))


def test_gesture_npy_release_and_bad_polarity(tmp_path):
    rng = np.random.default_rng(2)
    t, x, y, p = w.random_events(rng, 200, 128, 128, 6_000_000)
    folder = tmp_path / "DVSGesture"
    w.write_gesture_npy(folder / "ibmGestureTrain" / "user01_led" / "4.npy", t, x, y, p)
    w.write_gesture_npy(folder / "ibmGestureTest" / "user24_led" / "9.npy", t, x, y, p)
    ev, label = get_raw_events("dvs_gesture", cfg(tmp_path, "dvs_gesture"), "train")[0]
    assert label == 4
    assert_events(ev, t, x, y, p)
    p2 = p.copy()
    p2[7] = 2  # Tonic would cast this to True silently
    w.write_gesture_npy(folder / "ibmGestureTest" / "user24_led" / "9.npy", t, x, y, p2)
    with pytest.raises(CorruptSampleError, match=r"9\.npy.*polarity must be 0 or 1.*\[2\]"):
        get_raw_events("dvs_gesture", cfg(tmp_path, "dvs_gesture"), "test")[0]


def write_gesture_releases(root_aedat, root_npy, rng):
    """Two recordings in IBM's AEDAT 3.1 release and their gestures in Tonic's
    .npy layout; returns {(split, label): (t, x, y, p)} of the gestures."""
    d = root_aedat / "DVSGesture" / "DvsGesture"
    truth = {}
    for split, user, classes in (("train", "user01_fluorescent", [3, 1, 11]),
                                 ("test", "user24_led", [2, 7])):  # fmt: skip
        t0 = (2**31 - 2_000_000) if split == "train" else 5_000_000  # crosses an overflow
        t, x, y, p = w.random_events(rng, 400, 128, 128, 4_000_000, t0=t0)
        w.write_aedat31(d / f"{user}.aedat", t, x, y, p, per_packet=64, invalid_at=[10])
        keep = np.ones(len(t), bool)
        keep[10] = False
        t, x, y, p = t[keep], x[keep], y[keep], p[keep]
        edges = np.linspace(t0 + 100_000, t0 + 3_900_000, len(classes) + 1).astype(np.int64)
        rows = [(c, int(s), int(e)) for c, s, e in zip(classes, edges[:-1], edges[1:])]
        w.write_labels_csv(d / f"{user}_labels.csv", rows)
        with open(d / f"trials_to_{split}.txt", "w") as f:
            f.write(f"{user}.aedat\n")
        npy_split = "ibmGestureTrain" if split == "train" else "ibmGestureTest"
        for c, s, e in rows:
            m = (t >= s) & (t < e)
            truth[(split, c - 1)] = (t[m], x[m], y[m], p[m])
            path = root_npy / "DVSGesture" / npy_split / user / f"{c - 1}.npy"
            w.write_gesture_npy(path, t[m], x[m], y[m], p[m])
    return truth


def test_gesture_aedat31_release_equals_npy_release(tmp_path):
    truth = write_gesture_releases(tmp_path / "a", tmp_path / "n", np.random.default_rng(3))
    for split in ("train", "test"):
        got = {}
        for root in ("a", "n"):
            ds = get_raw_events("dvs_gesture", cfg(tmp_path / root, "dvs_gesture"), split)
            got[root] = {label: ev for ev, label in all_items(ds)}
        assert got["a"].keys() == got["n"].keys() == {k for s, k in truth if s == split}
        for label, ev in got["a"].items():
            assert_events(ev, *truth[(split, label)])
            np.testing.assert_array_equal(ev, got["n"][label])
    b = get_dataset("dvs_gesture", cfg(tmp_path / "a", "dvs_gesture"))
    assert len(b.train) == 3 and len(b.test) == 2 and b.input_shape == (2, 128, 128)
    assert "trials_to_train" in b.info["split"]


@pytest.mark.parametrize("compression", [0, 1, 3], ids=["none", "lz4", "zstd"])
def test_cifar10dvs_aedat4_exact(tmp_path, compression):
    pytest.importorskip("aedat")
    rng = np.random.default_rng(4)
    truth = {}
    for c, name in enumerate(("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                              "horse", "ship", "truck")):  # fmt: skip
        ev = w.random_events(rng, 90, 128, 128, 1_000_000, t0=1_500_000_000_000_000)
        w.write_aedat4(tmp_path / "CIFAR10DVS" / name / "0.aedat4", *ev, compression=compression)
        truth[c] = ev
    ds = get_raw_events("cifar10dvs", cfg(tmp_path, "cifar10dvs"), "train")
    assert len(ds) == 10
    for ev, label in all_items(ds):
        assert_events(ev, *truth[label])


@pytest.mark.parametrize("name,n_classes", [("shd", 20), ("ssc", 35)])
def test_hdf5_exact_and_ssc_valid(tmp_path, name, n_classes):
    rng = np.random.default_rng(5)
    truth = {}
    splits = ("train", "valid", "test") if name == "ssc" else ("train", "test")
    for split in splits:
        spikes = [(np.sort(rng.uniform(0, 1, 40)).astype(np.float32),
                   rng.integers(0, 700, 40).astype(np.uint16)) for _ in range(3)]  # fmt: skip
        labels = rng.integers(0, n_classes, 3)
        w.write_hsd(tmp_path / name.upper() / f"{name}_{split}.h5", spikes, labels, n_classes)
        truth[split] = (spikes, labels)
    for split in splits:
        ds = get_raw_events(name, cfg(tmp_path, name), split)
        assert ds.sensor_size == (700, 1, 1)
        for k, (ev, label) in enumerate(all_items(ds)):
            times, units = truth[split][0][k]
            assert label == truth[split][1][k]
            np.testing.assert_array_equal(ev["t"], np.rint(times.astype(np.float64) * 1e6))
            np.testing.assert_array_equal(ev["x"], units)
            assert (ev["p"] == 0).all()
    if name == "shd":
        with pytest.raises(ValueError, match="no 'valid' split"):
            get_raw_events(name, cfg(tmp_path, name), "valid")
    else:
        b = get_dataset(name, cfg(tmp_path, name))
        assert b.valid is not None and len(b.valid) == 3 and b.info["valid_size"] == 3


# --------------------------------------------------------------------------- cut copies


def cut_copies(src, folder, offsets):
    data = open(src, "rb").read()
    paths = []
    for o in offsets:
        path = os.path.join(folder, f"cut{o:05d}{os.path.splitext(src)[1]}")
        with open(path, "wb") as f:
            f.write(data[:o])
        paths.append(path)
    return paths


def check_cuts(tmp_path, name, cuts, check, caplog, split="train"):
    """With skip_corrupt every cut copy is skipped, named once and counted,
    and the last message quotes info["skipped"]; without it, every one is an
    error naming it (the cheap build-time ``check`` or the full read)."""
    cuts = {str(c) for c in cuts}
    with caplog.at_level(logging.WARNING):
        ds = get_raw_events(name, cfg(tmp_path, name, skip_corrupt=True), split)
        all_items(ds)  # reads every sample the build-time check left
    rec, info = ds.recordings, ds.info
    bad = [i for i in ds.all_indices if rec.items[i][0] in cuts]
    assert bad and sorted(info["skipped_files"]) == sorted(rec.data[i] for i in bad)
    assert info["skipped"] == len(bad)
    counts = re.findall(r"\((\d+) (?:skipped so far|in all)\)", caplog.text)
    assert counts and int(counts[-1]) == info["skipped"]
    for i in bad:
        if check(rec.items[i][0]) is None:
            with pytest.raises(CorruptSampleError) as e:
                rec[i]
            assert e.value.path == rec.data[i]
    return ds


def test_bin_cut_inside_every_record(tmp_path, caplog):
    src = tmp_path / "src.bin"
    n_markers = w.write_atis_bin(src, *w.random_events(np.random.default_rng(6), 12, 34, 34,
                                                       40_000))  # fmt: skip
    size = os.path.getsize(src)
    assert n_markers > 0
    folder = tmp_path / "NMNIST" / "Train" / "5"
    folder.mkdir(parents=True)
    cuts = cut_copies(src, folder, [o for o in range(1, size) if o % 5])
    w.write_atis_bin(folder / "good.bin", [1], [1], [1], [1])
    w.write_atis_bin(tmp_path / "NMNIST" / "Test" / "5" / "good.bin", [1], [1], [1], [1])
    with pytest.raises(CorruptSampleError, match="cut00001.bin"):
        get_raw_events("nmnist", cfg(tmp_path, "nmnist"), "train")
    assert check_cuts(tmp_path, "nmnist", cuts, atis_bin.check, caplog).info["skipped"] == len(
        cuts
    )


def test_npy_cut_anywhere(tmp_path, caplog):
    src = tmp_path / "src.npy"
    w.write_gesture_npy(src, *w.random_events(np.random.default_rng(7), 8, 128, 128, 10**6))
    data = src.read_bytes()
    base = tmp_path / "DVSGesture" / "ibmGestureTrain"
    cuts = []
    for o in range(1, len(data)):  # the label is the file name: one folder per copy
        path = base / f"user01_cut{o:04d}" / "3.npy"
        path.parent.mkdir(parents=True)
        path.write_bytes(data[:o])
        cuts.append(path)
    w.write_gesture_npy(base / "user01_led" / "0.npy", [1], [1], [1], [1])
    w.write_gesture_npy(base.parent / "ibmGestureTest" / "user24_led" / "1.npy", [1], [1], [1], [1])
    ds = check_cuts(tmp_path, "dvs_gesture", cuts, npy_events.check, caplog)
    assert ds.info["skipped"] == len(cuts)


@pytest.mark.parametrize("compression", [0, 1, 3], ids=["none", "lz4", "zstd"])
def test_aedat4_cut_inside_every_packet_and_the_table(tmp_path, caplog, compression):
    pytest.importorskip("aedat")
    src = tmp_path / "src.aedat4"
    ev = w.random_events(np.random.default_rng(8), 12, 128, 128, 10**6, t0=10**15)
    ranges = w.write_aedat4(src, *ev, packets=2, compression=compression)
    offsets = list(range(1, os.path.getsize(src)))  # header, packets, table: every byte
    assert ranges[0][0] < 450 and ranges[-1][1] == os.path.getsize(src)
    folder = tmp_path / "CIFAR10DVS" / "cat"
    folder.mkdir(parents=True)
    cuts = cut_copies(src, folder, offsets)
    for c in ("airplane", "automobile", "bird", "deer", "dog", "frog", "horse", "ship", "truck"):
        for k in range(10):  # a good file of each class in each split
            path = tmp_path / "CIFAR10DVS" / c / f"ok{k}.aedat4"
            w.write_aedat4(path, *ev, compression=compression)
    skipped = 0
    for split in ("train", "test"):
        caplog.clear()
        skipped += check_cuts(tmp_path, "cifar10dvs", cuts, aedat4.check, caplog, split).info[
            "skipped"
        ]
    assert skipped == len(cuts)
    if compression:
        return
    # the frames see the same: nothing cut is ever framed or cached
    b = get_dataset("cifar10dvs", cfg(tmp_path, "cifar10dvs", skip_corrupt=True))
    for ds in (b.train, b.test):
        all_items(ds)
    assert b.info["skipped"] == len(cuts)
    assert b.train.conversions + b.test.conversions == 90


def test_aedat31_cut_inside_every_packet(tmp_path, caplog):
    rng = np.random.default_rng(9)
    src = tmp_path / "src.aedat"
    t, x, y, p = w.random_events(rng, 40, 128, 128, 10**6)
    ranges = w.write_aedat31(src, t, x, y, p, per_packet=16)
    boundaries = {e for _, e in ranges}
    data = src.read_bytes()
    d = tmp_path / "DVSGesture" / "DvsGesture"
    d.mkdir(parents=True)
    names = []
    for o in range(1, len(data)):
        if o in boundaries:
            continue  # a cut between two packets is a valid shorter recording
        (d / f"user01_cut{o:04d}.aedat").write_bytes(data[:o])
        w.write_labels_csv(d / f"user01_cut{o:04d}_labels.csv", [(2, 0, 2 * 10**6)])
        names.append(f"user01_cut{o:04d}.aedat")
    for user in ("user02_ok", "user24_ok"):
        (d / f"{user}.aedat").write_bytes(data)
        w.write_labels_csv(d / f"{user}_labels.csv", [(2, 0, 2 * 10**6)])
    (d / "trials_to_train.txt").write_text("\n".join(names + ["user02_ok.aedat"]) + "\n")
    (d / "trials_to_test.txt").write_text("user24_ok.aedat\n")
    with pytest.raises(CorruptSampleError, match="user01_cut0001.aedat"):
        get_raw_events("dvs_gesture", cfg(tmp_path, "dvs_gesture"), "train")
    ds = check_cuts(tmp_path, "dvs_gesture", [str(d / n) for n in names], aedat31.check, caplog)
    assert ds.info["skipped"] == len(names)
    ev, label = ds[0]
    assert label == 1 and len(ev) == 40


def test_hdf5_cut_anywhere_is_an_error_naming_it(tmp_path):
    rng = np.random.default_rng(10)
    spikes = [(np.sort(rng.uniform(0, 1, 30)).astype(np.float32), rng.integers(0, 700, 30))
              for _ in range(4)]  # fmt: skip
    path = tmp_path / "SHD" / "shd_train.h5"
    w.write_hsd(path, spikes, [0, 1, 2, 3], 20)
    w.write_hsd(tmp_path / "SHD" / "shd_test.h5", spikes, [0, 1, 2, 3], 20)
    data = path.read_bytes()
    for o in range(1, len(data), max(1, len(data) // 40)):
        path.write_bytes(data[:o])
        with pytest.raises(CorruptSampleError, match="shd_train.h5"):
            get_raw_events("shd", cfg(tmp_path, "shd", skip_corrupt=True), "train")


def test_every_message_quotes_info_skipped(tmp_path):
    # one file bad at build time, one found bad when read: the split is all corrupt
    w.write_atis_bin(tmp_path / "NMNIST" / "Train" / "1" / "a.bin", [1, 2], [1, 2], [1, 1], [0, 0])
    (tmp_path / "NMNIST" / "Train" / "1" / "a.bin").write_bytes(b"\0" * 7)
    w.write_atis_bin(tmp_path / "NMNIST" / "Train" / "2" / "b.bin", [1], [99], [1], [0])
    w.write_atis_bin(tmp_path / "NMNIST" / "Test" / "2" / "b.bin", [1], [1], [1], [0])
    b = get_dataset("nmnist", cfg(tmp_path, "nmnist", skip_corrupt=True))
    assert b.info["skipped"] == 1
    with pytest.raises(CorruptSampleError, match=r"\(2 skipped in all\)"):
        b.train[0]
    assert b.info["skipped"] == 2
    (tmp_path / "NMNIST" / "Test" / "2" / "b.bin").write_bytes(b"\0" * 3)
    with pytest.raises(CorruptSampleError, match=r"split 'test'.*\(2 skipped in all\)"):
        get_dataset("nmnist", cfg(tmp_path, "nmnist", skip_corrupt=True))
