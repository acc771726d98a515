"""The report of a run directory: one self-contained HTML page and a terminal summary.

``make_report(run_dir)`` reloads the trained model (``config.yaml`` +
``model.safetensors``), profiles it on the first test samples
(:func:`~spikeforge.analysis.profile_model`), draws the figures
(:mod:`~spikeforge.analysis.plots`) and writes ``RUN_DIR/report.html`` with every
figure embedded as base64 (the page needs no other file), plus the figures as
files under ``RUN_DIR/report/``.
"""

from __future__ import annotations

import base64
import html
import json
import os
from dataclasses import dataclass, field

import torch

from spikeforge.analysis import plots
from spikeforge.analysis.monitor import SpikeMonitor, spiking_layer_names
from spikeforge.analysis.profile import EnergyModel, Profile, profile_model
from spikeforge.analysis.run_metrics import profile_batches
from spikeforge.errors import RunDirError
from spikeforge.io import atomic_write_bytes, atomic_write_text
from spikeforge.train.engine import load_trained

MEMBRANE_NEURONS = 3


@dataclass
class RunReport:
    """What :func:`make_report` produced: the paths, the metrics and the profile."""

    run_dir: str
    html_path: str
    metrics: dict
    profile: Profile
    figures: dict[str, str] = field(default_factory=dict)  # title -> file path

    def summary(self) -> list[tuple[str, str]]:
        """The headline figures as ``(label, formatted value)`` rows."""
        return summary_rows(self.metrics, self.profile)


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def summary_rows(metrics: dict, profile: Profile) -> list[tuple[str, str]]:
    """Headline rows: run facts from ``metrics.json`` and the profile's totals per sample."""
    e = profile.energy
    rows = [
        ("dataset", metrics.get("dataset")),
        ("time steps", metrics.get("time_steps")),
        ("epochs", metrics.get("epochs")),
        ("training seconds", metrics.get("seconds")),
        ("test accuracy", metrics.get("test_accuracy")),
        ("best test accuracy", metrics.get("best_test_accuracy")),
        ("test loss", metrics.get("test_loss")),
        ("samples profiled", profile.samples),
        ("spikes / sample", profile.spikes_per_sample),
        ("activation sparsity", profile.activation_sparsity),
        ("SOPs / sample (AC)", profile.sops_per_sample),
        ("MACs / sample", profile.macs_per_sample),
        ("dense ops / sample", profile.dense_ops_per_sample),
        (f"energy / sample, uJ ({e.e_ac_pj} pJ/AC, {e.e_mac_pj} pJ/MAC)",
         profile.energy_uj_per_sample),
    ]
    return [(k, _fmt(v)) for k, v in rows]


def layer_tables(profile: Profile) -> tuple[list[str], list[list[str]], list[str], list[list[str]]]:
    """``(neuron header, neuron rows, synaptic header, synaptic rows)``, formatted."""
    d = profile.to_dict()
    nh = ["layer", "neurons", "spikes / sample", "firing rate", "dead", "saturated"]
    nr = [
        [r["name"], str(r["neurons"]), _fmt(r["spikes_per_sample"]), _fmt(r["firing_rate"]),
         f"{100 * r['dead_fraction']:.1f}%", f"{100 * r['saturated_fraction']:.1f}%"]
        for r in d["neuron_layers"]
    ]
    sh = ["layer", "type", "input", "SOPs / sample", "MACs / sample", "dense / sample",
          "energy / sample (uJ)"]
    sr = [
        [r["name"], r["type"], r["input"], _fmt(r["sops_per_sample"]),
         _fmt(r["macs_per_sample"]), _fmt(r["dense_ops_per_sample"]),
         _fmt(r["energy_uj_per_sample"])]
        for r in d["synaptic_layers"]
    ]
    return nh, nr, sh, sr


def _membrane_stats(model, profile: Profile, first_x: torch.Tensor):
    """Membrane traces of the first spiking layer's neurons whose firing rate is
    nearest 0.4 (they both integrate and fire, so the trace shows both), for the
    first test sample (a second, one-sample pass with the membrane recorded)."""
    name, stats = next(iter(profile.neurons.items()))
    idx = (stats.rate_per_neuron - 0.4).abs().argsort(stable=True)[:MEMBRANE_NEURONS].tolist()
    with torch.no_grad(), SpikeMonitor(model, membrane={name: idx}) as mon:
        model(first_x[:, :1])
    return mon.layers()[name]


