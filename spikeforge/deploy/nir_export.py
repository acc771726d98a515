"""Export a spikeforge network to NIR (Pedersen et al., Nature Communications 2024), with
the ``nir`` package.

NIR is continuous-time. Under forward Euler with a step ``dt`` (what snnTorch and Norse
integrate), NIR's ``LIF``, ``tau dv/dt = (v_leak - v) + r I``, spike at
``v > v_threshold``, then ``v <- v_reset``, is::

    v[t] = v[t-1] + (dt / tau) ((v_leak - v[t-1]) + r x[t])

and spikeforge's ``LIF`` (``H = V + (X - (V - V_rest)) / tau_s`` with ``decay_input``,
``H = V - (V - V_rest) / tau_s + X`` without) is exactly this with::

    tau = tau_s dt,   r = 1 (decay_input) or r = tau_s (no input decay),   v_leak = V_rest

``CubaLIF`` (``I = I - I / tau_syn_s + X``) maps to NIR's ``tau_syn dI/dt = -I + w_in x``
with ``tau_syn = tau_syn_s dt`` and ``w_in = tau_syn_s``; ``IF`` (``H = V + X``) to NIR's
``dv/dt = r I`` with ``r = 1 / dt``.

``target`` picks the parametrisation the reader reads correctly:

- ``"nir"``: the above, for any ``dt`` (default 1e-3 s).
- ``"norse"`` (Norse 1.1 ``from_nir(graph, dt)``): the above with ``dt = 1e-3`` by default;
  Norse's importer ignores ``r`` of ``LIF``, so without input decay the factor ``tau_s``
  is folded into the weights and bias of the layer feeding the neuron and ``r = 1``.
- ``"snntorch"`` (snnTorch 1.0 ``import_from_nir``): ``dt = 1e-4`` (its importer fixes it);
  ``CubaLIF`` with ``r = tau_s`` (its importer requires it) and the input decay moved
  into ``w_in``.

What NIR cannot state (a soft or no reset, firing at ``>=`` where NIR fires at ``>``,
snnTorch's late reset, ``detach_reset``, the surrogate) is written into the node's
metadata (keys ``spikeforge_*``) and named in a :class:`NIRExportWarning`. The graph's
metadata holds ``dt``, the target and the exporter. Max pooling, which NIR 1.0 has no
node for, is exported only where its input is binary spikes (right after a spiking
neuron), as the exact ``SumPool2d`` followed by ``Threshold(0.5)``; BatchNorm (in eval
mode) is folded into the preceding convolution or linear layer.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

import spikeforge
from spikeforge.deploy.graph import (
    Delay,
    Integrator,
    LeakyIntegrator,
    NIRFlatten,
    NIRGraphError,
    NIRGraphModule,
    Scale,
    SumPool2d,
    Threshold,
)
from spikeforge.layers import Flatten, TimeDistributed
from spikeforge.neurons import IF, LIF, PLIF, CubaLIF, SpikingNeuron

TARGET_DT = {"nir": 1e-3, "norse": 1e-3, "snntorch": 1e-4}
# containers whose forward runs their children in order
SEQUENTIAL = ("SpikingCNN", "SpikingMLP")


class NIRExportWarning(UserWarning):
    """A property of a spikeforge node that NIR cannot state (kept in its metadata)."""


def _nir():
    try:
        import nir
    except ImportError as err:  # pragma: no cover - nir is in the test and deploy extras
        raise ImportError("NIR export needs the 'nir' package: pip install nir") from err
    return nir


def _leaves(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    if isinstance(model, nn.Sequential) or type(model).__name__ in SEQUENTIAL:
        out = []
        for name, child in model.named_children():
            out += _leaves(child, f"{prefix}{name}.")
        return out
    if isinstance(model, TimeDistributed):
        return [(prefix.rstrip("."), model.layer)]
    return [(prefix.rstrip(".") or type(model).__name__, model)]


def _arr(value, shape) -> np.ndarray:
    return np.full(shape, value, dtype=np.float32) if np.ndim(value) == 0 else \
        np.broadcast_to(np.asarray(value, dtype=np.float32), shape).copy()


def to_nir(model: nn.Module, input_shape, dt: float | None = None, target: str = "nir"):
    """The NIR graph of ``model`` (a time-first chain, a zoo model, an imported
    :class:`NIRGraphModule` or an ANN-to-SNN converted network, whose thresholds are
    folded into the weights: :mod:`spikeforge.deploy.nir_converted`) for per-sample
    input shape ``input_shape`` and step ``dt`` seconds (default: the target's, see the
    module docstring).

    Raises :class:`NIRGraphError` naming the module NIR cannot express.
    """
    nir = _nir()
    if target not in TARGET_DT:
        raise NIRGraphError(f"target must be one of {tuple(TARGET_DT)}, got {target!r}")
    if dt is None:
        dt = TARGET_DT[target]
    dt = float(dt)
    if not dt > 0:
        raise NIRGraphError(f"dt must be a positive number of seconds, got {dt}")
    if target == "snntorch" and not np.isclose(dt, 1e-4):
        raise NIRGraphError(f"target='snntorch' needs dt=1e-4: snnTorch 1.0's importer fixes "
                         f"dt = 1e-4, got dt={dt}")
    model = model.eval()
    from spikeforge.models.converted import ConvertedSNN

    if isinstance(model, ConvertedSNN):  # thresholds folded into the weights
        from spikeforge.deploy.nir_converted import converted_to_nir

        return converted_to_nir(model, input_shape, dt, target)
    if isinstance(model, NIRGraphModule):
        return _graph_to_nir(model, tuple(input_shape), dt, target)
    nodes: dict = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    edges, prev, shape = [], "input", tuple(int(s) for s in input_shape)
    spiking, warned = False, []
    leaves = [(n, m) for n, m in _leaves(model) if not isinstance(m, (nn.Dropout, nn.Identity))]
    for name, m in leaves:
        name = name or type(m).__name__
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            _fold_bn(nodes.get(prev), m, name)
            continue
        if not isinstance(m, EXPORTABLE):
            _unsupported(name, m)
        with torch.no_grad():
            out_shape = _out_shape(m, shape, name)
        new = _convert(nir, name, m, shape, dt, target, spiking, nodes.get(prev), warned,
                       out_shape)
        shape = out_shape
        for i, node in enumerate(new):
            key = name if i == 0 else f"{name}.{i}"
            nodes[key] = node
            edges.append((prev, key))
            prev = key
        spiking = isinstance(m, (SpikingNeuron, Threshold, nn.MaxPool2d)) or (
            spiking and isinstance(m, (Flatten, NIRFlatten, nn.Flatten)))
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((prev, "output"))
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=_graph_meta(dt, target),
                         type_check=False)
    for msg in warned:
        warnings.warn(msg, NIRExportWarning, stacklevel=2)
    return graph


def export_nir(model: nn.Module, path, input_shape, dt: float | None = None,
               target: str = "nir"):
    """Write :func:`to_nir` of ``model`` to the NIR (HDF5) file ``path``; returns the graph."""
    graph = to_nir(model, input_shape, dt, target)
    _nir().write(str(path), graph)
    return graph


def _graph_meta(dt: float, target: str) -> dict:
    return {"dt": dt, "time_unit": "s", "target": target,
            "exporter": f"spikeforge {spikeforge.__version__}"}


def _out_shape(m: nn.Module, shape: tuple, name: str) -> tuple:
    if isinstance(m, (SpikingNeuron, LeakyIntegrator, Integrator, Delay)):
        return shape  # elementwise over time; running them would only compile kernels
    x = torch.zeros((1, 1) + shape)
    try:
        if isinstance(m, Flatten):
            y = m(x)
        else:
            y = m(x[0]).unsqueeze(0)
    except RuntimeError as err:
        raise NIRGraphError(f"module {name!r} ({type(m).__name__}) cannot take per-sample "
                            f"input {shape}: {err}") from err
    return tuple(y.shape[2:])


def _fold_bn(node, bn: nn.Module, name: str) -> None:
    """``BN(W x + b) = (g W) x + g (b - mean) + beta`` with ``g = gamma / sqrt(var + eps)``
    (eval-mode statistics), folded into the preceding Affine/Conv node."""
    nir = _nir()
    if not isinstance(node, (nir.Affine, nir.Conv1d, nir.Conv2d)):
        raise NIRGraphError(f"module {name!r} (BatchNorm): NIR has no batch-norm node; it is "
                            "folded into a directly preceding Conv or Linear, and none precedes it")
    g = (bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)).numpy().astype(np.float32)
    shift = (bn.bias.detach() - bn.running_mean * torch.as_tensor(g)).numpy()
    node.weight = (node.weight * g.reshape((-1,) + (1,) * (node.weight.ndim - 1))).astype(
        np.float32)
    node.bias = (node.bias * g + shift).astype(np.float32)


def _linear_like(nir, m: nn.Module, shape: tuple):
    w = m.weight.detach().numpy().astype(np.float32)
    b = (m.bias.detach().numpy() if m.bias is not None else np.zeros(w.shape[0])).astype(
        np.float32)
    if isinstance(m, nn.Linear):
        return nir.Linear(weight=w) if m.bias is None else nir.Affine(weight=w, bias=b)
    if m.padding_mode != "zeros":
        raise NIRGraphError(f"{type(m).__name__} with padding_mode={m.padding_mode!r}: NIR "
                            "convolutions pad with zeros")
    cls = nir.Conv1d if isinstance(m, nn.Conv1d) else nir.Conv2d
    one = isinstance(m, nn.Conv1d)
    pad = m.padding if isinstance(m.padding, str) else (m.padding[0] if one else m.padding)
    return cls(input_shape=shape[1] if one else shape[1:], weight=w,
               stride=m.stride[0] if one else m.stride, padding=pad,
               dilation=m.dilation[0] if one else m.dilation, groups=m.groups, bias=b)


def _convert(nir, name, m, shape, dt, target, spiking, prev_node, warned,
             out_shape=None) -> list:
    """The NIR node(s) of one leaf module."""
    if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
        return [_linear_like(nir, m, shape)]
    if isinstance(m, Flatten):
        return [nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)]
    if isinstance(m, NIRFlatten):
        return [nir.Flatten(input_type={"input": np.array(shape)}, start_dim=m.start_dim,
                            end_dim=m.end_dim)]
    if isinstance(m, nn.AvgPool2d):
        return [nir.AvgPool2d(kernel_size=np.array(_two(m.kernel_size)),
                              stride=np.array(_two(m.stride)), padding=np.array(_two(m.padding)))]
    if isinstance(m, SumPool2d):
        return [nir.SumPool2d(kernel_size=np.array(m.kernel_size), stride=np.array(m.stride),
                              padding=np.array(m.padding))]
    if isinstance(m, nn.MaxPool2d):
        return _maxpool(nir, name, m, spiking, out_shape)
    if isinstance(m, Scale):
        return [nir.Scale(scale=_arr(m.scale.numpy(), shape))]
    if isinstance(m, Threshold):
        return [nir.Threshold(threshold=_arr(m.threshold.numpy(), shape))]
    if isinstance(m, LeakyIntegrator):
        return [nir.LI(tau=_arr(dt / m.k.numpy(), shape), r=_arr(m.r.numpy(), shape),
                       v_leak=_arr(m.v_leak.numpy(), shape))]
    if isinstance(m, Integrator):
        return [nir.I(r=_arr(m.r.numpy() * m.dt / dt, shape))]
    if isinstance(m, Delay):
        return [nir.Delay(delay=_arr(m.steps.numpy() * dt, shape))]
    if isinstance(m, SpikingNeuron):
        return [_neuron(nir, name, m, shape, dt, target, prev_node, warned)]
    _unsupported(name, m)


EXPORTABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, Flatten, NIRFlatten, nn.AvgPool2d, SumPool2d,
              nn.MaxPool2d, Scale, Threshold, LeakyIntegrator, Integrator, Delay, SpikingNeuron)


def _unsupported(name: str, m: nn.Module):
    raise NIRGraphError(f"module {name!r} ({type(m).__name__}) has no NIR node; supported: "
                        "Linear, Conv1d/2d, BatchNorm (folded), Flatten, AvgPool2d, SumPool2d, "
                        "MaxPool2d after spikes, Scale, Threshold, IF, LIF, PLIF, CubaLIF, "
                        "LeakyIntegrator, Integrator, Delay")


def _two(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _maxpool(nir, name, m, spiking, out_shape) -> list:
    """Max pooling of binary spikes is ``sum > 0``: ``SumPool2d`` then ``Threshold(0.5)``
    (zero padding equals max pooling's -inf padding on inputs >= 0)."""
    if not spiking:
        raise NIRGraphError(
            f"module {name!r} (MaxPool2d): NIR 1.0 has no max-pooling node; spikeforge exports "
            "max pooling only of binary spikes (right after a spiking neuron), as SumPool2d + "
            "Threshold(0.5). Use AvgPool2d, or pool after the neuron")
    if _two(m.dilation) != (1, 1) or m.ceil_mode:
        raise NIRGraphError(f"module {name!r} (MaxPool2d): dilation and ceil_mode are not "
                            "exported")
    k = np.array(_two(m.kernel_size))
    s = np.array(_two(m.stride if m.stride is not None else m.kernel_size))
    meta = {"spikeforge_op": "max_pool2d of binary spikes = Threshold(SumPool2d, 0.5)"}
    return [nir.SumPool2d(kernel_size=k, stride=s, padding=np.array(_two(m.padding)),
                          metadata=meta),
            nir.Threshold(threshold=_arr(0.5, out_shape), metadata=meta)]


def _neuron(nir, name, m: SpikingNeuron, shape, dt, target, prev_node, warned):
    spec = m.spec
    kind = m.type_name or type(m).__name__.lower()
    if not isinstance(m, (IF, LIF, PLIF, CubaLIF)):
        raise NIRGraphError(f"module {name!r}: neuron type {kind!r} has no NIR node (NIR 1.0 "
                            "has IF, LIF, CubaLIF; e.g. ALIF's adaptive threshold is not one)")
    if m.threshold is not None and m.threshold.dim() > 0:
        vth = m.threshold.detach().numpy().reshape((-1,) + (1,) * (len(shape) - 1))
    else:
        vth = float(m.threshold.detach()) if m.threshold is not None else spec.v_threshold
    v_rest = spec.v_rest
    v_reset = spec.v_reset if spec.reset == "hard" else 0.0
    meta = {"spikeforge_type": kind, "spikeforge_reset": spec.reset,
            "spikeforge_v_reset": float(spec.v_reset), "spikeforge_fire": ">" if
            spec.fire_strict else ">=", "spikeforge_reset_delay": spec.reset_delay,
            "spikeforge_detach_reset": spec.detach_reset,
            "spikeforge_decay_input": spec.decay_input,
            "spikeforge_surrogate": m.surrogate.name,
            "spikeforge_alpha": float(m.surrogate.alpha)}
    if spec.v_min is not None:
        meta["spikeforge_v_min"] = float(spec.v_min)
    diffs = []
    if spec.reset != "hard":
        diffs.append(f"{spec.reset} reset (NIR resets to v_reset; written v_reset=0)")
    if not spec.fire_strict:
        diffs.append("fires at H >= V_th (NIR fires at v > v_threshold)")
    if spec.reset_delay:
        diffs.append("reset lands one step late (reset_delay, snnTorch's default)")
    if spec.v_min is not None:
        diffs.append(f"membrane floor v_min={spec.v_min} (NIR has none; kept in metadata, "
                     "which only spikeforge reads)")
    if spec.detach_reset or m.surrogate is not None:
        diffs.append(f"surrogate {m.surrogate.name!r} and detach_reset={spec.detach_reset} "
                     "(training only)")
    if target == "snntorch":
        if spec.reset != "hard" or spec.v_reset != 0.0 or spec.reset_delay:
            diffs.append("snnTorch 1.0's importer always resets to zero at once")
        if v_rest != 0.0:
            diffs.append("snnTorch 1.0's importer refuses v_leak != 0")
    if target == "norse" and spec.reset == "hard" and spec.v_reset != 0.0:
        diffs.append("Norse 1.1's importer ignores v_reset (resets to 0)")
    warned.append(f"NIR node {name!r} ({kind}): " + "; ".join(diffs))
    if isinstance(m, IF):
        if target == "snntorch":
            warned.append(f"NIR node {name!r} (if): snnTorch 1.0 imports IF as Leaky(beta=0.9)")
        return nir.IF(r=_arr(1.0 / dt, shape), v_threshold=_arr(vth, shape),
                      v_reset=_arr(v_reset, shape), metadata=meta)
    tau_s = float(m.tau)
    meta["spikeforge_tau_steps"] = tau_s
    if isinstance(m, CubaLIF):
        meta["spikeforge_tau_syn_steps"] = float(m.tau_syn)
        r = tau_s if (target == "snntorch" or not spec.decay_input) else 1.0
        w_in = m.tau_syn * (1.0 / tau_s if target == "snntorch" and spec.decay_input else 1.0)
        if target == "norse" and v_rest != 0.0:
            warned.append(f"NIR node {name!r}: Norse 1.1's importer gives the synapse the "
                          "membrane's v_leak too")
        return nir.CubaLIF(tau_syn=_arr(m.tau_syn * dt, shape), tau_mem=_arr(tau_s * dt, shape),
                           r=_arr(r, shape), v_leak=_arr(v_rest, shape),
                           v_threshold=_arr(vth, shape), v_reset=_arr(v_reset, shape),
                           w_in=_arr(w_in, shape), metadata=meta)
    r = 1.0 if spec.decay_input else tau_s
    if target == "norse" and not spec.decay_input:
        # Norse's importer ignores LIF's r: fold it into the layer that feeds the neuron
        if not isinstance(prev_node, (nir.Affine, nir.Conv1d, nir.Conv2d, nir.Linear)):
            raise NIRGraphError(f"module {name!r}: target='norse' without input decay needs "
                                "a Linear/Conv right before the neuron to carry r = tau")
        prev_node.weight = (prev_node.weight * tau_s).astype(np.float32)
        if hasattr(prev_node, "bias"):
            prev_node.bias = (prev_node.bias * tau_s).astype(np.float32)
        meta["spikeforge_r_folded_into_input"] = tau_s
        r = 1.0
    return nir.LIF(tau=_arr(tau_s * dt, shape), r=_arr(r, shape), v_leak=_arr(v_rest, shape),
                   v_threshold=_arr(vth, shape), v_reset=_arr(v_reset, shape), metadata=meta)


def _graph_to_nir(model: NIRGraphModule, input_shape, dt, target):
    """An imported graph written back: its nodes converted, its edges as they were."""
    nir = _nir()
    nodes, warned = {}, []
    shapes = model.node_shapes(input_shape)
    for n in model.node_names:
        m = model.module(n)
        if n in model.inputs:
            nodes[n] = nir.Input(input_type={"input": np.array(input_shape)})
        elif m is None:
            nodes[n] = nir.Output(output_type={"output": np.array(shapes[n])}) \
                if n in model.outputs else nir.Scale(scale=_arr(1.0, shapes[n]))
        else:
            prev = [nodes.get(a) for a in model.preds[n]]
            new = _convert(nir, n, m, shapes.get(f"{n}:in", shapes[n]), dt, target,
                           False, prev[0] if len(prev) == 1 else None, warned)
            nodes[n] = new[0]
            if n in model.initial_nodes:  # a converted network's initial membrane
                v0 = model.initial_membrane(n)
                new[0].metadata["spikeforge_v_init"] = v0.detach().cpu().numpy()
                warned.append(f"NIR node {n!r}: initial membrane kept in metadata "
                              "'spikeforge_v_init'; other NIR consumers start at 0")
    graph = nir.NIRGraph(nodes=nodes, edges=list(model.edges), metadata=_graph_meta(dt, target),
                         type_check=False)
    for msg in warned:
        warnings.warn(msg, NIRExportWarning, stacklevel=3)
    return graph
