"""events_to_frames against Tonic's own to_frame, the event filters, the frame cache."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from spikeforge.data.frame_cache import FrameCache, FramesDataset
from spikeforge.data.frames import (
    CorruptSampleError,
    FrameTransform,
    denoise,
    downsample,
    events_to_frames,
)

tonic = pytest.importorskip("tonic")
from tonic.functional import to_frame_numpy  # noqa: E402

CAMERA_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])
NMNIST_DTYPE = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
AUDIO_DTYPE = np.dtype([("t", int), ("x", int), ("p", int)])


def camera_events(rng, n, w, h, t_max=300_000, dtype=CAMERA_DTYPE):
    ev = np.zeros(n, dtype=dtype)
    ev["t"] = np.sort(rng.integers(0, t_max, n))
    ev["x"] = rng.integers(0, w, n)
    ev["y"] = rng.integers(0, h, n)
    ev["p"] = rng.integers(0, 2, n)
    return ev


def audio_events(rng, n, channels=700):
    ev = np.zeros(n, dtype=AUDIO_DTYPE)
    ev["t"] = np.sort(rng.integers(0, 1_000_000, n))
    ev["x"] = rng.integers(0, channels, n)
    ev["p"] = 1  # Tonic's SHD gives every spike polarity 1
    return ev


MODES = (
    [dict(n_time_bins=k, overlap=o) for k in (1, 4, 16) for o in (0.0, 0.25, 0.5)]
    + [dict(n_event_bins=k, overlap=o) for k in (1, 5, 16) for o in (0.0, 0.3)]
    + [
        dict(time_window=w, overlap=o, include_incomplete=inc)
        for w in (1000.0, 50_000.0)
        for o in (0.0, 300.0)
        for inc in (False, True)
    ]
    + [
        dict(event_count=c, overlap=o, include_incomplete=inc)
        for c in (10, 333)
        for o in (0, 5)
        for inc in (False, True)
    ]
)


def tonic_frames(events, sensor_size, **mode):
    """Tonic's frames as float32 [T, P, H, W] (audio gets H = 1)."""
    ref = to_frame_numpy(events.copy(), sensor_size, **mode)
    if "y" not in events.dtype.names:
        ref = ref[:, :, None, :]
    return ref.astype(np.float32)


@pytest.mark.parametrize("n", [1, 2, 9, 1000, 4321])
@pytest.mark.parametrize(
    "kind", ["nmnist", "gesture", "audio"], ids=["nmnist34", "gesture128", "shd700"]
)
def test_frames_equal_tonic_to_frame_in_every_mode(kind, n):
    rng = np.random.default_rng(n)
    if kind == "nmnist":
        sensor, ev = (34, 34, 2), camera_events(rng, n, 34, 34, dtype=NMNIST_DTYPE)
    elif kind == "gesture":
        sensor, ev = (128, 128, 2), camera_events(rng, n, 128, 128)
    else:
        sensor, ev = (700, 1, 1), audio_events(rng, n)
    for mode in MODES:
        ours = events_to_frames(ev, sensor, **mode)
        ref = tonic_frames(ev, sensor, **mode)
        assert ours.dtype == np.float32
        assert ours.shape == ref.shape, mode
        np.testing.assert_array_equal(ours, ref, err_msg=str(mode))


def test_frames_match_tonic_transform_and_count_every_event():
    rng = np.random.default_rng(1)
    ev = camera_events(rng, 5000, 34, 34)
    ours = events_to_frames(ev, (34, 34, 2), n_event_bins=10)
    ref = tonic.transforms.ToFrame(sensor_size=(34, 34, 2), n_event_bins=10)(ev)
    np.testing.assert_array_equal(ours, ref)
    assert ours.sum() == 5000  # 5000 // 10 events per bin, none lost
    # the frame content is the polarity/pixel histogram of each bin
    first = ev[:500]
    expect = np.zeros((2, 34, 34))
    np.add.at(expect, (first["p"].astype(int), first["y"], first["x"]), 1)
    np.testing.assert_array_equal(ours[0], expect)


def test_repeated_timestamps_and_single_event():
    ev = np.zeros(6, dtype=CAMERA_DTYPE)
    ev["t"] = 500  # zero duration
    ev["x"] = [0, 1, 2, 3, 4, 5]
    for mode in MODES:
        np.testing.assert_array_equal(
            events_to_frames(ev, (8, 8, 2), **mode), tonic_frames(ev, (8, 8, 2), **mode)
        )


