"""NIR export of ANN-to-SNN converted networks: thresholds folded into the weights, the
initial membrane kept in metadata; export -> import reproduces every layer's spikes."""

import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

pytest.importorskip("nir")

from spikeforge.cli import main  # noqa: E402
from spikeforge.convert import ConvertedIF, convert  # noqa: E402
from spikeforge.deploy import NIRExportWarning, NIRGraphError, export_nir, from_nir  # noqa: E402

T, SHAPE = 12, (1, 8, 8)


def _ann():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(24, 12), nn.ReLU(), nn.Linear(12, 3)).eval()


def _converted(seed: int, pow2: bool):
    """A converted SNN with per-neuron initial membranes (what potential calibration
    sets) and, unless ``pow2``, per-channel bias corrections (light calibration); with
    ``pow2`` every threshold is a power of two, so the fold is exact to the bit."""
    torch.manual_seed(seed)
    ann = _ann()
    bn = ann[1]
    bn.running_mean.uniform_(-0.2, 0.2)
    bn.running_var.uniform_(0.5, 1.5)
    x = torch.rand(40, *SHAPE)
    snn = convert(ann, x[:32], time_steps=T)
    g = torch.Generator().manual_seed(seed)
    for m in snn.net.modules():
        if isinstance(m, ConvertedIF):
            m.v_init.copy_(torch.rand(m.v_init.shape, generator=g))
            if pow2:
                m.threshold.copy_(2.0 ** torch.round(torch.log2(m.threshold)))
            else:
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
    return snn, x[32:]


def _spikes(snn, net, x):
    """Every neuron layer's spikes ``[T, B, ...]`` of the converted SNN and of the
    imported graph, and both outputs."""
    a, b = {}, {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: a.__setitem__(
        n, (o / m.threshold).reshape(T, -1, *o.shape[1:])))
        for n, m in snn.net.named_modules() if isinstance(m, ConvertedIF)]
    hooks += [net.module(n).register_forward_hook(lambda m, i, o, n=n: b.__setitem__(n, o))
              for n in net.initial_nodes]
    xs = x.unsqueeze(0).expand(T, *x.shape).contiguous()
    with torch.no_grad():
        ya, yb = snn(xs), net(xs)
    for h in hooks:
        h.remove()
    return a, b, ya, yb


@pytest.mark.parametrize("pow2", [True, False])
def test_export_import_reproduces_converted_spikes(pow2, tmp_path):
    snn, x = _converted(0, pow2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NIRExportWarning)
        graph = export_nir(snn, tmp_path / "c.nir", SHAPE)
    msgs = [str(w.message) for w in caught if w.category is NIRExportWarning]
    assert sum("initial membrane" in m and "start at 0" in m for m in msgs) == 3
    # conv, IF, pool, conv, IF, pool, flatten, affine, IF, affine: BN folded by conversion
    assert [type(n).__name__ for n in graph.nodes.values()].count("IF") == 3
    for name in ("2", "5", "9"):
        node = graph.nodes[name]
        assert np.all(node.v_threshold == 1.0) and node.metadata["spikeforge_reset"] == "soft"
        np.testing.assert_array_equal(node.metadata["spikeforge_v_init"],
                                      snn.net.get_submodule(name).v_init.numpy())
    net = from_nir(tmp_path / "c.nir")
    assert net.initial_nodes == ["2", "5", "9"]
    a, b, ya, yb = _spikes(snn, net, x)
    assert set(a) == set(b) == {"2", "5", "9"}
    for n in a:
        assert 0.02 < float(a[n].mean()) < 0.98, n  # neither silent nor saturated
        if pow2:
            torch.testing.assert_close(b[n], a[n], rtol=0, atol=0)
        else:  # float32 rounding of the folded weights may move a spike on the threshold
            assert (b[n] != a[n]).float().mean() < 1e-3, n
    if pow2:
        torch.testing.assert_close(yb, ya, rtol=1e-6, atol=1e-6)
    # what another NIR consumer runs: every membrane from 0, different spikes
    for n in net.initial_nodes:
        net.initial_membrane(n).zero_()
    _, c, _, _ = _spikes(snn, net, x)
    assert float(c["2"].sum()) < float(a["2"].sum())


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        h = F.relu(self.c1(x))
        h = F.relu(self.c2(h) + h)
        return self.fc(torch.flatten(h, 1))


