"""Encoders: spike statistics, exact latency times, delta events, population codes."""

import math

import pytest
import torch

from spikeforge.functional.encoding import (
    delta_encode,
    delta_modulation_encode,
    direct_encode,
    gaussian_receptive_fields,
    latency_encode,
    latency_times,
    poisson_encode,
    population_encode,
    rate_encode,
)
from spikeforge.layers.encoding import (
    DeltaEncoder,
    DirectEncoder,
    LatencyEncoder,
    PoissonEncoder,
    PopulationEncoder,
    RateEncoder,
)


def test_direct_repeats_input():
    x = torch.rand(3, 4)
    out = direct_encode(x, 5)
    assert out.shape == (5, 3, 4)
    assert torch.equal(out[4], x)


def test_rate_matches_probability_statistically():
    x = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0]).repeat(2000, 1)  # [2000, 5]
    s = rate_encode(x, 10, generator=0)
    assert s.shape == (10, 2000, 5)
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    rate = s.mean(dim=(0, 1))
    # 20,000 Bernoulli draws per column: std <= 0.0036, allow ~5 sigma
    assert torch.allclose(rate, torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0]), atol=0.02)
    assert rate[0] == 0 and rate[-1] == 1


def test_rate_gain_and_poisson_rate():
    x = torch.full((50000,), 0.3)
    # gain 2: p = 0.6; gain 5: p = clamp(1.5) = 1
    assert abs(rate_encode(x, 2, 1, gain=2.0).mean().item() - 0.6) < 0.01
    assert rate_encode(x, 2, 1, gain=5.0).min().item() == 1.0
    # Poisson: P(spike) = 1 - exp(-max_rate * x)
    s = poisson_encode(x, 4, generator=3, max_rate=2.0)
    assert abs(s.mean().item() - (1 - math.exp(-0.6))) < 0.01


def test_same_seed_same_spikes_different_seed_differs():
    x = torch.rand(64, 10, generator=torch.Generator().manual_seed(0))
    for enc in (rate_encode, poisson_encode):
        a, b, c = enc(x, 8, 7), enc(x, 8, 7), enc(x, 8, 8)
        assert torch.equal(a, b)
        assert not torch.equal(a, c)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(rate_encode(x, 8, g1), rate_encode(x, 8, g2))
    v = torch.rand(32, generator=torch.Generator().manual_seed(1))
    p1, p2 = population_encode(v, 6, 8, generator=1), population_encode(v, 6, 8, generator=1)
    assert torch.equal(p1, p2)
    assert not torch.equal(p1, population_encode(v, 6, 8, generator=2))


def test_latency_linear_exact_times():
    # T = 11: t* = round(10 * (1 - x))
    x = torch.tensor([1.0, 0.75, 0.5, 0.2, 0.04, 0.0, 1.5, -1.0])
    t = latency_times(x, 11)
    assert t.tolist() == [0, 2, 5, 8, 10, -1, 0, -1]  # >1 clamps to 1; 0 and below never spike
    s = latency_encode(x, 11)
    assert s.shape == (11, 8)
    assert s.sum(0).tolist() == [1, 1, 1, 1, 1, 0, 1, 0]  # one spike per (spiking) input
    assert s[:, 1].argmax().item() == 2 and s[2, 1] == 1
    # threshold: inputs at or below it are silent
    assert latency_times(torch.tensor([0.3, 0.31]), 11, threshold=0.3).tolist() == [-1, 7]


def test_latency_log_exact_times_and_order():
    # T = 5, threshold 0.01: t* = round(4 * ln x / ln 0.01); x = 0.1 -> 2 exactly
    x = torch.tensor([1.0, 0.1, 0.01, 0.005, math.sqrt(0.1)])
    assert latency_times(x, 5, "log").tolist() == [0, 2, 4, -1, 1]
    # brighter never later, in both variants
    xs = torch.linspace(0.02, 1, 50)
    for m in ("linear", "log"):
        t = latency_times(xs, 16, m)
        assert (t[1:] <= t[:-1]).all()
        assert t[-1] == 0


def test_latency_batch_shape_and_module():
    x = torch.rand(4, 1, 3, 3)
    s = LatencyEncoder(6)(x)
    assert s.shape == (6, 4, 1, 3, 3)
    assert torch.equal(s, latency_encode(x, 6))
    assert (s.sum(0) <= 1).all()


