"""spikeforge's activation sparsity and synaptic operations against the ``neurobench``
package (2.x) run on the same model and the same input.

NeuroBench takes batch-first input ``[B, T, ...]`` and a ``NeuroBenchModel``; its
``TorchModel`` wraps any ``nn.Module``, so a two-line module that moves time first
runs our stateless models as they are. Our neurons are registered as its
activation modules (``add_activation_module(SpikingNeuron)``).
"""

from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from spikeforge.analysis import profile_model
from spikeforge.layers import Flatten, TimeDistributed
from spikeforge.models import build_model
from spikeforge.neurons import IF, SpikingNeuron

nb_bench = pytest.importorskip("neurobench.benchmarks", reason="neurobench is not installed")
from neurobench.metrics.workload import ActivationSparsity, SynapticOperations  # noqa: E402
from neurobench.models import TorchModel  # noqa: E402

CFG = SimpleNamespace(
    neuron="lif", tau=2.0, v_threshold=0.5, v_reset=0.0, detach_reset=False, surrogate="atan",
    alpha=2.0, backend="reference", channels=[4, 8], hidden=16, dropout=0.0,
)


class BatchFirst(nn.Module):
    """NeuroBench's ``[B, T, ...]`` in, our time-first model inside, ``[B, T, ...]`` out."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.transpose(0, 1)).transpose(0, 1)


def _neurobench(net, x, y, batch_size=3):
    model = TorchModel(BatchFirst(net))
    model.add_activation_module(SpikingNeuron)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size)
    bench = nb_bench.Benchmark(
        model, loader, [], [], [[], [ActivationSparsity, SynapticOperations]]
    )
    r = bench.run(quiet=True)
    return r["ActivationSparsity"], r["SynapticOperations"]


def _ours(net, x, batch_size=3):
    return profile_model(net, [xb.transpose(0, 1) for xb in x.split(batch_size)])


@pytest.mark.parametrize("name", ["default_cnn", "mlp"])
def test_same_numbers_as_neurobench(name):
    torch.manual_seed(0)
    net = build_model(name, (1, 12, 12), 5, CFG)
    x = torch.rand(6, 4, 1, 12, 12) * 3  # [B, T, ...]: analog first layer, spikes after
    y = torch.randint(0, 5, (6,))
    sparsity, ops = _neurobench(net, x, y)
    p = _ours(net, x)
    assert p.activation_sparsity == pytest.approx(sparsity, abs=1e-12)
    assert p.sops_per_sample == ops["Effective_ACs"] > 0
    assert p.macs_per_sample == ops["Effective_MACs"] > 0
    assert p.dense_ops_per_sample == ops["Dense"]


class _Differences(nn.Module):
    """A spike-count input (a SEW ADD join) into a Linear, and an average pool."""

    def __init__(self):
        super().__init__()
        self.n1, self.n2 = IF(v_threshold=0.5, backend="reference"), IF(backend="reference")
        self.n3 = IF(v_threshold=0.5, backend="reference")
        self.pool = TimeDistributed(nn.AvgPool2d(2))
        self.flat = Flatten()
        self.fc = TimeDistributed(nn.Linear(2 * 3 * 3, 4))

    def forward(self, x):
        s = self.pool(self.n1(x))  # [T, B, 2, 3, 3] (pool of spikes: values k/4)
        s = self.flat(self.n2(s * 8))  # spikes again
        return self.fc(s + self.flat(self.n3(x[..., ::2, ::2])))  # counts in {0, 1, 2}


def test_documented_differences_from_neurobench():
    torch.manual_seed(1)
    net = _Differences()
    x = torch.rand(6, 3, 2, 6, 6)
    _, ops = _neurobench(net, x, torch.zeros(6, dtype=torch.long))
    p = _ours(net, x)
    fc, pool = p.ops["fc.layer"], p.ops["pool.layer"]
    assert fc.kinds == {"counts"}
    # NeuroBench: counts are analog, one MAC per non-zero input and connection.
    nz_fc = sum(
        float(((s != 0).float() * (net.fc.layer.weight != 0).sum(0)).sum())
        for s in _fc_inputs(net, x)
    )
    assert ops["Effective_MACs"] * 6 == nz_fc and ops["Effective_ACs"] == 0
    # Ours: each spike of a count is one accumulate; average pooling counted too.
    counted = sum(
        float((s * (net.fc.layer.weight != 0).sum(0)).sum()) for s in _fc_inputs(net, x)
    )
    assert fc.sops == counted > nz_fc
    assert pool.sops > 0 and p.macs_per_sample == 0
    assert p.sops_per_sample * 6 == fc.sops + pool.sops
    assert ops["Dense"] * 6 == fc.dense  # NeuroBench's dense ops: the Linear only


def _fc_inputs(net, x):
    seen = []
    h = net.fc.layer.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach()))
    with torch.no_grad():
        for xb in x.split(3):
            net(xb.transpose(0, 1))
    h.remove()
    return seen
