"""Lower a trained feed-forward SNN to a chain of sparse affine maps and neurons.

Event-driven hardware, and the simulator in :mod:`spikeforge.deploy.event_driven`,
see a network as stages: spikes of one layer of neurons (or the input events)
go through an affine map ``y = W s + b`` (every Conv, Linear, batch norm,
average pooling and flatten between two layers of neurons, composed into one
map, batch norm folded in) into the next layer of neurons, or into the readout.

:func:`lower_model` walks the model's modules in the order they were
registered, groups the affine modules between spiking neurons, and measures
each group's map by pushing the basis vectors through it in evaluation mode
(``W[:, i] = f(e_i) - f(0)``, ``b = f(0)``): exact for any composition of the
supported modules, batch norm folded as it computes in evaluation mode. The
result is checked by running the lowered network clock-driven against the
model on a random input: a model whose ``forward`` is not the chain of its
modules is refused rather than deployed wrong.

Max pooling directly after a layer of neurons is kept as an OR-pool stage: on
binary spikes of one time step, ``max`` over a window is the OR of its spikes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from spikeforge.deploy.graph import (
    NIRFlatten,
    NIRGraphError,
    NIRGraphModule,
    Scale,
    SumPool2d,
    Threshold,
)
from spikeforge.errors import SpikeforgeError
from spikeforge.layers import Flatten, TimeDistributed
from spikeforge.neurons import SpikingNeuron

#: Modules that are affine in evaluation mode and may sit between neurons.
AFFINE_TYPES = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.Flatten,
    nn.Identity,
    nn.Dropout,
    Flatten,
    NIRFlatten,
    Scale,
    SumPool2d,
)


class SpikeOrPool2d(nn.Module):
    """NIR's max pooling of spikes, ``SumPool2d`` then ``Threshold(theta)`` with
    ``0 <= theta < 1`` (how :mod:`spikeforge.deploy.nir_export` writes a max pool after
    neurons): on 0/1 spikes the window's sum exceeds ``theta`` exactly when any spike is
    in it, the OR that a max pool computes."""

    def __init__(self, pool: SumPool2d, threshold: float) -> None:
        super().__init__()
        self.pool, self.threshold = pool, float(threshold)
        self.kernel_size, self.stride, self.padding = pool.kernel_size, pool.stride, pool.padding
        self.dilation = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.pool(x) > self.threshold).to(x.dtype)


POOL_TYPES = (nn.MaxPool1d, nn.MaxPool2d, SpikeOrPool2d)
RESET_CODES = {"hard": 0, "soft": 1, "none": 2}


class DeploymentError(SpikeforgeError, ValueError):
    """The model cannot be deployed event-driven; the message names the layer."""


@dataclass
class NeuronLayer:
    """Parameters of one layer of IF/LIF neurons (the discrete update of
    :mod:`spikeforge.functional.neuron` with leak ``k``; ``k = 0`` is IF).
    ``multi_spike``: ``floor(H / V_th)`` spikes per step, soft reset
    (:class:`~spikeforge.neurons.multispike.MultiSpikeIF`). ``v_min``: the membrane
    floor (``None``: none), ``V = max(V, v_min)`` after every reset. ``v_init``: the
    initial membrane per neuron (flat; ``None``: ``v_rest``), as an ANN-to-SNN
    converted network's neurons start (``spikeforge_v_init`` of its NIR file)."""

    name: str
    k: float
    decay_input: bool
    v_threshold: float
    v_reset: float
    v_rest: float
    reset: str
    fire_strict: bool = False  # fire at H > V_th (NIR, snnTorch, Norse) instead of >=
    multi_spike: bool = False
    v_min: float | None = None
    v_init: np.ndarray | None = None

    @property
    def is_lif(self) -> bool:
        return self.k != 0.0


