"""Imported NIR graphs on the event-driven simulator: a chain read from a NIR file (ours,
or snnTorch 1.0's with its strict ``>`` threshold) lowers to the same stages as a
spikeforge model, and grid mode reproduces the imported graph's clock-driven spikes."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

nir = pytest.importorskip("nir")

from spikeforge.deploy import DeploymentError, NIRExportWarning, export_nir, from_nir  # noqa: E402
from spikeforge.deploy.event_driven import EventDrivenSimulator  # noqa: E402
from spikeforge.deploy.lower import SpikeOrPool2d, lower_model  # noqa: E402
from spikeforge.layers import Flatten, TimeDistributed  # noqa: E402
from spikeforge.neurons import IF, LIF  # noqa: E402

REF = "reference"


def _events(frames: np.ndarray):
    """Grid events (step, flat index) of integer count frames ``[T, *shape]``."""
    steps, idx = [], []
    for t in range(frames.shape[0]):
        flat = frames[t].reshape(-1)
        for i in np.flatnonzero(flat):
            steps += [t] * int(flat[i])
            idx += [i] * int(flat[i])
    return np.array(steps, np.int64), np.array(idx, np.int64)


def _grid_equals_graph(graph, shape, seed, t_steps=6, rate=0.3):
    """Lower ``graph``, run random input events on the grid, compare every output spike
    with the graph's own forward."""
    net = lower_model(graph, shape)
    rng = np.random.default_rng(seed)
    frames = (rng.random((t_steps, *shape)) < rate) * rng.integers(1, 3, (t_steps, *shape))
    with torch.no_grad():
        ref = graph.double()(torch.from_numpy(frames.astype(np.float64))[:, None])
    ref = ref[:, 0].reshape(t_steps, -1).numpy()
    steps, idx = _events(frames)
    res = EventDrivenSimulator(net, mode="grid").run_sample(steps, idx, n_steps=t_steps)
    np.testing.assert_array_equal(res.raster, ref.astype(np.int8))
    return net, ref


@pytest.mark.parametrize("seed", range(4))
def test_imported_conv_chain_with_max_pool_runs_on_the_grid(seed, tmp_path):
    """An event-frame CNN (conv, IF/LIF, max pool after neurons, flatten, linear), written
    to NIR by spikeforge (max pool -> SumPool2d + Threshold) and read back."""
    torch.manual_seed(seed)
    soft = seed % 2 == 0
    model = nn.Sequential(
        TimeDistributed(nn.Conv2d(2, 4, 3, padding=1, bias=False)),
        IF(v_threshold=0.8, v_reset=None if soft else 0.0, backend=REF),
        TimeDistributed(nn.MaxPool2d(2)),
        Flatten(),
        TimeDistributed(nn.Linear(4 * 4 * 4, 5, bias=False)),
        LIF(tau=3.0, v_threshold=0.7, v_reset=None if soft else 0.0, backend=REF),
    )
    nn.init.uniform_(model[0].layer.weight, -0.3, 0.8)
    nn.init.uniform_(model[4].layer.weight, -0.3, 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRExportWarning)
        export_nir(model, tmp_path / "m.nir", (2, 8, 8))
    graph = from_nir(tmp_path / "m.nir", backend=REF)
    net, ref = _grid_equals_graph(graph, (2, 8, 8), seed)
    assert 0 < ref.mean() < 1
    assert [st.pool is not None for st in net.stages] == [False, True, False]
    # the same stages as the model it was exported from
    direct = lower_model(model, (2, 8, 8))
    for a, b in zip(net.stages, direct.stages):
        if a.weight is not None:
            np.testing.assert_allclose(a.weight.toarray(), b.weight.toarray(), atol=1e-7)
    # and the event-driven mode runs it
    res = EventDrivenSimulator(net, mode="events").run_sample(
        np.arange(30, dtype=np.float64), np.arange(30) % 128, dt=5.0)
    assert res.sops > 0


def test_snntorch_leaky_export_fires_strictly_on_the_simulator():
    """snnTorch fires at ``mem > threshold``: a membrane exactly at threshold must not
    spike on the grid either (an input of exactly 1.0 into threshold 1.0)."""
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    native = nn.Sequential(nn.Linear(3, 2, bias=False),
                           snn.Leaky(beta=torch.full((2,), 0.5), threshold=torch.ones(2),
                                     init_hidden=True, output=True, reset_mechanism="zero"))
    with torch.no_grad():
        native[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.75, 0.75]]))
    graph = from_nir(export_to_nir(native, torch.randn(3)), convention="snntorch", backend=REF)
    net = lower_model(graph, (3,))
    assert net.stages[-1].neurons.fire_strict
    sim = EventDrivenSimulator(net, mode="grid")
    # input 0 alone: membrane exactly 1.0 = threshold: no spike (>= would fire)
    assert sim.run_sample(np.array([0]), np.array([0]), n_steps=2).out_counts.tolist() == [0, 0]
    # inputs 1 and 2 together: 1.5 > 1: a spike
    res = sim.run_sample(np.array([0, 0]), np.array([1, 2]), n_steps=2)
    assert res.out_counts.tolist() == [0, 1]
    _grid_equals_graph(graph, (3,), seed=5, t_steps=8, rate=0.6)


def test_imported_graphs_the_simulator_cannot_run_are_named(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(TimeDistributed(nn.Linear(4, 3, bias=False)), IF(backend=REF))
    export_nir(model, tmp_path / "a.nir", (4,))
    graph = nir.read(str(tmp_path / "a.nir"))
    # a second path into the neuron: a branch that sums two edges
    graph.nodes["skip"] = nir.Linear(weight=np.ones((3, 4), np.float32))
    graph.edges.append(("input", "skip"))
    graph.edges.append(("skip", next(b for a, b in graph.edges if b != "skip" and a != "input")))
    with pytest.raises(DeploymentError, match="chains"):
        lower_model(from_nir(graph, backend=REF), (4,))


def test_spike_or_pool_is_max_pool_on_spikes():
    from spikeforge.deploy.graph import SumPool2d

    x = (torch.rand(5, 3, 6, 6, generator=torch.Generator().manual_seed(0)) < 0.3).double()
    pool = SpikeOrPool2d(SumPool2d(2, 2), 0.5)
    assert torch.equal(pool(x), nn.functional.max_pool2d(x, 2))
