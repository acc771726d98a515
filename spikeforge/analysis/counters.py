"""Synaptic-operation counters, one per layer type, behind a registry keyed by module type.

A counter receives one forward call of a layer (its inputs and output) and
returns a :class:`LayerOps`. The definitions follow NeuroBench 2.x
(Yik et al., "The neurobench framework for benchmarking neuromorphic computing
algorithms and systems", Nature Communications 2025;
``neurobench/metrics/utils/layers/macs.py``):

* **effective operations**: one operation per pair (non-zero input, non-zero
  weight) that the layer's connectivity joins, bias excluded. Inputs whose
  values are all in ``{-1, 0, 1}`` are spikes and each operation is an
  accumulate (AC, a *synaptic operation*, SOP); any other input is analog and
  each operation is a multiply-accumulate (MAC), e.g. the first layer under
  direct encoding.
* **dense operations**: every connection of the layer counted for every input
  element, zeros included (NeuroBench's ``Dense``).

Where we differ from NeuroBench, on purpose:

* Non-negative *integer* inputs larger than one (spike counts, e.g. the output
  of a SEW ``ADD`` residual join, Fang et al. NeurIPS 2021) are spikes
  arriving together: an input of value ``n`` costs ``n`` accumulates per
  connection. NeuroBench calls such an input analog and counts one MAC per
  non-zero input and connection.
* Average pooling is counted: each input spike is accumulated into every
  pooling window that holds it (the ``1/k^2`` scale folds into the next
  layer's weights). NeuroBench counts no pooling. Max pooling on spikes is a
  comparison (an OR on binary inputs), not a synaptic operation: 0.
* The spike-matrix products of spiking attention are counted when written
  with :class:`spikeforge.layers.SpikeMatmul` (NeuroBench cannot see them).

A new layer type registers its counter with :func:`register_counter`; a module
whose type (or a base class of it) has no counter is not counted.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from spikeforge.layers.matmul import SpikeMatmul

#: Input kinds: ``spikes`` (values in {-1, 0, 1}), ``counts`` (integers), ``analog``.
KINDS = ("spikes", "counts", "analog", "none")


@dataclass
class LayerOps:
    """Operations of one forward call of one layer (over its whole batch).

    ``sops``: accumulates driven by spikes (SOPs); ``macs``: multiply-accumulates
    driven by analog inputs; ``dense``: all connections for all inputs, zeros
    included; ``kind``: the input kind the call was classified as (:data:`KINDS`).
    """

    sops: float = 0.0
    macs: float = 0.0
    dense: float = 0.0
    kind: str = "none"


Counter = Callable[[nn.Module, tuple, object], LayerOps]
COUNTERS: dict[type, Counter] = {}


def register_counter(*types: type):
    """Decorator registering ``fn(module, inputs, output) -> LayerOps`` for module ``types``.

    Lookup walks the module's class hierarchy, so a subclass of ``nn.Conv2d``
    is counted as a convolution unless it registers its own counter.
    """

    def wrap(fn: Counter) -> Counter:
        for t in types:
            COUNTERS[t] = fn
        return fn

    return wrap


def find_counter(module: nn.Module) -> Counter | None:
    """The counter registered for ``type(module)`` or its nearest base class, else None."""
    for cls in type(module).__mro__:
        if cls in COUNTERS:
            return COUNTERS[cls]
    return None


def input_kind(x: torch.Tensor) -> str:
    """Classify a layer input: ``spikes`` if every value is in {-1, 0, 1},
    ``counts`` if every value is an integer, else ``analog``."""
    if not x.is_floating_point():
        return "spikes" if x.abs().max() <= 1 else "counts"
    a = x.detach().abs()
    if not bool((a == a.round()).all()):
        return "analog"
    return "spikes" if a.numel() == 0 or float(a.max()) <= 1 else "counts"


def input_weight(x: torch.Tensor, kind: str) -> torch.Tensor:
    """What each input element costs per connection: ``|x|`` (spikes and spike
    counts: one accumulate per spike) or ``x != 0`` (analog: one MAC)."""
    x = x.detach()
    return (x != 0).to(torch.float32) if kind == "analog" else x.abs().to(torch.float32)


# -- fan-out maps --------------------------------------------------------------


def _grad_fanout(fn: Callable[[torch.Tensor], torch.Tensor], shape, device) -> torch.Tensor:
    """``d sum(fn(x)) / dx`` at ``x = 1`` for a linear ``fn``: how many outputs
    (times the weight, here 0/1) each input element of one sample reaches."""
    with torch.enable_grad():
        x = torch.ones((1, *shape), dtype=torch.float64, device=device, requires_grad=True)
        (g,) = torch.autograd.grad(fn(x).sum(), x)
    return g[0]


class _FanoutCache:
    """Per-module cache of ``(effective fan-out map, dense fan-out total)``, keyed by
    the sample shape and device and checked against the weight's identity and
    in-place version (an optimizer step bumps it, so a map is never stale).
    Weakly keyed by the module: a deleted model takes its maps with it."""

    def __init__(self) -> None:
        self._maps: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get(self, module: nn.Module, shape, device, build) -> tuple[torch.Tensor, float]:
        """The cached value for ``module`` at this sample ``shape``, else ``build()``."""
        w = getattr(module, "weight", None)
        key = (tuple(shape), str(device))
        version = None if w is None else (id(w), w._version)
        per_module = self._maps.setdefault(module, {})
        hit = per_module.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = build()
        per_module[key] = (version, value)
        return value


FANOUTS = _FanoutCache()


def batch_cost(x: torch.Tensor) -> tuple[str, torch.Tensor]:
    """``(kind, c)`` with ``c = sum_n cost(x[n])`` over the leading (batch) dim.

    The common case, spikes in {0, 1}, is recognised with read-only reductions,
    so monitoring stays cheap: min/max, the sum, and ``sum(x^2)`` (one BLAS dot):
    with every value in [0, 1], ``x^2 <= x`` with equality only at 0 and 1, so
    ``sum(x^2) == sum(x)`` holds exactly when the input is binary. The float32
    dot is exact while the spike count stays below 2^24; above that (or for a
    non-contiguous input) the non-zero count replaces it (``sum == nnz``).
    Anything else goes through :func:`input_kind`.
    """
    x = x.detach()
    if not x.is_floating_point():
        x = x.float()
    if x.numel() == 0:
        return "spikes", x.sum(0)
    lo, hi = torch.aminmax(x)
    if float(lo) >= 0 and float(hi) <= 1:
        c = x.sum(0)
        total = float(c.sum(dtype=torch.float64))
        if x.dtype == torch.float32 and x.is_contiguous() and total < 2**24:
            flat = x.view(-1)
            binary = float(torch.dot(flat, flat)) == total
        else:
            binary = int(torch.count_nonzero(x)) == total
        if binary:
            return "spikes", c
        return "analog", (x != 0).sum(0, dtype=torch.float32)
    kind = input_kind(x)
    return kind, input_weight(x, kind).sum(0)


def _ops(x: torch.Tensor, sample_ndim: int, fanout: torch.Tensor, dense_per_sample: float):
    """``sum_n sum_i cost(x[n, i]) * fanout[i]`` (batch reduced first) and the dense count."""
    if x.dim() == sample_ndim:  # an unbatched call
        x = x.unsqueeze(0)
    x = x.reshape(-1, *x.shape[x.dim() - sample_ndim :])
    kind, cost = batch_cost(x)
    ops = float((cost.to(torch.float64) * fanout).sum())
    dense = dense_per_sample * x.shape[0]
    if kind == "analog":
        return LayerOps(macs=ops, dense=dense, kind=kind)
    return LayerOps(sops=ops, dense=dense, kind=kind)


# -- counters -------------------------------------------------------------------


@register_counter(nn.Linear)
def count_linear(module: nn.Linear, inputs: tuple, output) -> LayerOps:
    """``y = W x``: input ``i`` reaches every output ``j`` with ``W[j, i] != 0``."""
    x = inputs[0]

    def build():
        f = (module.weight.detach() != 0).sum(0).to(torch.float64)
        return f, float(module.out_features)

    fanout, dense_per_input = FANOUTS.get(module, (x.shape[-1],), x.device, build)
    return _ops(x, 1, fanout, dense_per_input * x.shape[-1])


@register_counter(nn.Conv1d, nn.Conv2d, nn.Conv3d)
def count_conv(module: nn.modules.conv._ConvNd, inputs: tuple, output) -> LayerOps:
    """Convolution with any kernel, stride, padding (mode included), groups and
    dilation: the fan-out of each input position is read off the layer itself
    (the gradient of its summed output at an all-ones input, weights made 0/1),
    so border effects of padding and stride are exact."""
    x = inputs[0]
    nd = module.weight.dim() - 1  # channels + spatial dims of one sample
    shape = tuple(x.shape[-nd:])

    def build():
        w = module.weight.detach()
        eff = _grad_fanout(
            lambda z: module._conv_forward(z, (w != 0).to(z.dtype), None), shape, x.device
        )
        dense = _grad_fanout(
            lambda z: module._conv_forward(z, torch.ones_like(w, dtype=z.dtype), None),
            shape,
            x.device,
        )
        return eff, float(dense.sum())

    fanout, dense_per_sample = FANOUTS.get(module, shape, x.device, build)
    return _ops(x, nd, fanout, dense_per_sample)


def _sum_pool(module, z: torch.Tensor) -> torch.Tensor:
    """The window sums of an average-pooling module (its average times the window size)."""
    k, s, p = module.kernel_size, module.stride, module.padding
    if isinstance(module, nn.AvgPool1d):
        return F.avg_pool1d(z, k, s, p, module.ceil_mode, module.count_include_pad) * k[0]
    pool = F.avg_pool2d if isinstance(module, nn.AvgPool2d) else F.avg_pool3d
    return pool(z, k, s, p, module.ceil_mode, module.count_include_pad, divisor_override=1)


@register_counter(nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
def count_avgpool(module: nn.Module, inputs: tuple, output) -> LayerOps:
    """Average pooling: each input is accumulated once into every window that holds it."""
    x = inputs[0]
    nd = {nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3}[
        next(c for c in type(module).__mro__ if c in (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d))
    ]
    shape = tuple(x.shape[-(nd + 1) :])  # channels + spatial

    def build():
        f = _grad_fanout(lambda z: _sum_pool(module, z), shape, x.device)
        return f, float(f.sum())

    fanout, dense_per_sample = FANOUTS.get(module, shape, x.device, build)
    return _ops(x, nd + 1, fanout, dense_per_sample)


@register_counter(
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)
def count_maxpool(module: nn.Module, inputs: tuple, output) -> LayerOps:
    """Max pooling: comparisons (an OR on binary spikes), no synaptic operation (its
    input is not even inspected, which keeps monitoring cheap)."""
    return LayerOps()


@register_counter(SpikeMatmul)
def count_matmul(module: SpikeMatmul, inputs: tuple, output) -> LayerOps:
    """``a @ b``: one operation per product of a non-zero ``a[..., i, j]`` and a
    non-zero ``b[..., j, k]``; accumulates (weighted by the spike count) when ``a``
    or ``b`` holds spikes, multiply-accumulates when both are analog."""
    a, b = inputs[0].detach(), inputs[1].detach()
    ka, kb = input_kind(a), input_kind(b)
    batch = math.prod(output.shape[:-2])  # the broadcast batch dims
    dense = float(batch * a.shape[-2] * a.shape[-1] * b.shape[-1])
    if ka != "analog":
        ops = float((input_weight(a, ka) @ (b != 0).to(torch.float32)).sum(dtype=torch.float64))
        return LayerOps(sops=ops, dense=dense, kind=ka)
    if kb != "analog":
        ops = float(((a != 0).to(torch.float32) @ input_weight(b, kb)).sum(dtype=torch.float64))
        return LayerOps(sops=ops, dense=dense, kind=kb)
    ops = float(((a != 0).to(torch.float32) @ (b != 0).to(torch.float32)).sum(dtype=torch.float64))
    return LayerOps(macs=ops, dense=dense, kind="analog")