def test_empty_events_give_zero_frames():
    ev = np.zeros(0, dtype=CAMERA_DTYPE)
    assert events_to_frames(ev, (34, 34, 2), n_time_bins=5).shape == (5, 2, 34, 34)
    assert events_to_frames(ev, (34, 34, 2), n_event_bins=3).sum() == 0
    assert events_to_frames(ev, (34, 34, 2), time_window=1000.0).shape == (1, 2, 34, 34)


def test_input_not_modified_and_unsorted_input_sorted():
    rng = np.random.default_rng(2)
    ev = audio_events(rng, 300)
    before = ev.copy()
    events_to_frames(ev, (700, 1, 1), n_time_bins=4)
    np.testing.assert_array_equal(ev, before)  # Tonic zeroes p in place here
    cam = camera_events(rng, 300, 34, 34)
    shuffled = cam[rng.permutation(len(cam))]
    np.testing.assert_array_equal(
        events_to_frames(shuffled, (34, 34, 2), n_time_bins=4),
        events_to_frames(cam, (34, 34, 2), n_time_bins=4),
    )


def test_bad_events_and_arguments_raise_clearly():
    ev = camera_events(np.random.default_rng(3), 50, 34, 34)
    ev["x"][7] = 40
    with pytest.raises(ValueError, match="'x'.*outside"):
        events_to_frames(ev, (34, 34, 2), n_time_bins=4)
    ok = camera_events(np.random.default_rng(3), 50, 34, 34)
    with pytest.raises(ValueError, match="Single polarity"):
        events_to_frames(ok, (34, 34, 1), n_time_bins=4)
    with pytest.raises(ValueError, match="exactly one"):
        events_to_frames(ok, (34, 34, 2), n_time_bins=4, n_event_bins=4)
    with pytest.raises(ValueError, match="overlap"):
        events_to_frames(ok, (34, 34, 2), n_time_bins=4, overlap=1.0)


def test_negative_polarity_maps_to_last_channel_like_tonic():
    ev = camera_events(np.random.default_rng(4), 200, 16, 16, dtype=NMNIST_DTYPE)
    ev["p"] = np.where(ev["p"] == 0, -1, 1)
    np.testing.assert_array_equal(
        events_to_frames(ev, (16, 16, 2), n_time_bins=3),
        tonic_frames(ev, (16, 16, 2), n_time_bins=3),
    )


def test_denoise_equals_tonic_after_the_first_filter_time():
    rng = np.random.default_rng(5)
    for n in (30, 2000):
        ev = camera_events(rng, n, 20, 20, t_max=200_000)
        ev["t"] += 10_000  # Tonic keeps nearly every event before filter_time
        ours = denoise(ev, 5000)
        ref = tonic.functional.denoise_numpy(ev, filter_time=5000)
        np.testing.assert_array_equal(ours, ref)
        assert 0 < len(ours) < n or n == 30


def test_denoise_rule_by_hand():
    ev = np.zeros(4, dtype=CAMERA_DTYPE)
    # (x, y, t): a lone event, a neighbour pair 100 us apart, a pair too far apart
    ev["x"], ev["y"], ev["t"] = [0, 10, 11, 20], [0, 5, 5, 9], [0, 1000, 1100, 9000]
    kept = denoise(ev, filter_time=500)
    assert kept["t"].tolist() == [1100]  # only the second of the close pair has support


def test_downsample_equals_tonic():
    ev = camera_events(np.random.default_rng(6), 1000, 128, 128)
    ours, sensor = downsample(ev, (128, 128, 2), 0.25)
    ref = tonic.transforms.Downsample(spatial_factor=0.25)(ev)
    np.testing.assert_array_equal(ours, ref)
    assert sensor == (32, 32, 2)
    assert ours["x"].max() < 32 and ours["y"].max() < 32
    _, odd = downsample(ev, (240, 180, 2), 0.25)
    assert odd == (60, 45, 2)


def test_frame_transform_chains_denoise_downsample_frames():
    ev = camera_events(np.random.default_rng(7), 3000, 128, 128)
    tf = FrameTransform((128, 128, 2), n_time_bins=5, spatial_factor=0.5, denoise_time=20_000.0)
    out = tf(ev)
    small, sensor = downsample(denoise(ev, 20_000.0), (128, 128, 2), 0.5)
    np.testing.assert_array_equal(out, events_to_frames(small, sensor, n_time_bins=5))
    assert out.shape == (5, *tf.frame_shape) == (5, 2, 64, 64)


# --------------------------------------------------------------------------- cache


