"""The event-driven simulator against the clock-driven network it was lowered from."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spikeforge.deploy import DeploymentError, lower_model
from spikeforge.deploy.event_driven import EventDrivenSimulator
from spikeforge.layers import Flatten, TimeDistributed
from spikeforge.neurons import IF, LIF, MultiSpikeIF


def _neuron(kind: str, reset: str, rng: np.random.Generator) -> nn.Module:
    v_reset = 0.0 if reset == "hard" else None
    th = float(rng.uniform(0.3, 1.0))
    if kind == "if":
        return IF(v_threshold=th, v_reset=v_reset, backend="reference")
    if kind == "if_multi":
        return MultiSpikeIF(v_threshold=th, backend="reference")
    return LIF(tau=float(rng.uniform(1.5, 4.0)), v_threshold=th, v_reset=v_reset,
               decay_input=bool(rng.integers(2)), backend="reference")


def _random_network(seed: int, kind: str, reset: str, conv: bool, bias: bool):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    if conv:
        shape = (2, 7, 7)
        layers = [
            TimeDistributed(nn.Conv2d(2, 4, 3, stride=int(rng.integers(1, 3)), padding=1,
                                      bias=bias)),
            _neuron(kind, reset, rng),
            Flatten(),
        ]
        n = 4 * (4 if layers[0].layer.stride[0] == 2 else 7) ** 2
    else:
        shape = (12,)
        layers, n = [], 12
    width = int(rng.integers(5, 12))
    layers += [TimeDistributed(nn.Linear(n, width, bias=bias)), _neuron(kind, reset, rng),
               TimeDistributed(nn.Linear(width, 4, bias=bias)), _neuron(kind, reset, rng)]
    model = nn.Sequential(*layers)
    for p in model.parameters():
        nn.init.uniform_(p, -0.2, 0.9)
    return model, shape


@pytest.mark.parametrize(("kind", "reset"), [("if", "hard"), ("if", "soft"), ("lif", "hard"),
                                             ("lif", "soft"), ("if_multi", "soft")])
def test_grid_mode_reproduces_clock_driven_spikes(kind, reset):
    for seed in range(10):
        conv, bias = seed % 2 == 0, seed % 3 == 0
        model, shape = _random_network(seed, kind, reset, conv, bias)
        net = lower_model(model, shape)
        rng = np.random.default_rng(100 + seed)
        t_steps = int(rng.integers(3, 9))
        frames = (rng.random((t_steps, 1, *shape)) < 0.25).astype(np.float64)
        frames *= rng.integers(1, 3, size=frames.shape)  # some pixels get two events
        with torch.no_grad():
            ref = model.double()(torch.from_numpy(frames))[:, 0].reshape(t_steps, -1).numpy()
        steps, idx = [], []
        for t in range(t_steps):
            flat = frames[t, 0].reshape(-1)
            for i in np.flatnonzero(flat):
                for _ in range(int(flat[i])):
                    steps.append(t)
                    idx.append(i)
        sim = EventDrivenSimulator(net, mode="grid")
        res = sim.run_sample(np.array(steps), np.array(idx), n_steps=t_steps)
        np.testing.assert_array_equal(res.raster, np.minimum(ref, 127).astype(np.int8),
                                      err_msg=f"seed {seed}")
        np.testing.assert_array_equal(res.out_counts, ref.sum(0), err_msg=f"seed {seed}")


def test_multispike_if_fires_the_count_and_events_mode_bursts_alike():
    # H = 2.5 -> 2 spikes (V 0.5); 0.7 -> 0; 1.1 -> 1 (V 0.1); -2.9 -> 0; -2.4 -> 0
    n = MultiSpikeIF(v_threshold=1.0)
    x = torch.tensor([2.5, 0.2, 0.4, -3.0, 0.5]).reshape(5, 1).requires_grad_()
    s = n(x)
    assert s.flatten().tolist() == [2.0, 0.0, 1.0, 0.0, 0.0]
    s.sum().backward()
    # backward: the surrogate's derivative at the nearest multiple of the threshold
    # (H = 2.5 -> 3 V_th; 1.1 -> V_th), the reset's path included like IF's
    assert torch.all(x.grad > 0) and x.grad[0] > x.grad[3]
    with pytest.raises(ValueError, match="v_reset must be None"):
        MultiSpikeIF(v_reset=0.0)
    # one input event of weight 2.5: the multi-spike and the single-spike IF both fire
    # twice at once event-driven (a burst), the multi-spike one also on the clock
    for neuron in (MultiSpikeIF(), IF(v_reset=None)):
        lin = nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            lin.weight.fill_(2.5)
        net = lower_model(_chain(TimeDistributed(lin), neuron), (1,))
        res = EventDrivenSimulator(net, mode="events").run_sample(np.array([0.0]), np.array([0]))
        assert res.out_counts.tolist() == [2]
    grid = EventDrivenSimulator(net, mode="grid").run_sample(np.array([0]), np.array([0]), 2)
    assert grid.raster[:, 0].tolist() == [1, 1]  # single-spike IF: the second one a step later


def _chain(*layers):
    return nn.Sequential(*layers)


def test_events_mode_hand_computed_if_and_lif():
    lin = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(0.6)
    # IF, hard reset: 0.6, 1.2 -> spike (reset 0), 0.6, 1.2 -> spike
    net = lower_model(_chain(TimeDistributed(lin), IF(v_threshold=1.0)), (1,))
    res = EventDrivenSimulator(net, mode="events").run_sample(
        np.array([0.0, 5.0, 7.0, 30.0]), np.zeros(4, np.int64), dt=10.0)
    assert res.out_counts.tolist() == [2] and res.sops == 4
    # LIF tau=2, decay_input=False: V jumps by w, decays by 0.5 per dt = 10 time units.
    # t=0: 0.6; t=10: 0.6*0.5 + 0.6 = 0.9; t=15: 0.9*0.5**0.5 + 0.6 = 1.236 -> spike.
    lif = LIF(tau=2.0, v_threshold=1.0, decay_input=False)
    net = lower_model(_chain(TimeDistributed(lin), lif), (1,))
    sim = EventDrivenSimulator(net, mode="events")
    assert sim.run_sample(np.array([0.0, 10.0]), np.zeros(2, np.int64), dt=10.0).out_counts[0] == 0
    res = sim.run_sample(np.array([0.0, 10.0, 15.0]), np.zeros(3, np.int64), dt=10.0)
    assert res.out_counts[0] == 1 and res.decision_time == 15.0
    # Soft reset: one input of 2.5 thresholds fires twice at once (2.5 -> 1.5 -> 0.5).
    with torch.no_grad():
        lin.weight.fill_(2.5)
    net = lower_model(_chain(TimeDistributed(lin), IF(v_threshold=1.0, v_reset=None)), (1,))
    res = EventDrivenSimulator(net, mode="events").run_sample(
        np.array([0.0]), np.zeros(1, np.int64), dt=1.0)
    assert res.out_counts[0] == 2


def test_events_mode_delay_and_depth_first():
    torch.manual_seed(0)
    a, b = nn.Linear(3, 2, bias=False), nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        a.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))
        b.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    model = _chain(TimeDistributed(a), IF(v_threshold=1.0), TimeDistributed(b), IF(v_threshold=1.0))
    net = lower_model(model, (3,))
    t, i = np.array([0.0, 1.0, 2.0]), np.array([0, 1, 2])
    now = EventDrivenSimulator(net, mode="events").run_sample(t, i, dt=1.0)
    late = EventDrivenSimulator(net, mode="events", delay=0.5).run_sample(t, i, dt=1.0)
    assert now.out_counts.tolist() == late.out_counts.tolist() == [1, 2]
    # Output 1 takes the lead with its second spike: at t=2 when spikes pass both layers at
    # once (depth-first), one synaptic delay (0.5) later otherwise.
    assert now.decision_time == 2.0 and late.decision_time == 2.5


def test_grid_mode_readout_and_max_pool_match_model_scores():
    from spikeforge.models import build_model
    from spikeforge.train.config import ModelConfig

    torch.manual_seed(3)
    model = build_model("default_cnn", (2, 12, 12), 5,
                        ModelConfig(channels=[4, 6], backend="reference"))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):  # non-trivial running statistics to fold
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    net = lower_model(model, (2, 12, 12))
    assert [st.pool is not None for st in net.stages] == [False, True, False, True, False]
    rng = np.random.default_rng(0)
    frames = (rng.random((6, 1, 2, 12, 12)) < 0.3).astype(np.float64)
    with torch.no_grad():
        ref = model.double()(torch.from_numpy(frames))[:, 0].sum(0).numpy()
    steps, idx = np.nonzero(frames[:, 0].reshape(6, -1))
    res = EventDrivenSimulator(net, mode="grid").run_sample(steps, idx, n_steps=6)
    np.testing.assert_allclose(res.scores, ref, rtol=1e-9, atol=1e-9)
    with pytest.raises(DeploymentError, match="bias"):
        EventDrivenSimulator(net, mode="events")  # folded batch norm needs a clock


def test_deeper_event_cnn_with_multispike_if_runs_on_the_grid_like_the_model():
    from spikeforge.models import build_model
    from spikeforge.train.config import ModelConfig

    torch.manual_seed(4)
    cfg = ModelConfig(channels=[4, 6, 6], neuron="if_multi", v_reset=None, backend="reference")
    model = build_model("event_cnn", (2, 12, 12), 5, cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4.0)  # enough drive for spikes, several per step, to reach the readout
    assert len(model.features) == 6  # two strided convolutions and one more at stride 1
    net = lower_model(model, (2, 12, 12))
    assert [st.neurons.multi_spike for st in net.stages[:-1]] == [True] * 3
    rng = np.random.default_rng(1)
    frames = (rng.random((5, 1, 2, 12, 12)) < 0.3) * rng.integers(1, 4, (5, 1, 2, 12, 12))
    with torch.no_grad():
        ref = model.double()(torch.from_numpy(frames.astype(np.float64)))[:, 0].sum(0).numpy()
    steps, idx = np.nonzero(frames[:, 0].reshape(5, -1))
    reps = frames[:, 0].reshape(5, -1)[steps, idx]
    res = EventDrivenSimulator(net, mode="grid").run_sample(np.repeat(steps, reps),
                                                          np.repeat(idx, reps), n_steps=5)
    np.testing.assert_allclose(res.scores, ref, rtol=1e-9, atol=1e-9)
    assert res.raster.max() > 1  # several spikes in one step reached the last neurons


def test_unsupported_layers_are_named():
    with pytest.raises(DeploymentError, match="'1'.*ReLU"):
        lower_model(_chain(TimeDistributed(nn.Linear(4, 4)), nn.ReLU(), IF()), (4,))
    with pytest.raises(DeploymentError, match="max pooling of analog"):
        lower_model(_chain(TimeDistributed(nn.Conv2d(1, 2, 3)), TimeDistributed(nn.MaxPool2d(2)),
                           IF()), (1, 6, 6))
    with pytest.raises(DeploymentError, match="no spiking neurons"):
        lower_model(_chain(TimeDistributed(nn.Linear(4, 4))), (4,))


def test_simulate_dataset_grid_predictions_equal_the_model_on_frames():
    from spikeforge.data.events import VISION_EVENT_DTYPE, EventDataset
    from spikeforge.data.frames import events_to_frames
    from spikeforge.deploy.event_driven import simulate_dataset

    rng = np.random.default_rng(1)

    class Fake(EventDataset):
        sensor_size, num_classes = (6, 5, 2), 3

        def __init__(self):
            self.items = []
            for k in range(6):
                n = int(rng.integers(20, 60))
                ev = np.zeros(n, VISION_EVENT_DTYPE)
                ev["t"] = np.sort(rng.integers(0, 10_000, n))
                ev["x"], ev["y"], ev["p"] = rng.integers(0, 6, n), rng.integers(0, 5, n), \
                    rng.integers(0, 2, n)
                self.items.append((ev, k % 3))

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

    torch.manual_seed(0)
    model = nn.Sequential(TimeDistributed(nn.Conv2d(2, 3, 3, padding=1, bias=False)),
                          IF(v_threshold=0.5, v_reset=None, backend="reference"), Flatten(),
                          TimeDistributed(nn.Linear(3 * 5 * 6, 3, bias=False)))
    net = lower_model(model, (2, 5, 6))
    ds = Fake()
    res = simulate_dataset(EventDrivenSimulator(net, mode="grid"), ds, 4, keep_samples=True)
    for (ev, _), r in zip(ds.items, res.per_sample):
        frames = torch.from_numpy(np.asarray(events_to_frames(ev, (6, 5, 2), n_time_bins=4)))
        with torch.no_grad():
            ref = model.double()(frames.double().unsqueeze(1))[:, 0].sum(0).numpy()
        np.testing.assert_allclose(r.scores, ref, rtol=1e-9, atol=1e-9)
    ev_res = simulate_dataset(EventDrivenSimulator(net, mode="events"), ds, 4)
    assert ev_res.samples == 6 and ev_res.sops_per_sample > 0 and ev_res.events_per_second > 0