@dataclass
class Stage:
    """One affine map into a layer of neurons (or into the readout when ``neurons``
    is ``None``): ``weight`` is CSR ``[n_in, n_out]`` (row ``i`` lists the targets
    of input ``i``), ``bias`` ``[n_out]``. ``pool`` is set instead for an OR-pool
    stage: ``pool[i]`` is the output index input ``i`` maps to (-1: none)."""

    names: list[str]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight: sp.csr_matrix | None
    bias: np.ndarray
    neurons: NeuronLayer | None
    pool: np.ndarray | None = None

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))


@dataclass
class LoweredNetwork:
    """Stages in order; the input events feed stage 0. ``readout`` says whether the
    last stage ends in a non-spiking readout (class scores) or in neurons."""

    input_shape: tuple[int, ...]
    stages: list[Stage] = field(default_factory=list)

    @property
    def readout(self) -> bool:
        return self.stages[-1].neurons is None

    def clock_driven(self, frames: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the lowered network clock-driven on ``frames`` ``[T, B, *input_shape]``
        (float64): returns the last stage's output ``[T, B, n_out]`` and the spikes
        of every neuron stage. The reference the simulator is checked against."""
        t_steps, batch = frames.shape[:2]
        x = frames.reshape(t_steps, batch, -1).to(torch.float64)
        spikes = []
        for st in self.stages:
            if st.pool is not None:
                x = _or_pool(x, st.pool, st.n_out)
                continue
            w = torch.from_numpy(st.weight.toarray())
            y = x @ w + torch.from_numpy(st.bias)
            if st.neurons is None:
                x = y
                break
            x = _neuron_loop(y, st.neurons)
            spikes.append(x)
        return x, spikes


def _or_pool(x: torch.Tensor, pool: np.ndarray, n_out: int) -> torch.Tensor:
    """Max pooling of binary spikes ``x`` ``[T, B, N_in]`` as an OR: output ``pool[i]``
    fires when any input ``i`` mapped to it fires (``pool[i] < 0``: not pooled).
    Spikes are 0/1, so the OR is the sum clamped to 1."""
    out = torch.zeros(*x.shape[:2], n_out, dtype=x.dtype)
    keep = torch.from_numpy(pool >= 0)
    idx = torch.from_numpy(pool[pool >= 0]).long()
    return out.index_add_(2, idx, x[..., keep]).clamp_(max=1)


def _neuron_loop(x: torch.Tensor, n: NeuronLayer) -> torch.Tensor:
    """The reference discrete update, written with the same operation order as
    :func:`spikeforge.functional.neuron.charge` so float64 results agree bit for bit."""
    v = torch.full_like(x[0], n.v_rest) if n.v_init is None else \
        torch.from_numpy(n.v_init).to(x.dtype).expand_as(x[0]).clone()
    out = []
    for t in range(x.shape[0]):
        if not n.is_lif:
            h = v + x[t]
        elif n.decay_input:
            h = v + n.k * (x[t] - (v - n.v_rest))
        else:
            h = v - n.k * (v - n.v_rest) + x[t]
        s = (h > n.v_threshold if n.fire_strict else h >= n.v_threshold).to(x.dtype)
        if n.multi_spike:  # same expression as the kernel: floor(H / V_th) spikes
            s = torch.where(s > 0, torch.floor(h / n.v_threshold), 0.0 * h)
            v = h - n.v_threshold * s
        elif n.reset == "hard":
            v = h * (1 - s) + n.v_reset * s
        elif n.reset == "soft":
            v = h - n.v_threshold * s
        else:
            v = h
        if n.v_min is not None:
            v = torch.clamp(v, min=n.v_min)
        out.append(s)
    return torch.stack(out)


def _leaf_sequence(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Atomic modules in registration order: neurons, TimeDistributed wrappers and
    torch leaves (a container's children stand for it); an imported NIR graph gives its
    nodes in the graph's order (:func:`_nir_chain`)."""
    out: list[tuple[str, nn.Module]] = []

    def walk(prefix: str, m: nn.Module) -> None:
        if isinstance(m, NIRGraphModule):
            out.extend(_nir_chain(prefix, m))
            return
        if isinstance(m, (SpikingNeuron, TimeDistributed)) or not list(m.children()):
            out.append((prefix, m))
            return
        for name, child in m.named_children():
            walk(f"{prefix}.{name}" if prefix else name, child)

    walk("", model)
    return out


def _nir_chain(prefix: str, graph: NIRGraphModule) -> list[tuple[str, nn.Module]]:
    """The nodes of an imported NIR graph in order, when the graph is a chain (each node
    one input and one output edge, no cycle); ``SumPool2d`` then ``Threshold`` in
    ``[0, 1)`` becomes a :class:`SpikeOrPool2d`. Branches, sums of edges and recurrence
    are named errors: the stages of event-driven deployment form a chain."""
    succ = {n: [b for a, b in graph.edges if a == n] for n in graph.node_names}
    if graph.cyclic:
        raise DeploymentError("the NIR graph is recurrent (it has a cycle); event-driven "
                              "deployment runs feed-forward chains")
    for n in graph.order:
        if len(graph.preds[n]) > 1 or len(succ[n]) > 1:
            raise DeploymentError(
                f"NIR node {n!r} has {len(graph.preds[n])} input and {len(succ[n])} output "
                "edges; event-driven deployment runs chains (no branches or summed inputs)")
    nodes = [(f"{prefix}.{n}" if prefix else n, graph.module(n)) for n in graph.order
             if graph.module(n) is not None]
    out: list[tuple[str, nn.Module]] = []
    for name, m in nodes:
        if isinstance(m, Threshold) and out and isinstance(out[-1][1], SumPool2d):
            theta = m.threshold.unique()
            if theta.numel() == 1 and 0.0 <= float(theta) < 1.0:
                out[-1] = (out[-1][0], SpikeOrPool2d(out[-1][1], float(theta)))
                continue
        out.append((name, m))
    return out


def _unwrap(m: nn.Module) -> nn.Module:
    return m.layer if isinstance(m, TimeDistributed) else m


def neuron_layer(name: str, m: SpikingNeuron) -> NeuronLayer:
    """The parameters of a spikeforge IF/LIF/PLIF module, or a named error for a type or
    option the event-driven update does not implement."""
    spec = m.spec
    kind = getattr(spec, "kind", "lif")
    if kind not in ("if", "lif", "if_multi"):
        raise DeploymentError(
            f"layer {name!r} is a {type(m).__name__} (kind {kind!r}); event-driven "
            "deployment runs IF and LIF neurons"
        )
    unsupported = [
        opt for opt in ("reset_delay",) if getattr(spec, opt, False)
    ] + (["learn_threshold"] if getattr(m, "threshold", None) is not None else [])
    if unsupported:
        raise DeploymentError(
            f"layer {name!r} ({type(m).__name__}) uses {', '.join(unsupported)}, which the "
            "event-driven update does not implement"
        )
    params = m.params()
    k = 0.0 if kind in ("if", "if_multi") else float(params[0])
    return NeuronLayer(
        name=name,
        k=k,
        decay_input=bool(spec.decay_input),
        v_threshold=float(spec.v_threshold),
        v_reset=float(spec.v_reset),
        v_rest=float(spec.v_rest),
        reset=spec.reset,
        fire_strict=bool(getattr(spec, "fire_strict", False)),
        multi_spike=kind == "if_multi",
        v_min=getattr(spec, "v_min", None),
    )


@torch.no_grad()
def _affine_map(mods: list[nn.Module], in_shape: tuple[int, ...], chunk: int = 512):
    """CSR ``W`` ``[n_in, n_out]``, bias and output shape of the composition of ``mods``."""

    def f(x: torch.Tensor) -> torch.Tensor:
        for m in mods:
            # spikeforge's Flatten keeps [T, B]; here the batch is the only leading dim.
            x = x.flatten(1) if isinstance(m, Flatten) else m(x)
        return x

    zero = torch.zeros(1, *in_shape, dtype=torch.float64)
    b = f(zero)
    out_shape = tuple(b.shape[1:])
    bias = b.reshape(-1).numpy().copy()
    n_in = int(np.prod(in_shape))
    blocks = []
    for s in range(0, n_in, chunk):
        e = min(n_in, s + chunk)
        basis = torch.zeros(e - s, n_in, dtype=torch.float64)
        basis[torch.arange(e - s), torch.arange(s, e)] = 1.0
        cols = f(basis.reshape(e - s, *in_shape)).reshape(e - s, -1) - b.reshape(1, -1)
        cols[cols.abs() < 1e-300] = 0.0
        blocks.append(sp.csr_matrix(cols.numpy()))
    return sp.vstack(blocks, format="csr"), bias, out_shape


def _pool_map(m: nn.Module, in_shape: tuple[int, ...]):
    """Output index of each input of a non-overlapping max pool (-1: in no window).

    Along each spatial axis input ``y`` falls in window ``o = (y + pad) // stride``
    when ``(y + pad) - o * stride < kernel`` and ``o`` is an output position."""
    one = isinstance(m, nn.MaxPool1d)
    nd = 1 if one else 2

    def tup(v):
        return (v,) * nd if isinstance(v, int) else tuple(v)

    k, st, pad, dil = tup(m.kernel_size), tup(m.stride or m.kernel_size), tup(m.padding), tup(
        m.dilation
    )
    if any(d != 1 for d in dil) or any(kk > ss for kk, ss in zip(k, st)):
        raise DeploymentError(
            f"{m}: event-driven max pooling needs dilation 1 and non-overlapping windows "
            "(stride >= kernel)"
        )
    out_shape = tuple(int(d) for d in m(torch.zeros(1, *in_shape, dtype=torch.float64)).shape[1:])
    axes = []
    for size, kk, ss, pp, osz in zip(in_shape[1:], k, st, pad, out_shape[1:]):
        y = np.arange(size) + pp
        o = y // ss
        ok = (y - o * ss < kk) & (o < osz)
        axes.append(np.where(ok, o, -1))
    c = in_shape[0]
    if one:
        (ox,) = axes
        idx = np.arange(c)[:, None] * out_shape[1] + ox[None, :]
        valid = np.broadcast_to(ox[None, :] >= 0, idx.shape)
    else:
        oy, ox = axes
        idx = (np.arange(c)[:, None, None] * out_shape[1] + oy[None, :, None]) * out_shape[
            2
        ] + ox[None, None, :]
        valid = (oy[None, :, None] >= 0) & (ox[None, None, :] >= 0)
        valid = np.broadcast_to(valid, idx.shape)
    return np.where(valid, idx, -1).reshape(-1).astype(np.int64), out_shape


def lower_model(model: nn.Module, input_shape, check: bool = True) -> LoweredNetwork:
    """Lower ``model`` (per-sample input shape ``input_shape``) to a :class:`LoweredNetwork`.

    Supported: chains of Linear, Conv1d/2d (any stride, padding, groups,
    dilation), BatchNorm (folded), AvgPool, Flatten, Dropout/Identity (evaluation
    mode), spikeforge IF/LIF/PLIF neurons (firing at ``>=`` or, ``fire_strict``, ``>``),
    and max pooling right after neurons; and imported NIR graphs that are chains of
    Affine/Linear, Conv, Flatten, Scale, SumPool2d (``+ Threshold`` as max pooling after
    neurons), AvgPool2d, IF and LIF nodes (with their initial membranes). An ANN-to-SNN
    converted network (:class:`~spikeforge.convert.ConvertedSNN`) is lowered through its
    NIR graph (thresholds folded into the weights, :mod:`spikeforge.deploy.nir_converted`).
    Raises :class:`DeploymentError` naming the first module that is none of these.
    """
    model = _converted_as_graph(model, input_shape)
    model = copy.deepcopy(model).double().eval()
    inits = {id(g.module(n)): g.initial_membrane(n)
             for g in model.modules() if isinstance(g, NIRGraphModule) for n in g.initial_nodes}
    in_shape = tuple(int(d) for d in input_shape)
    net = LoweredNetwork(input_shape=in_shape)
    pending: list[tuple[str, nn.Module]] = []
    shape = in_shape
    last_was_neuron = False
    for name, m in _leaf_sequence(model):
        inner = _unwrap(m)
        if isinstance(m, SpikingNeuron):
            mods = [mm for _, mm in pending]
            w, b, out_shape = _affine_map(mods, shape)
            layer = neuron_layer(name, m)
            if id(m) in inits:
                v0 = inits[id(m)].detach().expand(out_shape).reshape(-1)
                layer.v_init = v0.numpy().astype(np.float64)
            net.stages.append(Stage([n for n, _ in pending], shape, out_shape, w, b, layer))
            shape, pending, last_was_neuron = out_shape, [], True
        elif isinstance(inner, POOL_TYPES):
            if not (last_was_neuron and not pending):
                raise DeploymentError(
                    f"layer {name!r} ({type(inner).__name__}) is max pooling of analog values; "
                    "event-driven deployment takes max pooling only right after neurons"
                )
            if net.stages[-1].neurons.multi_spike:
                raise DeploymentError(
                    f"layer {name!r} ({type(inner).__name__}) max-pools spike counts of "
                    "multi-spike neurons, which the OR-pool does not implement"
                )
            pool, out_shape = _pool_map(inner, shape)
            net.stages.append(Stage([name], shape, out_shape, None, np.zeros(0), None, pool))
            shape = out_shape
        elif isinstance(inner, AFFINE_TYPES):
            pending.append((name, inner))
            last_was_neuron = False
        else:
            raise DeploymentError(
                f"layer {name!r} is a {type(inner).__name__}, which event-driven deployment "
                "does not run (supported: Linear, Conv1d/2d, BatchNorm, AvgPool, Flatten, "
                "Dropout, max pooling after neurons, IF/LIF/PLIF neurons; from NIR: Affine, "
                "Linear, Conv, Flatten, Scale, SumPool2d, IF, LIF)"
            )
    if pending:
        w, b, out_shape = _affine_map([mm for _, mm in pending], shape)
        net.stages.append(Stage([n for n, _ in pending], shape, out_shape, w, b, None))
    if not any(st.neurons is not None for st in net.stages):
        raise DeploymentError("the model has no spiking neurons to deploy")
    if check:
        _check_against_model(model, net)
    return net


def _converted_as_graph(model: nn.Module, input_shape) -> nn.Module:
    """A converted SNN as the graph its NIR export imports to (same spikes, the
    thresholds folded into the weights, the initial membranes kept); else ``model``."""
    from spikeforge.models.converted import ConvertedSNN

    if not isinstance(model, ConvertedSNN):
        return model
    import warnings

    from spikeforge.deploy.nir_export import NIRExportWarning, to_nir
    from spikeforge.deploy.nir_import import from_nir

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NIRExportWarning)
            return from_nir(to_nir(model, input_shape), backend="reference")
    except NIRGraphError as err:
        raise DeploymentError(f"converted network: {err}") from err


@torch.no_grad()
def _check_against_model(model: nn.Module, net: LoweredNetwork) -> None:
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(3, 2, *net.input_shape, generator=gen) < 0.3).double()
    ref = model(x)
    out, _ = net.clock_driven(x)
    ref = ref.reshape(out.shape)
    if not torch.allclose(out, ref, rtol=1e-6, atol=1e-6):
        raise DeploymentError(
            "the model's forward is not the chain of its modules in registration order "
            f"(lowered output differs by {float((out - ref).abs().max()):.3g}); "
            "event-driven deployment needs a plain feed-forward chain"
        )