def test_frame_cache_roundtrip_dtype_and_keys(tmp_path):
    cache = FrameCache(tmp_path, {"dataset": "x", "n": 4})
    frames = np.arange(2 * 2 * 3 * 3, dtype=np.float32).reshape(2, 2, 3, 3)
    cache.save(5, frames)
    assert np.load(cache.path(5)).dtype == np.uint8  # stored compactly
    np.testing.assert_array_equal(cache.load(5, (2, 3, 3)), frames)
    assert cache.load(5, (2, 3, 3)).dtype == np.float32
    big = frames * 1000
    cache.save(6, big)
    assert np.load(cache.path(6)).dtype == np.uint16
    np.testing.assert_array_equal(cache.load(6), big)
    assert cache.load(7) is None
    assert not [f for f in os.listdir(cache.directory) if f.endswith(".tmp")]
    other = FrameCache(tmp_path, {"dataset": "x", "n": 5})
    assert other.directory != cache.directory and other.load(5) is None
    same = FrameCache(tmp_path, {"n": 4, "dataset": "x"})
    assert same.directory == cache.directory


def test_corrupt_cache_entry_reads_as_miss(tmp_path):
    cache = FrameCache(tmp_path, {"k": 1})
    cache.save(0, np.ones((2, 2, 4, 4), np.float32))
    with open(cache.path(0), "r+b") as f:
        f.truncate(60)
    assert cache.load(0, (2, 4, 4)) is None
    assert cache.rebuilt == 1
    cache.save(1, np.ones((2, 2, 4, 4), np.float32))
    assert cache.load(1, (2, 5, 5)) is None  # wrong shape for these parameters


class ToyEvents:
    """A Tonic-like dataset that counts how often each sample is read."""

    def __init__(self, n=4, bad=()):
        rng = np.random.default_rng(8)
        self.events = [camera_events(rng, 100 + 10 * i, 34, 34) for i in range(n)]
        self.targets = [i % 3 for i in range(n)]
        self.data = [f"/data/sample{i}.bin" for i in range(n)]
        self.bad = set(bad)
        self.reads = 0

    def __len__(self):
        return len(self.events)

    def __getitem__(self, i):
        self.reads += 1
        if i in self.bad:
            raise ValueError("could not broadcast input array")
        return self.events[i], self.targets[i]


def test_frames_dataset_converts_once_and_reuses_cache(tmp_path):
    params = {"sensor_size": (34, 34, 2), "n_time_bins": 4}
    src = ToyEvents()
    ds = FramesDataset(src, params, FrameCache(tmp_path, {"toy": 1}))
    x, y = ds[2]
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32
    assert x.shape == (4, 2, 34, 34) and y == 2
    np.testing.assert_array_equal(
        x.numpy(), events_to_frames(src.events[2], (34, 34, 2), n_time_bins=4)
    )
    for k in range(len(ds)):
        ds[k]
    assert ds.conversions == 4
    for k in range(len(ds)):  # second epoch: all from the cache
        ds[k]
    assert ds.conversions == 4 and src.reads == 4
    src2 = ToyEvents()  # second run
    ds2 = FramesDataset(src2, params, FrameCache(tmp_path, {"toy": 1}))
    assert torch.equal(ds2[2][0], x) and ds2[2][1] == 2
    assert ds2.conversions == 0 and src2.reads == 0
    # a corrupt entry is rebuilt, not fatal
    with open(ds2.cache.path(1), "wb") as f:
        f.write(b"\x93NUMPY garbage")
    x1, _ = ds2[1]
    assert ds2.conversions == 1 and ds2.cache.rebuilt == 1
    assert torch.equal(x1, ds[1][0])
    assert ds2.cache.load(1) is not None


def test_frames_dataset_flatten_and_indices(tmp_path):
    ds = FramesDataset(
        ToyEvents(), FrameTransform((34, 34, 2), n_event_bins=3), None, indices=[3, 1], flatten=True
    )
    assert len(ds) == 2 and ds.sample_shape == (2 * 34 * 34,)
    x, y = ds[0]
    assert x.shape == (3, 2 * 34 * 34) and y == 0


def test_frames_dataset_corrupt_sample_named_or_skipped(tmp_path, caplog):
    params = FrameTransform((34, 34, 2), n_time_bins=2)
    ds = FramesDataset(ToyEvents(bad={1}), params, None)
    with pytest.raises(CorruptSampleError, match="/data/sample1.bin"):
        ds[1]
    report = {"skipped": 0}
    ds = FramesDataset(ToyEvents(bad={1}), params, None, skip_corrupt=True, report=report)
    with caplog.at_level("WARNING"):
        x, y = ds[1]
    assert y == ds[2][1] and torch.equal(x, ds[2][0])  # the next good sample
    assert ds.skipped == ["/data/sample1.bin"] and report["skipped"] == 1
    assert "sample1.bin" in caplog.text and "1 skipped" in caplog.text
    ds[1]
    assert report["skipped"] == 1  # counted once