def test_what_nir_cannot_express_is_refused_naming_the_layer():
    x = torch.rand(16, *SHAPE)
    pooled = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Flatten(), nn.Linear(64, 3)).eval()
    with pytest.raises(NIRGraphError, match=r"layer '2' \(SpikeMaxPool2d\).*average pooling"):
        export_nir(convert(pooled, x), "unused.nir", SHAPE)
    with pytest.raises(NIRGraphError, match=r"layer 'add' \(add\).*residual join"):
        export_nir(convert(_Residual().eval(), x), "unused.nir", SHAPE)


def test_cli_exports_a_converted_run(tmp_path, capsys):
    ann, snn = tmp_path / "ann", tmp_path / "snn"
    data = ["data.name=digits8x8", "data.augment=[]", "threads=1", "progress=false"]
    assert main(["train", "--ann", "--quiet", "--out", str(ann), "epochs=1",
                 "model.name=ann_mlp", "model.hidden=32", *data]) == 0
    assert main(["convert", str(ann), "--out", str(snn), "--time-steps", "8",
                 "--calib-samples", "32"]) == 0
    capsys.readouterr()
    f = tmp_path / "snn.nir"
    assert main(["export", str(snn), "--nir", str(f)]) == 0
    summary = json.loads(capsys.readouterr().out)
    # input, flatten, affine, IF, affine, output
    assert summary["nodes"] == 6
    assert any("spikeforge_v_init" in w for w in summary["warnings"])
    imp = tmp_path / "imported"
    assert main(["import-nir", str(f), *data, "data.time_steps=8", "--out", str(imp)]) == 0
    capsys.readouterr()
    assert main(["eval", str(snn)]) == 0
    native = json.loads(capsys.readouterr().out)
    assert main(["eval", str(imp)]) == 0
    imported = json.loads(capsys.readouterr().out)
    assert native["test_accuracy"] > 0.3  # chance is 0.1
    assert imported["test_accuracy"] == native["test_accuracy"]


def test_grid_simulation_reproduces_converted_spikes():
    """``lower_model`` takes a converted SNN through its NIR graph; grid mode, from the
    initial membranes, gives the imported graph's clock-driven spikes and readout."""
    from spikeforge.deploy import to_nir
    from spikeforge.deploy.event_driven import EventDrivenSimulator
    from spikeforge.deploy.lower import lower_model

    snn, _ = _converted(1, pow2=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRExportWarning)
        lowered = lower_model(snn, SHAPE)
        graph = from_nir(to_nir(snn, SHAPE), backend="reference").double()
    layers = [st.neurons for st in lowered.stages if st.neurons is not None]
    assert [n.v_init.size for n in layers] == [4 * 8 * 8, 6 * 4 * 4, 12]
    np.testing.assert_array_equal(layers[0].v_init,
                                  snn.net.get_submodule("2").v_init.reshape(-1).double())
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 3, (T, *SHAPE)) * (rng.random((T, *SHAPE)) < 0.4)
    with torch.no_grad():
        ref = graph(torch.from_numpy(frames.astype(np.float64))[:, None])[:, 0]
    _, spikes = lowered.clock_driven(torch.from_numpy(frames.astype(np.float64))[:, None])
    steps = np.repeat(np.arange(T), frames.reshape(T, -1).sum(1))
    idx = np.concatenate([np.repeat(np.arange(64), f) for f in frames.reshape(T, -1)])
    res = EventDrivenSimulator(lowered, mode="grid").run_sample(steps, idx, n_steps=T)
    np.testing.assert_array_equal(res.raster, spikes[-1][:, 0].numpy().astype(np.int8))
    assert 0 < res.raster.sum() < res.raster.size
    np.testing.assert_allclose(res.scores, ref.sum(0).numpy(), rtol=1e-9, atol=1e-9)
