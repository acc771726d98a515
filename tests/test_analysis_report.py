"""The run report: metrics.json figures from training, the HTML page and terminal
summary of ``spikeforge report``, errors naming what is missing, and the page
rendered in headless Chromium (every image loaded, the tables present)."""

import base64
import json
import os
import shutil

import pytest
import torch
import yaml
from safetensors.torch import save_file
from torch import nn

from spikeforge.analysis import profile_model
from spikeforge.analysis.browser import check_in_browser, find_chromium
from spikeforge.analysis.run_metrics import FINAL_SAMPLES, profile_batches
from spikeforge.cli import main
from spikeforge.models import MODELS, register_model
from spikeforge.train import load_trained

SMALL = [
    "data.name=digits8x8", "data.augment=[]", "model.channels=[4,8]", "model.backend=reference",
    "optim.lr=0.005", "threads=1", "progress=false", "epochs=1",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cnn"
    assert main(["train", "--quiet", "--out", str(out), *SMALL]) == 0
    return out


def test_train_writes_ops_and_energy_to_metrics(run):
    m = json.loads((run / "metrics.json").read_text())
    assert m["ops_samples"] == min(FINAL_SAMPLES, 359)
    assert m["energy_uj_per_sample"] == pytest.approx(
        (0.9 * m["sops_per_sample"] + 4.6 * m["macs_per_sample"]) * 1e-6
    )
    assert m["sops_per_sample"] > 0 and m["macs_per_sample"] > 0
    layers = m["layer_statistics"]
    assert [r["name"] for r in layers["neuron_layers"]] == list(m["firing_rate"])
    assert [r["type"] for r in layers["synaptic_layers"]] == [
        "Conv2d", "MaxPool2d", "Conv2d", "MaxPool2d", "Linear"
    ]
    # The same figures from the reloaded model, and the last point of accuracy
    # versus time steps is the plain accuracy of the mean output.
    trainer = load_trained(str(run))
    trainer.model.eval()
    batches = list(profile_batches(trainer, FINAL_SAMPLES))
    p = profile_model(trainer.model, batches)
    assert p.sops_per_sample == pytest.approx(m["sops_per_sample"])
    with torch.no_grad():
        hits = sum(int((trainer.model(x).mean(0).argmax(1) == y).sum()) for x, y in batches)
    assert p.accuracy_vs_steps[-1] == hits / p.samples
    assert len(p.accuracy_vs_steps) == 4


@pytest.fixture(scope="module")
def report(run):
    assert main(["report", str(run), "--samples", "64"]) == 0
    return run / "report.html"


def test_report_page_and_terminal_summary(run, report, capsys):
    page = report.read_text()
    assert page.count('src="data:image/png;base64,') == 5  # raster, rates, membrane, 2 curves
    for cls in ("summary", "neurons", "synapses"):
        assert f'<table class="{cls}">' in page
    assert "features.2" in page and "SOPs / sample" in page
    assert sorted(os.listdir(run / "report")) == [
        "accuracy_versus_time_steps.png", "firing_rates.png", "membrane_traces.png",
        "spike_raster.png", "training_curves.png",
    ]
    assert main(["report", str(run), "--samples", "16", "--format", "svg",
                 "--out", str(run / "r.html")]) == 0
    out = capsys.readouterr().out
    assert "SOPs / sample" in out and "synaptic layers" in out and "features.0.layer" in out
    svg = (run / "r.html").read_text()
    assert svg.count('src="data:image/svg+xml;base64,') == 5


def test_report_errors_name_what_is_missing(run, tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(run / "config.yaml", half / "config.yaml")
    assert main(["report", str(half)]) == 2
    assert "has no model.safetensors" in capsys.readouterr().err
    assert main(["report", str(run), "--samples", "0"]) == 2
    assert "samples must be >= 1" in capsys.readouterr().err

    @register_model("_ann_for_test")
    def _ann(input_shape, num_classes, cfg):
        return nn.Sequential(nn.Flatten(2), nn.Linear(64, num_classes))

    try:
        ann = tmp_path / "ann"
        ann.mkdir()
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        cfg["model"]["name"] = "_ann_for_test"
        (ann / "config.yaml").write_text(yaml.safe_dump(cfg))
        torch.manual_seed(0)
        save_file(_ann((1, 8, 8), 10, None).state_dict(), str(ann / "model.safetensors"))
        assert main(["report", str(ann)]) == 2
        assert "Sequential has no spiking layer" in capsys.readouterr().err
    finally:
        MODELS.pop("_ann_for_test")


def test_report_renders_in_chromium(report, tmp_path):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium; .ci/run "
                    "installs it when it runs as root): the browser check of the report is skipped")
    # One deliberately broken image beside the report's own: the check must tell them apart.
    page = report.read_text().replace(
        "</body>",
        '<img alt="broken" src="data:image/png;base64,'
        + base64.b64encode(b"not a png").decode() + '"></body>',
    )
    probe = tmp_path / "probe.html"
    probe.write_text(page)
    shot = tmp_path / "report.png"
    res = check_in_browser(str(probe), str(shot), chromium)
    widths = {i["alt"]: i["naturalWidth"] for i in res["images"]}
    assert widths.pop("broken") == 0
    assert len(widths) == 5 and all(w > 100 for w in widths.values()), widths
    assert res["classes"] == ["summary", "neurons", "synapses"]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
