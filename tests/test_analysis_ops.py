"""SOP / MAC counts against hand counts, spike statistics, and bad input."""

import itertools

import pytest
import torch
from torch import nn

from spikeforge.analysis import (
    EnergyModel,
    NoSpikingLayerError,
    OpsMonitor,
    SpikeMonitor,
    profile_model,
    register_counter,
)
from spikeforge.analysis.counters import LayerOps
from spikeforge.layers import Flatten, SpikeMatmul, TimeDistributed
from spikeforge.neurons import IF, LIF


def _spikes(*shape, p=0.4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).float()


def _ops_of(layer, x):
    """Run ``layer`` on time-first ``x`` inside a model with a neuron (the monitors
    require one), return ``(LayerOpsStats of the layer, samples)``."""
    model = nn.Sequential(TimeDistributed(layer), IF(backend="reference"))
    with OpsMonitor(model) as mon:
        model(x)
    return mon.layers()["0.layer"], mon.samples


def _conv2d_hand(x, w, stride, pad, dil, groups):
    """Enumerate every (output, kernel tap) pair: ``sum x[in] * [w != 0]`` and the dense count."""
    n, c_in, h, wd = x.shape
    c_out, cpg, kh, kw = w.shape
    oh = (h + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    ow = (wd + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    opg = c_out // groups
    xs, nz = x.sum(0).tolist(), (w != 0).tolist()  # plain floats: fast Python loops
    eff = dense = 0.0
    for oc, oy, ox, ic, ky, kx in itertools.product(
        range(c_out), range(oh), range(ow), range(cpg), range(kh), range(kw)
    ):
        iy, ix = oy * stride - pad + ky * dil, ox * stride - pad + kx * dil
        if 0 <= iy < h and 0 <= ix < wd:
            c = (oc // opg) * cpg + ic
            dense += n
            if nz[oc][ic][ky][kx]:
                eff += xs[c][iy][ix]
    return eff, dense


def test_linear_sops_equal_hand_count():
    lin = nn.Linear(6, 4, bias=True)
    with torch.no_grad():
        lin.weight[:, 2] = 0  # a pruned input: its spikes reach nobody
        lin.weight[1, 0] = 0
    x = _spikes(3, 2, 6)  # [T, B, in]
    st, samples = _ops_of(lin, x)
    fan = (lin.weight != 0).sum(0).float()
    assert samples == 2
    assert st.sops == float((x * fan).sum())  # bias is not a synaptic operation
    assert st.macs == 0 and st.kinds == {"spikes"}
    assert st.dense == 3 * 2 * 6 * 4


@pytest.mark.parametrize(
    "stride,pad,dil,groups", [(2, 1, 1, 2), (1, 2, 2, 1), (3, 0, 1, 4), (2, 1, 2, 2)]
)
def test_conv2d_sops_equal_hand_count(stride, pad, dil, groups):
    torch.manual_seed(1)
    conv = nn.Conv2d(4, 8, 3, stride=stride, padding=pad, dilation=dil, groups=groups)
    with torch.no_grad():
        conv.weight[0, 0, 1, 1] = 0
        conv.weight[3, :, 0, :] = 0
    x = _spikes(2, 3, 4, 7, 7, seed=stride + pad)
    st, _ = _ops_of(conv, x)
    eff, dense = _conv2d_hand(x.reshape(6, 4, 7, 7), conv.weight, stride, pad, dil, groups)
    assert st.sops == eff and st.dense == dense and st.macs == 0


def test_conv1d_analog_input_counts_macs():
    conv = nn.Conv1d(2, 3, 3, stride=2, padding=1)
    x = torch.randn(1, 2, 2, 9)  # analog: one MAC per non-zero input and connection
    x[..., 4] = 0
    st, _ = _ops_of(conv, x)
    nz = (x.reshape(2, 2, 9) != 0).float()
    eff = dense = 0.0
    for _oc, o, ic, k in itertools.product(range(3), range(5), range(2), range(3)):
        i = o * 2 - 1 + k
        if 0 <= i < 9:
            dense += 2
            eff += float(nz[:, ic, i].sum())
    assert st.sops == 0 and st.kinds == {"analog"}
    assert st.macs == eff and st.dense == dense


def test_pooling_counts():
    x = _spikes(2, 2, 3, 5, 5, seed=4)
    avg = nn.AvgPool2d(3, stride=2, padding=1)
    st, _ = _ops_of(avg, x)
    flat = x.reshape(4, 3, 5, 5)
    hand = 0.0
    for oy, ox in itertools.product(range(3), range(3)):  # windows
        for ky, kx in itertools.product(range(3), range(3)):
            iy, ix = oy * 2 - 1 + ky, ox * 2 - 1 + kx
            if 0 <= iy < 5 and 0 <= ix < 5:
                hand += float(flat[:, :, iy, ix].sum())
    assert st.sops == hand
    st, _ = _ops_of(nn.MaxPool2d(2), x)
    assert (st.sops, st.macs, st.dense) == (0, 0, 0)  # a comparison, not a synapse


class _SEWBlock(nn.Module):
    """``s = SN(W1 x)``; ``out = W3 (s + SN(W2 s))``: a SEW ADD residual join (the
    join's output holds spike counts 0, 1, 2)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.l1, self.l2 = TimeDistributed(nn.Linear(5, 6)), TimeDistributed(nn.Linear(6, 6))
        self.l3 = TimeDistributed(nn.Linear(6, 2))
        self.n1, self.n2 = IF(v_threshold=0.2, backend="reference"), IF(
            v_threshold=0.1, backend="reference"
        )

    def forward(self, x):
        s = self.n1(self.l1(x))
        self.joined = s + self.n2(self.l2(s))
        return self.l3(self.joined)


def test_residual_join_counts_spike_multiplicity():
    net = _SEWBlock()
    x = _spikes(3, 4, 5, p=0.6, seed=5)
    with OpsMonitor(net) as mon:
        net(x)
    st = mon.layers()
    j = net.joined.detach()
    assert float(j.detach().max()) == 2.0  # the join really produced double spikes
    fan3 = (net.l3.layer.weight != 0).sum(0).float()
    assert st["l3.layer"].sops == float((j * fan3).sum())
    assert st["l3.layer"].kinds == {"counts"}
    s1 = net.n1(net.l1(x)).detach()
    assert st["l2.layer"].sops == float((s1 * (net.l2.layer.weight != 0).sum(0)).sum())
    assert st["l1.layer"].sops == float((x * (net.l1.layer.weight != 0).sum(0)).sum())


def test_spike_matmul_counts_products():
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.qk, self.sn = SpikeMatmul(), LIF(backend="reference")

        def forward(self, q):
            return self.sn(self.qk(q, q.transpose(-2, -1)))

    q = _spikes(2, 3, 5, 4, seed=6)  # [T, B, tokens, dim]
    net = Attn()
    with OpsMonitor(net) as mon:
        net(q)
    st = mon.layers()["qk"]
    ql = q.tolist()
    hand = sum(
        ql[t][b][i][d] * ql[t][b][j][d]
        for t, b, i, j, d in itertools.product(range(2), range(3), range(5), range(5), range(4))
    )
    assert st.sops == hand and st.dense == 2 * 3 * 5 * 4 * 5


def test_energy_and_per_sample_figures():
    torch.manual_seed(0)
    net = nn.Sequential(
        TimeDistributed(nn.Conv2d(1, 2, 3)), IF(v_threshold=0.3, backend="reference"), Flatten(),
        TimeDistributed(nn.Linear(2 * 4 * 4, 3)),
    )
    x = torch.rand(1, 6, 1, 6, 6).expand(4, 6, 1, 6, 6)  # direct encoding: one conv pass
    p = profile_model(net, [x], EnergyModel(e_ac_pj=1.0, e_mac_pj=10.0))
    conv = net[0].layer
    eff, _ = _conv2d_hand((x[0] != 0).float(), conv.weight, 1, 0, 1, 1)
    macs = eff / 6
    assert p.samples == 6 and p.macs_per_sample == pytest.approx(macs)
    s = net[1](net[0](x)).detach()
    sops = float((s.flatten(2) * (net[3].layer.weight != 0).sum(0)).sum()) / 6
    assert p.sops_per_sample == pytest.approx(sops)
    assert p.energy_uj_per_sample == pytest.approx((sops * 1.0 + macs * 10.0) * 1e-6)
    assert p.activation_sparsity == pytest.approx(1 - float(s.mean()))


def test_weight_change_refreshes_fanout():
    lin = nn.Linear(3, 2)
    x = torch.ones(1, 1, 3)
    before, _ = _ops_of(lin, x)
    with torch.no_grad():
        lin.weight[:, 0] = 0  # in place, as an optimizer or a pruner would
    after, _ = _ops_of(lin, x)
    assert (before.sops, after.sops) == (6, 4)


def test_spike_monitor_rates_dead_saturated_and_membrane():
    net = nn.Sequential(IF(v_threshold=1.0, backend="reference"))
    x = torch.zeros(4, 2, 3)
    x[:, :, 0] = 2.0  # fires every step: saturated
    x[:, :, 1] = 0.6  # fires at steps 2 and 4
    with SpikeMonitor(net, membrane={"0": [1]}) as mon:  # x[:, :, 2] = 0: dead
        net(x)
    st = mon.layers()["0"]
    assert st.spikes == 2 * (4 + 2) and st.firing_rate == pytest.approx(12 / 24)
    assert st.rate_per_neuron.tolist() == [1.0, 0.5, 0.0]
    assert st.rate_per_step.tolist() == pytest.approx([1 / 3, 2 / 3, 1 / 3, 2 / 3])
    assert st.dead_fraction() == pytest.approx(1 / 3)
    assert st.saturated_fraction() == pytest.approx(1 / 3)
    ref = net[0](x, record_membrane=True).v_seq[:, 0, 1]
    assert torch.equal(st.membrane[:, 0], ref) and st.raster.shape == (4, 3)
    assert mon.rates() == {"0": pytest.approx(0.5)}  # FiringRateMonitor's view agrees


def test_new_layer_types_register_their_counter():
    class Doubler(nn.Module):
        def forward(self, x):
            return 2 * x

    @register_counter(Doubler)
    def _count(module, inputs, output):
        return LayerOps(sops=float(inputs[0].sum()), dense=float(inputs[0].numel()))

    try:
        net = nn.Sequential(Doubler(), IF(backend="reference"))
        with OpsMonitor(net) as mon:
            net(torch.ones(2, 3, 4))
        assert mon.layers()["0"].sops == 24
    finally:
        from spikeforge.analysis.counters import COUNTERS

        COUNTERS.pop(Doubler)


def test_bad_input_is_named():
    ann = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with pytest.raises(NoSpikingLayerError, match="no spiking layer"):
        OpsMonitor(ann)
    with pytest.raises(NoSpikingLayerError, match="Sequential has no spiking layer"):
        profile_model(ann, [torch.zeros(2, 1, 3)])
    with pytest.raises(TypeError, match="nn.Module"):
        SpikeMonitor("not a model")
    net = nn.Sequential(nn.Linear(3, 3), IF(backend="reference"))
    with pytest.raises(ValueError, match=r"time-first tensor \[T, B, \.\.\.\], got \(3,\)"):
        profile_model(net, [torch.zeros(3)])
    with pytest.raises(KeyError, match="not spiking layers"):
        SpikeMonitor(net, membrane={"0": [0]})
    with pytest.raises(ValueError, match="one shape per module"):
        profile_model(net[1:], [torch.zeros(2, 1, 3), torch.zeros(2, 1, 4)])
    with pytest.raises(ValueError, match="e_mac_pj"):
        EnergyModel(e_mac_pj=-1.0)
    with pytest.raises(ValueError, match="no batch"):
        profile_model(net, [])
    with pytest.raises(ValueError, match=">= 2 dims"):
        SpikeMatmul()(torch.ones(3), torch.ones(3))


def test_input_classification():
    from spikeforge.analysis.counters import batch_cost

    cases = [
        (torch.tensor([[0, 1.0, 1], [1, 0, 0]]), "spikes", [1, 1, 1]),
        (torch.tensor([[0, 0.5, 1], [1, 0, 0]]), "analog", [1, 1, 1]),  # sum x^2 < sum x
        (torch.tensor([[0, 2.0, 1], [1, 0, 0]]), "counts", [1, 2, 1]),
        (torch.tensor([[0, -1.0, 1], [1, 0, 0]]), "spikes", [1, 1, 1]),  # NeuroBench's ±1
        (torch.tensor([[2.0, 0.5], [0.5, -1]]), "analog", [2, 2]),
        (torch.tensor([[0, 1.0, 1], [1, 0, 0]]).t(), "spikes", [2, 1]),  # non-contiguous
        (torch.tensor([[0.5, 0.5, 1], [1, 0, 0]], dtype=torch.float64), "analog", [2, 1, 1]),
        (torch.tensor([[0, 1, 1], [1, 0, 0]], dtype=torch.bool), "spikes", [1, 1, 1]),
    ]
    for x, kind, cost in cases:
        k, c = batch_cost(x)
        assert (k, c.tolist()) == (kind, cost), x


def test_final_metrics_survive_a_failing_counter():
    from types import SimpleNamespace

    from torch.utils.data import TensorDataset

    from spikeforge.analysis import final_metrics
    from spikeforge.analysis.counters import COUNTERS

    class Broken(nn.Identity):
        pass

    @register_counter(Broken)
    def _fail(module, inputs, output):
        raise RuntimeError("counter exploded")

    data = TensorDataset(torch.rand(5, 3), torch.zeros(5, dtype=torch.long))
    trainer = SimpleNamespace(
        cfg=SimpleNamespace(seed=0), bundle=SimpleNamespace(test=data), device="cpu",
        to_time_first=lambda x, gen: x.unsqueeze(0).expand(2, *x.shape),
        model=nn.Sequential(Broken(), IF(backend="reference")),
    )
    try:
        assert final_metrics(trainer) == {"analysis_error": "RuntimeError: counter exploded"}
        COUNTERS.pop(Broken)
        m = final_metrics(trainer)
        assert m["ops_samples"] == 5 and m["layer_statistics"]["neuron_layers"][0]["name"] == "1"
        trainer.model = nn.Sequential(nn.Linear(3, 3))
        assert final_metrics(trainer) == {}  # no spiking layer: nothing to add
    finally:
        COUNTERS.pop(Broken, None)
