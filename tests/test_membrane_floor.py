"""The membrane floor ``v_min`` (sinabs ``min_v_mem``, Speck's ``threshold_low``): the
reference neurons, dispatch, the config key, the event-driven simulator (grid mode equal
to the clock-driven network; events mode clipping after each event) and NIR metadata."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spikeforge.deploy import lower_model
from spikeforge.deploy.event_driven import EventDrivenSimulator
from spikeforge.functional.neuron import choose_backend
from spikeforge.layers import Flatten, TimeDistributed
from spikeforge.neurons import ALIF, IF, LIF, MultiSpikeIF
from spikeforge.ops import dispatch


def test_reference_neurons_clip_the_membrane_after_the_reset():
    x = torch.tensor([-3.0, 1.5, 0.6]).reshape(3, 1)
    # IF, soft reset, floor -1: V = -1 (clipped from -3), 0.5, 1.1 -> spike, 0.1
    out = IF(v_reset=None, v_min=-1.0)(x, record_membrane=True)
    assert out.spikes.flatten().tolist() == [0.0, 0.0, 1.0]
    torch.testing.assert_close(out.v_seq.flatten(), torch.tensor([-1.0, 0.5, 0.1]))
    # without the floor the membrane stays far below: -3, -1.5, -0.9, no spike
    assert IF(v_reset=None)(x).sum() == 0
    # hard reset, LIF (tau 2, decay_input: V <- V + (X - V)/2): -1.5 -> floor -1, ...
    lif = LIF(tau=2.0, v_min=-1.0)(x, record_membrane=True)
    torch.testing.assert_close(lif.v_seq.flatten(), torch.tensor([-1.0, 0.25, 0.425]))
    # multi-spike IF: -3 -> -1; -1 + 3.5 = 2.5 -> 2 spikes, V 0.5
    ms = MultiSpikeIF(v_min=-1.0)(torch.tensor([-3.0, 3.5]).reshape(2, 1), record_membrane=True)
    assert ms.spikes.flatten().tolist() == [0.0, 2.0]
    torch.testing.assert_close(ms.v_seq.flatten(), torch.tensor([-1.0, 0.5]))
    # ALIF's reset goes through the same floor
    al = ALIF(v_reset=None, v_min=-0.5, backend="reference")(x, record_membrane=True)
    assert float(al.v_seq.min()) == -0.5
    # clipped below the floor: no gradient back to the input that drove it there
    xg = torch.tensor([-3.0, 0.4]).reshape(2, 1).requires_grad_()
    IF(v_reset=None, v_min=-1.0, detach_reset=True)(xg, return_state=True).state.v.sum().backward()
    assert xg.grad.flatten().tolist() == [0.0, 1.0]


def test_bad_floors_are_clear_errors():
    with pytest.raises(ValueError, match="v_min .* below the threshold"):
        IF(v_reset=None, v_min=1.0)
    with pytest.raises(ValueError, match="v_min .* at or below the rest potential"):
        LIF(v_reset=0.0, v_min=0.2)
    with pytest.raises(ValueError, match="finite number"):
        MultiSpikeIF(v_min=float("nan"))


def test_a_floored_neuron_takes_only_a_kernel_that_runs_the_floor():
    """The CPU kernel runs the floor for IF/LIF (``auto`` picks it; tests/test_ops_cpu_floor.py
    checks it against the reference); Triton and the other kinds do not: ``auto`` falls
    back to the reference and asking for them by name is an error naming ``v_min``."""
    floored = IF(v_reset=None, v_min=-1.0)
    x = torch.tensor([-3.0, 1.5, 0.6]).reshape(3, 1)
    want = "cpu" if dispatch.is_available("cpu", torch.device("cpu")) else "reference"
    assert floored._backend_for(x, ()) == want
    lif = LIF(tau=2.0, v_min=-1.0)
    assert lif._backend_for(x, lif.params()) == want
    assert floored(x).flatten().tolist() == [0.0, 0.0, 1.0]  # the floor was applied
    assert dispatch.support("cpu").unsupported(floored.spec, torch.float32) is None
    assert "v_min" in dispatch.support("triton").unsupported(floored.spec, torch.float32)
    with pytest.raises(ValueError, match="v_min"):
        choose_backend("triton", floored.spec, floored.surrogate, torch.float32,
                       torch.device("cpu"), ())
    alif = ALIF(v_reset=None, v_min=-0.5)
    assert "v_min" in dispatch.support("cpu").unsupported(alif.spec, torch.float32)
    assert alif._backend_for(x, alif.params()) == "reference"
    with pytest.raises(ValueError, match="v_min"):
        ALIF(v_reset=None, v_min=-0.5, backend="cpu")


def test_config_key_model_neuron_params_v_min():
    from spikeforge.train import load_config
    from spikeforge.train.config import ConfigError

    base = ["model.neuron=if_multi", "model.v_reset=null"]
    assert load_config(None, [*base, "model.neuron_params.v_min=-1"]).model.neuron_params == {
        "v_min": -1.0}
    with pytest.raises(ConfigError, match="neuron_params.*v_min .* below the threshold"):
        load_config(None, [*base, "model.neuron_params.v_min=2"])
    with pytest.raises(ConfigError, match="neuron_params.v_min must be a number"):
        load_config(None, [*base, "model.neuron_params.v_min=low"])


def _floored_net(seed: int, kind: str, floor: bool):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)

    def neuron():
        th = float(rng.uniform(0.3, 1.0))
        v_min = -float(rng.uniform(0.05, 0.6)) * th if floor else None
        reset = None if kind != "if_hard" else 0.0
        if kind == "if_multi":
            return MultiSpikeIF(v_threshold=th, backend="reference", v_min=v_min)
        if kind == "lif":
            return LIF(tau=float(rng.uniform(1.5, 4.0)), v_threshold=th, v_reset=None,
                       decay_input=bool(rng.integers(2)), backend="reference", v_min=v_min)
        return IF(v_threshold=th, v_reset=reset, backend="reference", v_min=v_min)

    conv = seed % 2 == 0
    layers = [TimeDistributed(nn.Conv2d(2, 3, 3, padding=1, bias=False)), neuron(), Flatten(),
              TimeDistributed(nn.Linear(3 * 25, 6, bias=False))] if conv else \
        [TimeDistributed(nn.Linear(50, 6, bias=False))]
    layers += [neuron(), TimeDistributed(nn.Linear(6, 4, bias=False)), neuron()]
    model = nn.Sequential(*layers) if conv else nn.Sequential(Flatten(), *layers)
    for p in model.parameters():  # inhibition strong enough to reach the floor
        nn.init.uniform_(p, -0.8, 0.9)
    return model


@pytest.mark.parametrize("kind", ["if_soft", "if_hard", "lif", "if_multi"])
def test_grid_mode_reproduces_the_floored_clock_driven_network(kind):
    bites = 0
    for seed in range(8):
        rng = np.random.default_rng(50 + seed)
        t_steps = int(rng.integers(3, 9))
        frames = (rng.random((t_steps, 1, 2, 5, 5)) < 0.3) * rng.integers(1, 3, (t_steps, 1,
                                                                               2, 5, 5))
        frames = frames.astype(np.float64)
        spikes = []
        for floor in (True, False):
            model = _floored_net(seed, kind, floor).double()
            with torch.no_grad():
                ref = model(torch.from_numpy(frames))[:, 0].reshape(t_steps, -1).numpy()
            spikes.append(ref)
            if not floor:
                continue
            net = lower_model(model, (2, 5, 5))
            steps, idx = np.nonzero(frames[:, 0].reshape(t_steps, -1))
            reps = frames[:, 0].reshape(t_steps, -1)[steps, idx].astype(np.int64)
            res = EventDrivenSimulator(net, mode="grid").run_sample(
                np.repeat(steps, reps), np.repeat(idx, reps), n_steps=t_steps)
            np.testing.assert_array_equal(res.raster, np.minimum(ref, 127).astype(np.int8),
                                          err_msg=f"seed {seed}")
        bites += int(not np.array_equal(*spikes))
    assert bites >= 2  # the floor changed the clock-driven spikes: the test can fail


def _one_neuron(neuron, weights):
    lin = nn.Linear(len(weights), 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([weights]))
    return lower_model(nn.Sequential(TimeDistributed(lin), neuron), (len(weights),))


def test_events_mode_clips_after_each_event_where_a_clock_step_sums_first():
    # An inhibitory event (-3) then an excitatory one (+2.5) inside one trained step.
    t, i = np.array([0.0, 0.5]), np.array([0, 1])
    counts = {}
    for v_min in (None, -1.0):
        net = _one_neuron(IF(v_reset=None, v_min=v_min), [-3.0, 2.5])
        ev = EventDrivenSimulator(net, mode="events").run_sample(t, i, dt=1.0)
        grid = EventDrivenSimulator(net, mode="grid").run_sample(np.array([0, 0]), i, n_steps=1)
        counts[v_min] = (int(ev.out_counts[0]), int(grid.out_counts[0]))
    # event by event with the floor: -3 -> -1, then 1.5 -> a spike; without: -0.5, none.
    # On the clock both events sum to -0.5 first: no spike either way.
    assert counts == {None: (0, 0), -1.0: (1, 0)}
    # LIF (tau 2, decay_input=False, dt = 10): -2 at t=0 -> floor -0.5; leaks to -0.25 by
    # t=10, + 1.3 = 1.05 -> spike. Without the floor: -2 -> -1 -> 0.3, none.
    for v_min, want in ((None, 0), (-0.5, 1)):
        net = _one_neuron(LIF(tau=2.0, v_reset=None, decay_input=False, v_min=v_min), [-2, 1.3])
        res = EventDrivenSimulator(net, mode="events").run_sample(
            np.array([0.0, 10.0]), np.array([0, 1]), dt=10.0)
        assert res.out_counts[0] == want


def test_nir_round_trip_keeps_the_floor_in_spikeforge_metadata():
    pytest.importorskip("nir")
    from spikeforge.deploy import NIRExportWarning, from_nir, to_nir

    model = nn.Sequential(TimeDistributed(nn.Linear(3, 2, bias=False)),
                          IF(v_reset=None, v_min=-1.0))
    with pytest.warns(NIRExportWarning, match="membrane floor v_min=-1.0"):
        graph = to_nir(model, (3,))
    back = from_nir(graph)
    floors = [m.spec.v_min for m in back.modules() if isinstance(m, IF)]
    assert floors == [-1.0]
