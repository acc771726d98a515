"""DVS emulator: event counts and polarities of the log-intensity threshold model."""

import numpy as np
import pytest

from spikeforge.data.emulator import (
    EVENT_DTYPE,
    DVSParams,
    emulate_events,
    emulate_events_batch,
    threshold_maps,
)

EPS = 0.05


def _log_ramp(span, n=21, h=3, w=4, px=(1, 2), start=0.2):
    """Frames where pixel ``px`` follows a linear ramp in log(I + EPS) of ``span``."""
    t = np.linspace(0, 20_000, n)
    logs = np.log(start + EPS) + np.linspace(0, span, n)
    frames = np.full((n, h, w), start)
    frames[:, px[0], px[1]] = np.exp(logs) - EPS
    return frames, t


def test_static_image_gives_no_events():
    rng = np.random.default_rng(0)
    img = rng.random((16, 16))
    frames = np.repeat(img[None], 10, 0)
    ev = emulate_events(frames, np.arange(10) * 1000.0, c_on=0.1, c_off=0.1, sigma_threshold=0.05)
    assert ev.dtype == EVENT_DTYPE
    assert len(ev) == 0


def test_brightening_pixel_gives_on_events_only_there():
    frames, t = _log_ramp(1.03)
    ev = emulate_events(frames, t, c_on=0.1, c_off=0.1)
    assert len(ev) == 10  # floor(1.03 / 0.1)
    assert ev["p"].all()
    assert (ev["y"] == 1).all() and (ev["x"] == 2).all()
    assert (np.diff(ev["t"]) >= 0).all()


def test_darkening_pixel_gives_off_events_only_there():
    frames, t = _log_ramp(1.03)
    ev = emulate_events(frames[::-1].copy(), t, c_on=0.1, c_off=0.1)
    assert len(ev) == 10
    assert not ev["p"].any()
    assert (ev["y"] == 1).all() and (ev["x"] == 2).all()


def test_exact_count_and_interpolated_times_for_a_log_ramp():
    # L rises by 1.03 linearly over 20 ms; threshold C: floor(1.03 / C) events,
    # the i-th when L - L0 = i * C, i.e. at t = 20000 * i * C / 1.03 (us).
    frames, t = _log_ramp(1.03)
    for c, expected in ((0.2, 5), (0.1, 10), (0.05, 20), (0.025, 41)):
        ev = emulate_events(frames, t, c_on=c, c_off=c)
        assert len(ev) == expected
        i = np.arange(1, expected + 1)
        np.testing.assert_allclose(ev["t"], 20_000 * i * c / 1.03, atol=1.0)


def test_halving_threshold_doubles_events_for_smooth_ramp():
    # a smooth (linear-intensity) ramp on a 10x10 patch, up then down
    n = 41
    ramp = np.concatenate([np.linspace(0.1, 0.9, n), np.linspace(0.9, 0.1, n)[1:]])
    frames = np.repeat(ramp[:, None, None], 10, 1).repeat(10, 2)
    t = np.arange(len(ramp)) * 1000.0
    counts = [len(emulate_events(frames, t, c_on=c, c_off=c)) for c in (0.2, 0.1, 0.05)]
    assert counts[1] / counts[0] == pytest.approx(2, rel=0.2)
    assert counts[2] / counts[1] == pytest.approx(2, rel=0.1)
    ev = emulate_events(frames, t, c_on=0.1, c_off=0.1)
    on = ev["t"] <= t[n - 1]
    assert ev["p"][on].all() and not ev["p"][~on].any()


def test_large_step_gives_several_events_in_one_interval():
    frames = np.full((2, 1, 1), 0.1)
    frames[1] = 0.9
    ev = emulate_events(frames, np.array([0.0, 1000.0]), c_on=0.2, c_off=0.2, eps=EPS)
    step = np.log(0.9 + EPS) - np.log(0.1 + EPS)
    assert len(ev) == int(step // 0.2)
    # linearly interpolated inside the interval: evenly spaced
    np.testing.assert_allclose(ev["t"], 1000 * np.arange(1, len(ev) + 1) * 0.2 / step, atol=1)


def test_refractory_period_suppresses_events():
    frames, t = _log_ramp(1.03)
    free = emulate_events(frames, t, c_on=0.05, c_off=0.05)
    gaps = np.diff(free["t"])
    assert gaps.max() < 1000
    ev = emulate_events(frames, t, c_on=0.05, c_off=0.05, refractory_us=3000)
    assert 0 < len(ev) < len(free)
    assert np.diff(ev["t"]).min() >= 3000
    # the first event is unchanged; later ones come as soon as the pixel recovers
    assert ev["t"][0] == free["t"][0]
    np.testing.assert_array_equal(np.diff(ev["t"]), 3000)


def test_threshold_mismatch_and_noise_are_seeded():
    rng = np.random.default_rng(1)
    frames = np.clip(rng.random((1, 8, 8)) + np.linspace(0, 0.5, 12)[:, None, None], 0, 1)
    t = np.arange(12) * 5000.0
    p = DVSParams(c_on=0.1, c_off=0.1, sigma_threshold=0.03, shot_noise_rate_hz=50.0)
    a, b, c = (emulate_events(frames, t, p, seed=s) for s in (3, 3, 4))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    on, off = threshold_maps((8, 8), p, seed=3)
    assert on.shape == (8, 8) and on.std() > 0.01 and (on >= 0.01).all()
    assert np.array_equal(on, threshold_maps((8, 8), p, seed=3)[0])


def test_shot_noise_rate():
    frames = np.full((2, 20, 20), 0.5)
    t = np.array([0.0, 1e6])  # 1 s of a static scene
    ev = emulate_events(frames, t, shot_noise_rate_hz=5.0, seed=0)
    assert len(ev) == pytest.approx(5 * 400, rel=0.1)  # Poisson, 2000 expected
    assert 0.4 < ev["p"].mean() < 0.6
    assert (np.diff(ev["t"]) >= 0).all()


def test_leak_gives_on_events_at_leak_rate():
    frames = np.full((11, 10, 10), 0.5)
    t = np.linspace(0, 2e6, 11)  # 2 s static
    ev = emulate_events(frames, t, leak_rate_hz=1.0, seed=0)
    assert ev["p"].all()
    assert len(ev) == pytest.approx(2 * 100, abs=10)


def test_batch_matches_single_and_does_not_depend_on_batching():
    rng = np.random.default_rng(2)
    frames = rng.random((6, 3, 5, 5))
    t = np.arange(6) * 1000.0
    p = DVSParams(c_on=0.15, c_off=0.15, shot_noise_rate_hz=100.0)
    batch = emulate_events_batch(frames, t, p, seed=1, sample_ids=[10, 11, 12])
    single = emulate_events_batch(frames[:, 1:2], t, p, seed=1, sample_ids=[11])[0]
    assert np.array_equal(batch[1], single)
    assert len(batch) == 3 and all(len(e) for e in batch)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(c_on=0), "c_on"),
        (dict(c_off=-0.1), "c_off"),
        (dict(refractory_us=-1), "refractory_us"),
        (dict(eps=0), "eps"),
    ],
)
def test_bad_params(kwargs, match):
    with pytest.raises(ValueError, match=match):
        emulate_events(np.zeros((2, 2, 2)), np.array([0.0, 1.0]), **kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="increasing"):
        emulate_events(np.zeros((2, 2, 2)), np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="one entry per frame"):
        emulate_events(np.zeros((3, 2, 2)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        emulate_events(np.full((2, 2, 2), 2.0), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        emulate_events(np.zeros((2, 2)), np.array([0.0, 1.0]))
