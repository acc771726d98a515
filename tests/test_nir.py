"""NIR export/import: every node type round-trips through a file with identical spikes,
recurrent edges and delays run as NIR means them, and bad input is an error naming the
node (spikeforge.deploy)."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

nir = pytest.importorskip("nir")

from spikeforge.deploy import NIRExportWarning, NIRGraphError, export_nir, from_nir, to_nir  # noqa: E402
from spikeforge.deploy.graph import (  # noqa: E402
    Delay,
    Integrator,
    LeakyIntegrator,
    Scale,
    SumPool2d,
    Threshold,
)
from spikeforge.layers import Flatten, TimeDistributed  # noqa: E402
from spikeforge.neurons import ALIF, IF, LIF, CubaLIF  # noqa: E402

T, B = 12, 6
REF = "reference"  # the reference step: no kernel compile in these tests


def td(m):
    return TimeDistributed(m)


def lin(i, o, bias=True, gain=2.5):
    m = nn.Linear(i, o, bias=bias)
    with torch.no_grad():
        m.weight.mul_(gain)
    return m


def conv2d(i, o, bias=True, gain=2.0):
    m = nn.Conv2d(i, o, 3, padding=1, bias=bias)
    with torch.no_grad():
        m.weight.mul_(gain)
    return m


def _gain(m, g):
    with torch.no_grad():
        m.weight.mul_(g)
    return m


def _bn(c):
    bn = nn.BatchNorm2d(c)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    return bn


def _cases():
    torch.manual_seed(0)
    return {
        "linear_if": ((20,), nn.Sequential(td(lin(20, 16, bias=False)), IF(backend=REF))),
        "affine_lif_soft_ge_leak": (
            (20,),
            nn.Sequential(
                td(lin(20, 16)),
                LIF(backend=REF, tau=3.0, v_reset=None, decay_input=False),
                td(lin(16, 4)),
                LIF(backend=REF, tau=2.0, v_reset=-0.2, v_leak=0.1, fire_strict=True),
            ),
        ),
        "conv1d_cubalif": (
            (2, 10),
            nn.Sequential(
                td(_gain(nn.Conv1d(2, 4, 3, padding=1), 3.0)),
                LIF(backend=REF, tau=2.0, detach_reset=True),
                Flatten(),
                td(lin(40, 5, gain=10.0)),
                CubaLIF(backend=REF, tau=3.0, tau_syn=2.0),
            ),
        ),
        "conv2d_sumpool": (
            (2, 8, 8),
            nn.Sequential(
                td(conv2d(2, 4)),
                CubaLIF(backend=REF, tau=4.0, tau_syn=2.0, decay_input=False),
                td(SumPool2d(2, 2)),
                Flatten(),
                td(lin(64, 3, gain=1.0)),
                IF(backend=REF, v_threshold=2.0),
            ),
        ),
        "conv2d_avgpool": (
            (2, 8, 8),
            nn.Sequential(
                td(conv2d(2, 4)),
                LIF(backend=REF, tau=2.0, reset_delay=True, v_reset=None, fire_strict=True),
                td(nn.AvgPool2d(2)),
                Flatten(),
                td(lin(64, 3, gain=8.0)),
                LIF(backend=REF, tau=2.0),
            ),
        ),
        "maxpool_of_spikes": (
            (2, 8, 8),
            nn.Sequential(
                td(conv2d(2, 4, bias=False)),
                LIF(backend=REF, tau=2.0),
                td(nn.MaxPool2d(2)),
                Flatten(),
                td(lin(64, 3)),
                LIF(backend=REF, tau=2.0),
            ),
        ),
        "scale_threshold": (
            (20,),
            nn.Sequential(
                td(lin(20, 8)), td(Scale(torch.linspace(0.5, 2.0, 8))), td(Threshold(0.7))
            ),
        ),
        "integrator_threshold": (
            (20,),
            nn.Sequential(
                td(lin(20, 8, gain=1.0)), Integrator(r=0.5, dt=1e-3), td(Threshold(0.002))
            ),
        ),
        "delay": (
            (20,),
            nn.Sequential(
                td(lin(20, 8)),
                LIF(backend=REF, tau=2.0),
                Delay(torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])),
            ),
        ),
    }


CASES = _cases()


def _input(shape, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((T, B) + shape, generator=g) * 1.5


@pytest.mark.parametrize("name", list(CASES))
def test_round_trip_identical_spikes(name, tmp_path):
    shape, net = CASES[name]
    net.eval()
    x = _input(shape)
    with torch.no_grad():
        ref = net(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRExportWarning)
        export_nir(net, tmp_path / "m.nir", shape, dt=1e-3)
    back = from_nir(tmp_path / "m.nir", backend=REF)
    with torch.no_grad():
        out = back(x)
    assert 0.0 < ref.mean() < 1.0, "the case must spike, and not everywhere"
    assert out.shape == ref.shape
    assert torch.equal(out, ref)


def test_leaky_integrator_round_trip(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(td(lin(20, 8)), LeakyIntegrator(torch.full((8,), 0.3), 1.5, 0.1))
    x = _input((20,))
    export_nir(net, tmp_path / "li.nir", (20,), dt=1e-3)
    back = from_nir(tmp_path / "li.nir")
    with torch.no_grad():
        torch.testing.assert_close(back(x), net(x), rtol=1e-6, atol=1e-6)
    # the Euler step of NIR's LI: v += (dt/tau)(r x - (v - v_leak))
    z = net[0](x)
    v, want = torch.full((B, 8), 0.1), []
    for t in range(T):
        v = v + 0.3 * (1.5 * z[t] - (v - 0.1))
        want.append(v)
    torch.testing.assert_close(net(x), torch.stack(want))


def test_batchnorm_folded_into_conv():
    torch.manual_seed(0)
    net = nn.Sequential(
        td(conv2d(2, 4, bias=False)),
        td(_bn(4)),
        LIF(backend=REF, tau=2.0),
        td(nn.MaxPool2d(2)),
        Flatten(),
        td(lin(64, 3)),
        LIF(backend=REF, tau=2.0),
    ).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRExportWarning)
        g = to_nir(net, (2, 8, 8))
    assert [type(n).__name__ for n in g.nodes.values()] == [
        "Input",
        "Conv2d",
        "LIF",
        "SumPool2d",
        "Threshold",
        "Flatten",
        "Affine",
        "LIF",
        "Output",
    ]
    x = _input((2, 8, 8))
    with torch.no_grad():
        ref, out = net(x), from_nir(g, backend=REF)(x)
        torch.testing.assert_close(
            from_nir(g).layers["0"](x[0]), net[1](net[0](x))[0], rtol=1e-5, atol=1e-5
        )
    assert torch.equal(out, ref)


def test_metadata_and_warning_name_what_nir_cannot_state():
    net = nn.Sequential(td(lin(4, 3)), LIF(backend=REF, tau=2.0, v_reset=None))
    with pytest.warns(NIRExportWarning, match=r"node '1' \(lif\): soft reset.*>= V_th"):
        g = to_nir(net, (4,), dt=1e-3)
    meta = g.nodes["1"].metadata
    assert meta["spikeforge_reset"] == "soft" and meta["spikeforge_fire"] == ">="
    assert g.metadata["dt"] == 1e-3
    np.testing.assert_allclose(g.nodes["1"].tau, 2e-3)
    np.testing.assert_allclose(g.nodes["1"].r, 1.0)
    # without input decay NIR's r carries tau (tau dv/dt = -v + r I)
    g2 = to_nir(
        nn.Sequential(td(lin(4, 3)), LIF(backend=REF, tau=4.0, decay_input=False)), (4,), dt=1e-3
    )
    np.testing.assert_allclose(g2.nodes["1"].r, 4.0)


def _recurrent_graph(delay_steps=None):
    rng = np.random.default_rng(0)
    n = 8
    nodes = {
        "input": nir.Input(input_type={"input": np.array([5])}),
        "w_in": nir.Affine(
            weight=rng.uniform(-1, 2, (n, 5)).astype(np.float32), bias=np.zeros(n, np.float32)
        ),
        "lif": nir.LIF(
            tau=np.full(n, 3e-3),
            r=np.ones(n),
            v_leak=np.zeros(n),
            v_threshold=np.ones(n),
            v_reset=np.zeros(n),
        ),
        "w_rec": nir.Linear(weight=rng.uniform(-0.8, 0.8, (n, n)).astype(np.float32)),
        "output": nir.Output(output_type={"output": np.array([n])}),
    }
    edges = [("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("lif", "output")]
    if delay_steps is None:
        edges.append(("w_rec", "lif"))
    else:
        nodes["d"] = nir.Delay(delay=np.full(n, delay_steps * 1e-3))
        edges += [("w_rec", "d"), ("d", "lif")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), nodes


@pytest.mark.parametrize("delay_steps", [None, 2])
def test_recurrent_edge_runs_and_round_trips(delay_steps, tmp_path):
    g, nodes = _recurrent_graph(delay_steps)
    net = from_nir(g, dt=1e-3, backend=REF)
    x = _input((5,))
    with torch.no_grad():
        out = net(x)
    # the reference: the recurrent input arrives one step late (or after the delay)
    w_in, w_rec = (torch.as_tensor(nodes[k].weight) for k in ("w_in", "w_rec"))
    d = 1 if delay_steps is None else delay_steps
    v, spikes = torch.zeros(B, 8), []
    for t in range(T):
        rec = spikes[t - d] @ w_rec.T if t >= d else 0.0
        h = v + (x[t] @ w_in.T + rec - v) / 3.0
        s = (h > 1.0).float()
        v = h * (1 - s)
        spikes.append(s)
    ref = torch.stack(spikes)
    assert 0 < ref.mean() < 1
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    # export the imported graph (edges as they were), import again: the same spikes
    export_nir(net, tmp_path / "rec.nir", (5,), dt=1e-3)
    with torch.no_grad():
        assert torch.equal(from_nir(tmp_path / "rec.nir", backend=REF)(x), out)


# --- bad input: errors name the file or the node ------------------------------------
def test_not_a_nir_file(tmp_path):
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"this is not HDF5")
    with pytest.raises(NIRGraphError, match="bad.nir is not a NIR file"):
        from_nir(bad, dt=1e-3)
    with pytest.raises(FileNotFoundError, match="missing.nir"):
        from_nir(tmp_path / "missing.nir", dt=1e-3)


def test_unsupported_node_named():
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([3])}),
            "syn": nir.CubaLI(
                tau_syn=np.ones(3), tau_mem=np.ones(3), r=np.ones(3), v_leak=np.zeros(3)
            ),
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[("input", "syn"), ("syn", "output")],
        type_check=False,
    )
    with pytest.raises(NIRGraphError, match="node 'syn': NIR type CubaLI is not supported"):
        from_nir(g, dt=1e-3)


def test_mismatched_shapes_named():
    n = {
        "input": nir.Input(input_type={"input": np.array([4])}),
        "fc": nir.Affine(weight=np.ones((6, 4), np.float32), bias=np.zeros(6, np.float32)),
        "lif": nir.LIF(
            tau=np.full(5, 2e-3), r=np.ones(5), v_leak=np.zeros(5), v_threshold=np.ones(5)
        ),
        "output": nir.Output(output_type={"output": np.array([5])}),
    }
    g = nir.NIRGraph(
        nodes=n, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False
    )
    with pytest.raises(NIRGraphError, match=r"node 'lif': its parameters have shape \(5,\)"):
        from_nir(g, dt=1e-3)
    n["fc"] = nir.Affine(weight=np.ones((5, 3), np.float32), bias=np.zeros(5, np.float32))
    with pytest.raises(NIRGraphError, match="node 'fc'"):
        from_nir(nir.NIRGraph(nodes=n, edges=g.edges, type_check=False), dt=1e-3)


def test_cycle_without_delay_named():
    w = np.eye(3, dtype=np.float32)
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([3])}),
            "a": nir.Linear(weight=w),
            "b": nir.Linear(weight=w),
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")],
        type_check=False,
    )
    with pytest.raises(NIRGraphError, match="algebraic loop.*a -> b -> a"):
        from_nir(g, dt=1e-3)


def test_export_errors_name_the_module():
    with pytest.raises(NIRGraphError, match=r"module '1'.*'alif'"):
        to_nir(nn.Sequential(td(lin(4, 3)), ALIF(backend=REF)), (4,))
    with pytest.raises(NIRGraphError, match=r"module '0' \(MaxPool2d\)"):
        to_nir(nn.Sequential(td(nn.MaxPool2d(2))), (1, 4, 4))
    with pytest.raises(NIRGraphError, match=r"module '0' \(GRU\)"):
        to_nir(nn.Sequential(nn.GRU(4, 4)), (4,))
    g, _ = _recurrent_graph(None)
    g.nodes["lif"] = nir.LIF(
        tau=np.linspace(2e-3, 3e-3, 8), r=np.ones(8), v_leak=np.zeros(8), v_threshold=np.ones(8)
    )
    with pytest.raises(NIRGraphError, match="node 'lif': tau differs between neurons"):
        from_nir(g, dt=1e-3)
    with pytest.raises(ValueError, match="does not state its time step"):
        from_nir(_recurrent_graph(None)[0])
