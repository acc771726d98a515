"""Activation statistics of an ANN on calibration data, and the thresholds from them.

Threshold balancing (Diehl et al., IJCNN 2015; Rueckauer et al., Front. Neurosci.
2017): the IF threshold of layer ``l`` is the largest activation that layer should
represent, ``theta_l = max(a_l)`` or, robust to outliers, a high percentile of
``a_l`` over the calibration samples (Rueckauer et al. use the 99.9th; so do we
by default, over all activation values of the layer, zeros included, as
SpikingJelly's ``ann2snn`` does). A QCFS layer brings its own bound ``lambda``,
which is its threshold (Bu et al., ICLR 2022).
"""

from __future__ import annotations

import torch
from torch import fx, nn

from spikeforge.layers.qcfs import QCFS
from spikeforge.models.converted import activation_names

_QUANTILE_MAX = 1 << 24  # torch.quantile's input limit


@torch.no_grad()
def activation_outputs(ann: fx.GraphModule, x: torch.Tensor, names: list[str] | None = None,
                       batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Outputs ``[N, ...]`` of the named activation modules of ``ann`` for inputs ``x``
    ``[N, ...]`` (default: every activation of a graph from ``ann_graph``)."""
    names = activation_names(ann) if names is None else names
    ann.eval()
    store: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    modules = dict(ann.named_modules())
    handles = [modules[n].register_forward_hook(_saver(store[n])) for n in names]
    try:
        for i in range(0, len(x), batch_size):
            ann(x[i : i + batch_size])
    finally:
        for h in handles:
            h.remove()
    return {n: torch.cat(v) for n, v in store.items()}


def _saver(out: list):
    def hook(module, inputs, output):
        out.append(output.detach())
    return hook


def robust_max(values: torch.Tensor, method: str = "percentile", percentile: float = 99.9) -> float:
    """``max(values)`` (``method="max"``) or their ``percentile``-th percentile.

    Beyond 2^24 values (``torch.quantile``'s limit) an evenly strided subset is used.
    """
    v = values.detach().flatten().float()
    if method == "max":
        return float(v.max())
    if method != "percentile":
        raise ValueError(f"threshold method must be 'max' or 'percentile', got {method!r}")
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    if v.numel() >= _QUANTILE_MAX:
        v = v[:: v.numel() // (_QUANTILE_MAX - 1) + 1]
    return float(torch.quantile(v, percentile / 100.0))


@torch.no_grad()
def estimate_thresholds(ann: fx.GraphModule, x: torch.Tensor, method: str = "percentile",
                        percentile: float = 99.9, batch_size: int = 256) -> dict[str, float]:
    """Threshold of every activation of ``ann`` (a graph from ``ann_graph``) from its
    outputs on the calibration inputs ``x``: the QCFS bound where the layer is a
    :class:`QCFS`, else :func:`robust_max`. A layer silent on every sample gets 1."""
    modules = dict(ann.named_modules())
    names = activation_names(ann)
    relu_names = [n for n in names if not isinstance(modules[n], QCFS)]
    acts = activation_outputs(ann, x, relu_names, batch_size) if relu_names else {}
    out = {}
    for n in names:
        m: nn.Module = modules[n]
        th = float(m.bound) if isinstance(m, QCFS) else robust_max(acts[n], method, percentile)
        out[n] = th if th > 0 else 1.0
    return out
