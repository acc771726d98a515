"""nmnist-sim: simulated N-MNIST saccades through the DVS emulator (small subsets)."""

import os

import numpy as np
import pytest
import torch

import spikeforge.data  # noqa: F401  (registers the datasets)
from spikeforge.data import nmnist_sim as ns
from spikeforge.data.embedded import load_mnist5k, stratified_split
from spikeforge.data.registry import DATASETS
from spikeforge.train.config import DataConfig

LIMIT = 12


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("nmnist-sim-cache"))


@pytest.fixture(scope="module")
def bundle(cache):
    return ns.nmnist_sim(DataConfig(name="nmnist-sim", time_steps=6, cache_dir=cache), limit=LIMIT)


def test_registered():
    assert "nmnist-sim" in DATASETS


def test_shapes_and_metadata(bundle):
    assert bundle.temporal and bundle.num_classes == 10
    assert bundle.input_shape == (2, 34, 34)
    assert len(bundle.train) == LIMIT and len(bundle.test) == LIMIT
    x, y = bundle.train[0]
    assert x.shape == (6, 2, 34, 34) and x.dtype == torch.float32
    assert isinstance(int(y), int)
    assert bundle.info["events_per_sample"] > 500


def test_frames_non_empty_both_polarities_every_bin(bundle):
    for ds in (bundle.train, bundle.test):
        for i in range(len(ds)):
            x, _ = ds[i]
            per_bin_pol = x.sum((2, 3))  # [T, 2]
            assert (per_bin_pol > 0).all(), f"sample {i}: an empty bin or polarity"
            assert (x >= 0).all() and (x == x.round()).all()  # event counts


def test_labels_match_mnist5k_split(bundle):
    _, labels = load_mnist5k()
    tr, te = stratified_split(labels, 0.2)
    assert bundle.train.labels.tolist() == labels[tr[:LIMIT]].tolist()
    assert bundle.test.labels.tolist() == labels[te[:LIMIT]].tolist()


def test_events_follow_the_digit(bundle):
    # events lie where the digit (moved by at most saccade_px / 2) has edges
    images, labels = load_mnist5k()
    tr, _ = stratified_split(labels, 0.2)
    x, _ = bundle.train[0]
    counts = x.sum((0, 1)).numpy()
    digit = np.zeros((34, 34))
    digit[3:31, 3:31] = images[tr[0]] > 0
    near = np.zeros_like(digit, dtype=bool)
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            near |= np.roll(np.roll(digit, dy, 0), dx, 1) > 0
    assert counts[near].sum() > 0.97 * counts.sum()  # only shot noise elsewhere