def make_report(
    run_dir: str,
    out: str | None = None,
    fmt: str = "png",
    samples: int = 256,
    energy: EnergyModel | None = None,
) -> RunReport:
    """Profile the trained model of ``run_dir`` and write its HTML report.

    Args:
        run_dir: a directory written by ``spikeforge train`` (needs ``config.yaml``
            and ``model.safetensors``; ``metrics.json`` adds the training curves).
        out: the HTML file (default ``RUN_DIR/report.html``).
        fmt: figure format, ``png`` or ``svg`` (embedded either way).
        samples: how many test samples to profile.
        energy: the energy model (default 0.9 pJ per AC, 4.6 pJ per MAC).
    """
    if fmt not in plots.FORMATS:
        raise ValueError(f"report format must be one of {plots.FORMATS}, got {fmt!r}")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if not os.path.isdir(run_dir):
        raise RunDirError(f"run directory {run_dir} does not exist")
    trainer = load_trained(run_dir)
    model = trainer.model
    spiking_layer_names(model)
    metrics = {}
    mpath = os.path.join(run_dir, "metrics.json")
    if os.path.exists(mpath):
        with open(mpath) as f:
            metrics = json.load(f)
    batches = list(profile_batches(trainer, samples))
    profile = profile_model(model, batches, energy)

    figs = {
        "Spike raster": plots.plot_raster(profile.neurons),
        "Firing rates": plots.plot_firing_rates(profile.neurons),
        "Membrane traces": plots.plot_membrane(_membrane_stats(model, profile, batches[0][0])),
    }
    if metrics.get("train_loss"):
        figs["Training curves"] = plots.plot_training(metrics)
    if profile.accuracy_vs_steps and len(profile.accuracy_vs_steps) > 1:
        figs["Accuracy versus time steps"] = plots.plot_accuracy_vs_steps(
            profile.accuracy_vs_steps
        )
    fig_dir = os.path.join(run_dir, "report")
    os.makedirs(fig_dir, exist_ok=True)
    images, paths = {}, {}
    for title, fig in figs.items():
        data = plots.figure_bytes(fig, fmt)
        path = os.path.join(fig_dir, title.lower().replace(" ", "_") + f".{fmt}")
        atomic_write_bytes(path, data)
        images[title], paths[title] = data, path
    out = out or os.path.join(run_dir, "report.html")
    report = RunReport(run_dir, out, metrics, profile, paths)
    atomic_write_text(out, render_html(report, images, fmt))
    return report


def _table(header: list[str], rows: list[list[str]], cls: str) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
td:first-child,th:first-child{text-align:left} th{background:#f2f2f2}
figure{margin:1em 0} img{max-width:100%} .note{color:#555;font-size:.85em}
"""


def render_html(report: RunReport, images: dict[str, bytes], fmt: str) -> str:
    """The self-contained page: summary table, the two per-layer tables, the figures."""
    mime = "image/svg+xml" if fmt == "svg" else "image/png"
    nh, nr, sh, sr = layer_tables(report.profile)
    summary = _table(["quantity", "value"], [list(r) for r in report.summary()], "summary")
    figs = "".join(
        f'<figure><img alt="{html.escape(t)}" src="data:{mime};base64,'
        f'{base64.b64encode(b).decode()}"><figcaption>{html.escape(t)}</figcaption></figure>'
        for t, b in images.items()
    )
    e = report.profile.energy
    title = html.escape(f"spikeforge report: {os.path.basename(os.path.abspath(report.run_dir))}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{_CSS}</style></head>
<body><h1>{title}</h1>
<h2>Summary</h2>{summary}
<p class="note">Per sample over the first {report.profile.samples} test samples. SOPs:
accumulates driven by spikes (one per non-zero input and non-zero connection, NeuroBench's
effective ACs); MACs: multiply-accumulates driven by analog inputs; energy
E = {e.e_ac_pj} pJ x SOPs + {e.e_mac_pj} pJ x MACs (45 nm, Horowitz 2014).</p>
<h2>Spiking layers</h2>{_table(nh, nr, "neurons")}
<h2>Synaptic layers</h2>{_table(sh, sr, "synapses")}
<h2>Figures</h2>{figs}
</body></html>
"""


def print_summary(report: RunReport, console=None) -> None:
    """Print the summary and the per-layer tables in the terminal (rich)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if not console.is_terminal:  # piped: wide enough that no number is cut
        console = Console(file=console.file, width=max(console.width, 120))
    t = Table(title=f"spikeforge report: {report.run_dir}")
    t.add_column("quantity", no_wrap=True)
    t.add_column("value", justify="right")
    for k, v in report.summary():
        t.add_row(k, v)
    console.print(t)
    nh, nr, sh, sr = layer_tables(report.profile)
    for title, header, rows in (("spiking layers", nh, nr), ("synaptic layers", sh, sr)):
        lt = Table(title=title)
        for i, h in enumerate(header):
            lt.add_column(h, justify="left" if i == 0 else "right", no_wrap=i == 0)
        for r in rows:
            lt.add_row(*r)
        console.print(lt)
    console.print(f"report written to {report.html_path}")