def test_delta_known_signal():
    x = torch.tensor([0.0, 0.0, 0.5, 0.55, 0.2, 0.2, 0.45])
    # differences from x[-1] = 0: 0, 0, .5, .05, -.35, 0, .25
    assert delta_encode(x, 0.2).tolist() == [0, 0, 1, 0, -1, 0, 1]
    assert delta_encode(x, 0.2, off_spike=False).tolist() == [0, 0, 1, 0, 0, 0, 1]
    # padding: the first step compares with itself; without it with 0
    y = torch.tensor([1.0, 1.0, 1.0])
    assert delta_encode(y, 0.5).tolist() == [1, 0, 0]
    assert delta_encode(y, 0.5, padding=True).tolist() == [0, 0, 0]
    # time-first over a batch: channels independent
    xb = torch.stack([x, -x], 1)
    out = delta_encode(xb, 0.2)
    assert torch.equal(out[:, 0], -out[:, 1])


def test_delta_modulation_tracks_reference():
    # a jump of 0.55 with threshold 0.2: 2 ON events on consecutive steps (ref 0 -> 0.4)
    x = torch.tensor([0.0, 0.55, 0.55, 0.55, 0.3, 0.3])
    out = delta_modulation_encode(x, 0.2)
    assert out.tolist() == [0, 1, 1, 0, 0, 0]  # 0.3 - 0.4 = -0.1: no OFF event
    # slow ramp: plain differences never fire, the tracking reference does
    ramp = torch.arange(20, dtype=torch.float32) * 0.05
    assert delta_encode(ramp, 0.2, padding=True).abs().sum() == 0
    dm = delta_modulation_encode(ramp, 0.2)
    assert dm.sum().item() == 4  # 0.95 / 0.2 -> 4 crossings
    assert torch.equal(DeltaEncoder(0.2, tracking=True)(ramp), dm)


def test_population_peak_at_right_neuron():
    x = torch.tensor([0.0, 0.25, 0.5, 0.74, 1.0])
    r = gaussian_receptive_fields(x, 5)  # centres 0, .25, .5, .75, 1
    assert r.shape == (5, 5)
    assert r.argmax(-1).tolist() == [0, 1, 2, 3, 4]
    assert torch.allclose(r[2, 2], torch.tensor(1.0))
    # width sigma = 1 / (1.5 * 4): a neighbour's response exp(-0.25^2 / (2 sigma^2))
    sigma = 1 / (1.5 * 4)
    assert torch.allclose(r[2, 3], torch.tensor(math.exp(-(0.25**2) / (2 * sigma**2))))
    # rate code: the centre neuron fires most; latency: it fires first
    v = torch.full((4000,), 0.5)
    s = population_encode(v, 5, 10, generator=0)
    assert s.shape == (10, 4000, 5)
    assert s.mean((0, 1)).argmax().item() == 2
    lat = population_encode(torch.tensor([0.25]), 5, 8, method="latency")
    assert lat[0, 0, 1] == 1 and lat[:, 0, 1].sum() == 1


def test_modules_seeded_and_shapes():
    x = torch.rand(8, 3)
    a, b = RateEncoder(5, seed=3), RateEncoder(5, seed=3)
    assert torch.equal(a(x), b(x))
    assert RateEncoder(5, seed=3)(x).shape == (5, 8, 3)
    assert PoissonEncoder(4, seed=1)(x).shape == (4, 8, 3)
    assert DirectEncoder(2)(x).shape == (2, 8, 3)
    assert PopulationEncoder(7, 4, seed=0)(x).shape == (4, 8, 3, 7)
    g = torch.Generator().manual_seed(9)
    assert torch.equal(RateEncoder(5)(x, g), rate_encode(x, 5, torch.Generator().manual_seed(9)))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: rate_encode(torch.rand(3), 0), "time_steps"),
        (lambda: latency_encode(torch.rand(3), 4, method="exp"), "method"),
        (lambda: latency_encode(torch.rand(3), 4, method="log", threshold=0.0), "threshold"),
        (lambda: delta_encode(torch.rand(3), threshold=0), "threshold"),
        (lambda: delta_modulation_encode(torch.rand(3), threshold=-1), "threshold"),
        (lambda: gaussian_receptive_fields(torch.rand(3), 1), "n_neurons"),
        (lambda: gaussian_receptive_fields(torch.rand(3), 4, 1.0, 0.0), "x_max"),
        (lambda: population_encode(torch.rand(3), 4, 4, method="spiky"), "method"),
        (lambda: LatencyEncoder(4, method="cubic"), "method"),
        (lambda: RateEncoder(0), "time_steps"),
    ],
)
def test_bad_args_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
