"""Figures of a profile and a run (matplotlib, Agg backend; PNG or SVG).

Each ``plot_*`` function returns a :class:`matplotlib.figure.Figure`;
:func:`figure_bytes` renders one to PNG or SVG bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display is ever needed
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from spikeforge.analysis.monitor import NeuronLayerStats  # noqa: E402

FORMATS = ("png", "svg")
MAX_RASTER_NEURONS = 512


def figure_bytes(fig: Figure, fmt: str = "png", dpi: int = 110) -> bytes:
    """Render ``fig`` as ``png`` or ``svg`` bytes and close it."""
    if fmt not in FORMATS:
        raise ValueError(f"plot format must be one of {FORMATS}, got {fmt!r}")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _grid(n: int, width: float = 10.0, row_height: float = 2.0):
    fig, axes = plt.subplots(
        n, 1, figsize=(width, row_height * n + 0.6), squeeze=False, layout="constrained"
    )
    return fig, [a[0] for a in axes]


def plot_raster(layers: Mapping[str, NeuronLayerStats]) -> Figure:
    """Spike raster of the first sample: one panel per layer, a dot per spike at
    (neuron, time step); at most :data:`MAX_RASTER_NEURONS` neurons per layer,
    evenly spaced over the layer (the flat index of a neuron is on the x axis)."""
    rows = [s for s in layers.values() if s.raster is not None]
    if not rows:
        raise ValueError("plot_raster: no layer kept a raster (SpikeMonitor(raster=True))")
    fig, axes = _grid(len(rows))
    for ax, s in zip(axes, rows):
        r = s.raster
        step = max(1, -(-r.shape[1] // MAX_RASTER_NEURONS))
        keep = torch.arange(0, r.shape[1], step)
        t, n = r[:, keep].nonzero(as_tuple=True)
        ax.scatter(keep[n].numpy(), t.numpy(), s=12, marker="|", color="black", linewidths=0.8)
        ax.set_ylim(-0.5, r.shape[0] - 0.5)
        ax.set_xlim(-0.5, r.shape[1] - 0.5)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("time step")
        shown = f"every {step}th of {s.neurons}" if step > 1 else f"all {s.neurons}"
        ax.set_title(f"{s.name}: {int(r.sum())} spikes; neurons shown: {shown}", fontsize=9)
    axes[-1].set_xlabel("neuron")
    fig.suptitle("Spike raster (first test sample)")
    return fig


def plot_firing_rates(layers: Mapping[str, NeuronLayerStats]) -> Figure:
    """Firing rate of each layer with its dead and saturated fractions (left) and
    the firing rate per time step (right)."""
    if not layers:
        raise ValueError("plot_firing_rates: no neuron layer ran")
    names = list(layers)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.4))
    pos = range(len(names))
    w = 0.27
    a.bar([p - w for p in pos], [layers[n].firing_rate for n in names], w, label="firing rate")
    a.bar(pos, [layers[n].dead_fraction() for n in names], w, label="dead fraction")
    a.bar(
        [p + w for p in pos],
        [layers[n].saturated_fraction() for n in names],
        w,
        label="saturated fraction",
    )
    a.set_xticks(list(pos), names, rotation=20, fontsize=8)
    a.set_ylim(0, 1)
    a.legend(fontsize=8)
    a.set_title("per layer")
    for n in names:
        r = layers[n].rate_per_step
        b.plot(range(1, len(r) + 1), r.numpy(), marker="o", label=n)
    b.set_xlabel("time step")
    b.set_ylabel("firing rate")
    b.legend(fontsize=8)
    b.set_title("per time step")
    return fig


def plot_membrane(stats: NeuronLayerStats) -> Figure:
    """Membrane traces (after reset) of the recorded neurons with the threshold and
    the spikes (the steps where the neuron fired, marked on the trace)."""
    if stats.membrane is None:
        raise ValueError(f"plot_membrane: layer {stats.name!r} recorded no membrane trace")
    v = stats.membrane
    fig, ax = plt.subplots(figsize=(10, 3.2))
    steps = range(1, v.shape[0] + 1)
    for j, idx in enumerate(stats.membrane_index):
        line = ax.plot(steps, v[:, j].numpy(), marker=".", label=f"neuron {idx}")[0]
        if stats.raster is not None:
            fired = stats.raster[:, idx].nonzero().flatten()
            ax.scatter(
                (fired + 1).numpy(), [stats.v_threshold] * len(fired), marker="^", s=50,
                color=line.get_color(), zorder=3,
            )
    ax.axhline(stats.v_threshold, ls="--", color="gray", label="threshold")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("time step")
    ax.set_ylabel("membrane (after reset)")
    ax.set_title(f"{stats.name}: membrane traces, spikes marked ^ at the threshold")
    ax.legend(fontsize=8)
    return fig


def plot_training(metrics: Mapping) -> Figure:
    """Training loss, and train and test accuracy, per epoch (from ``metrics.json``)."""
    loss = metrics.get("train_loss") or []
    if not loss:
        raise ValueError("plot_training: metrics.json holds no train_loss per epoch")
    epochs = range(1, len(loss) + 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.2))
    for ax in (a, b):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    a.plot(epochs, loss, marker="o")
    a.set_xlabel("epoch")
    a.set_ylabel("training loss")
    for key, label in (("train_accuracy", "train"), ("test_accuracy_per_epoch", "test")):
        if metrics.get(key):
            b.plot(epochs, metrics[key], marker="o", label=label)
    b.set_xlabel("epoch")
    b.set_ylabel("accuracy")
    b.legend()
    fig.suptitle("Training curves")
    return fig


def plot_accuracy_vs_steps(accuracy: Sequence[float]) -> Figure:
    """Accuracy of the mean output over the first ``t`` time steps, for every ``t``."""
    if not accuracy:
        raise ValueError("plot_accuracy_vs_steps: no accuracies given")
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(range(1, len(accuracy) + 1), accuracy, marker="o")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("time steps used")
    ax.set_ylabel("test accuracy")
    ax.set_title("Accuracy versus time steps")
    return fig