def test_deterministic_and_subset_consistent(bundle, tmp_path):
    other = ns.nmnist_sim(
        DataConfig(time_steps=6, cache_dir=str(tmp_path)), limit=LIMIT // 2
    )  # fresh cache dir: generated again, on a smaller subset
    assert not other.info["cache_hit"]
    assert torch.equal(other.train.frames, bundle.train.frames[: LIMIT // 2])
    assert torch.equal(other.test.frames, bundle.test.frames[: LIMIT // 2])


def test_cache_is_reused(bundle, cache, monkeypatch):
    path = bundle.info["cache"]
    assert path.startswith(cache) and os.path.exists(path)
    assert os.path.basename(os.path.dirname(path)) == "nmnist-sim"
    mtime = os.path.getmtime(path)

    def boom(*a, **k):
        raise AssertionError("regenerated instead of loading the cache")

    monkeypatch.setattr(ns, "simulate_events", boom)
    again = ns.nmnist_sim(DataConfig(time_steps=6, cache_dir=cache), limit=LIMIT)
    assert again.info["cache_hit"]
    assert os.path.getmtime(path) == mtime
    assert torch.equal(again.train.frames, bundle.train.frames)
    # other parameters -> another file
    assert ns.cache_path(ns.NMNISTSimParams(dvs=ns.DVSParams(c_on=0.3)), 6, LIMIT, cache) != path
    assert ns.cache_path(ns.NMNISTSimParams(), 8, LIMIT, cache) != path


def test_corrupt_cache_is_regenerated(tmp_path):
    cfg = DataConfig(time_steps=3, cache_dir=str(tmp_path))
    first = ns.nmnist_sim(cfg, limit=2)
    with open(first.info["cache"], "wb") as f:
        f.write(b"not a zip file")
    again = ns.nmnist_sim(cfg, limit=2)
    assert not again.info["cache_hit"]
    assert torch.equal(again.train.frames, first.train.frames)


def test_augment_from_config(tmp_path):
    cfg = DataConfig(time_steps=3, cache_dir=str(tmp_path), augment=["translate:2", "flip"])
    b = ns.nmnist_sim(cfg, limit=2)
    x = torch.stack([b.train[i][0] for i in range(2)])
    y = b.train_transform(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    assert (
        ns.nmnist_sim(DataConfig(time_steps=3, cache_dir=str(tmp_path)), limit=2).train_transform
        is None
    )
    with pytest.raises(ValueError, match="'spin'"):
        ns.nmnist_sim(DataConfig(time_steps=3, cache_dir=str(tmp_path), augment=["spin"]), limit=2)


def test_saccade_path_triangle():
    p = ns.NMNISTSimParams(saccade_px=4.0, saccade_ms=100.0, frames_per_saccade=10)
    off, t = ns.saccade_path(p)
    assert off.shape == (31, 2) and t.shape == (31,)
    assert t[-1] == 300_000
    np.testing.assert_allclose(off[[0, 10, 20, 30]], [[0, -2], [2, 2], [-2, 2], [0, -2]])
    # constant speed along each leg
    steps = np.linalg.norm(np.diff(off, axis=0), axis=1)
    np.testing.assert_allclose(steps[:10], steps[0])


def test_render_shift_is_bilinear():
    d = np.zeros((1, 28, 28), np.float32)
    d[0, 10, 10] = 1.0
    whole = ns.render_shifted(d, 2.0, -1.0)
    assert whole[0, 3 + 10 - 1, 3 + 10 + 2] == 1.0 and whole.sum() == 1.0
    half = ns.render_shifted(d, 0.5, 0.0)
    np.testing.assert_allclose(half[0, 13, 13:15], [0.5, 0.5])
    assert half.sum() == pytest.approx(1.0)


def test_raw_events_public_cached_and_frames_built_from_them(bundle, cache, monkeypatch):
    from spikeforge.data import get_raw_events
    from spikeforge.data.events import VISION_EVENT_DTYPE
    from spikeforge.data.frames import events_to_frames

    ds = ns.nmnist_sim_events(DataConfig(time_steps=6, cache_dir=cache), "test", limit=LIMIT)
    assert len(ds) == LIMIT and ds.sensor_size == (34, 34, 2) and ds.num_classes == 10
    for i in range(LIMIT):
        ev, label = ds[i]
        assert ev.dtype == VISION_EVENT_DTYPE and label == int(bundle.test.labels[i])
        assert np.all(np.diff(ev["t"]) >= 0) and ev["x"].max() < 34 and ev["y"].max() < 34
        assert set(np.unique(ev["p"])) <= {0, 1}
        frames = np.clip(events_to_frames(ev, (34, 34, 2), n_time_bins=6), 0, 255)
        np.testing.assert_array_equal(frames, bundle.test.frames[i].numpy())

    def boom(*a, **k):
        raise AssertionError("simulated again instead of loading the event cache")

    monkeypatch.setattr(ns, "simulate_events", boom)
    again = ns.nmnist_sim_events(DataConfig(cache_dir=cache), "test", limit=LIMIT)
    np.testing.assert_array_equal(again[3][0], ds[3][0])
    with pytest.raises(ValueError, match="no raw events"):
        get_raw_events("mnist5k", DataConfig(), "test")
    with pytest.raises(ValueError, match="train and test"):
        ns.nmnist_sim_events(DataConfig(cache_dir=cache), "valid", limit=LIMIT)
