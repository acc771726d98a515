"""NIR export of an ANN-to-SNN converted network (:class:`~spikeforge.convert.ConvertedSNN`).

A converted network keeps each ReLU's threshold ``theta`` as a buffer of its
:class:`~spikeforge.convert.ConvertedIF`: the neuron integrates ``(x + b) / theta`` from
``V[-1] = v0`` (per neuron, in threshold units), fires at ``H >= 1``, resets by
subtraction and emits ``theta * S``. NIR has no such node, so the export applies the
linear rewrite the ``ConvertedIF`` docstring names. For a layer ``y = W s + c`` feeding
neuron layer ``l`` (threshold ``theta_l``, correction ``b_l``) whose input ``s`` is the
spikes of layer ``l-1`` (threshold ``theta_{l-1}``; ``theta_0 = 1`` for the network
input)::

    W' = W theta_{l-1} / theta_l,   c' = (c + b_l) / theta_l

and the neuron becomes NIR ``IF`` with ``v_threshold = 1``, ``r = 1 / dt`` (as every
spikeforge IF export: one forward-Euler step of ``dt`` adds the input whole), emitting
binary spikes. Average pooling and flatten between two layers commute with the scalar
``theta_{l-1}``, so it is carried through them to the next Conv/Linear; the readout
layer gets ``theta`` of the last neuron layer (a network that ends in neurons gets a
``Scale(theta)`` node). In real arithmetic the exported graph computes the same spikes;
in float32 the folded products round differently, so a membrane within rounding of the
threshold can fire one step apart (exact to the bit when every ``theta`` is a power of
two and ``b = 0``, as tested).

What NIR cannot state is kept in each ``IF`` node's metadata (and named in a
:class:`~spikeforge.deploy.nir_export.NIRExportWarning`): the soft reset and ``>=``
firing (as for every spikeforge IF), and the initial membrane ``v0``
(``spikeforge_v_init``, an array of the layer's per-sample shape): NIR has no
initial-state field, so other NIR consumers (snnTorch, Norse, Sinabs, hardware
toolchains) start every membrane at 0, which shifts each neuron's rate code by
``-v0`` spikes (about half a spike per neuron with the default ``v0 = 1/2``).
spikeforge's importer restores it.

Only chains export: Conv1d/Conv2d/Linear, ``ConvertedIF``, AvgPool2d (and adaptive
average pooling with a whole kernel), flatten (module, ``torch.flatten``, ``.view`` /
``.reshape`` to one dimension), dropout and identity. A residual join, the spike max
pool (:class:`~spikeforge.convert.SpikeMaxPool2d`: its spike-count gating has no NIR
node) or an unfolded BatchNorm is a :class:`NIRGraphError` naming the layer.
"""

from __future__ import annotations

import operator
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from spikeforge.deploy.graph import NIRGraphError
from spikeforge.deploy.nir_export import (
    NIRExportWarning,
    _arr,
    _graph_meta,
    _linear_like,
    _neuron,
    _nir,
)
from spikeforge.models.converted import ConvertedIF, ConvertedSNN, SpikeMaxPool2d

_SKIP_MODULES = (nn.Dropout, nn.Identity)
_SKIP_FUNCS = (F.dropout,)
_SKIP_METHODS = ("contiguous",)
_SIZE_METHODS = ("size", "dim")  # give ints to a view/reshape, not tensors
_FLATTEN_FUNCS = (torch.flatten,)
_FLATTEN_METHODS = ("view", "reshape", "flatten")


def _where(node: fx.Node) -> str:
    return repr(node.target) if node.op == "call_module" else repr(node.name)


def _tensor_args(node: fx.Node) -> list[fx.Node]:
    args = [a for a in node.args if isinstance(a, fx.Node)]
    args += [a for a in node.kwargs.values() if isinstance(a, fx.Node)]
    return [a for a in args if not (a.op == "call_method" and a.target in _SIZE_METHODS)]


def converted_to_nir(snn: ConvertedSNN, input_shape, dt: float, target: str):
    """The NIR graph of the converted network ``snn`` for per-sample input shape
    ``input_shape`` and step ``dt`` seconds (see the module docstring for the fold).

    Raises :class:`NIRGraphError` naming the first layer NIR cannot express.
    """
    nir = _nir()
    gm = snn.net
    shape = tuple(int(s) for s in input_shape)
    for m in snn.time_modules():
        m.time_steps = 1
    p = next(gm.parameters(), None)
    with torch.no_grad():
        ShapeProp(gm).propagate(torch.zeros((1,) + shape, device=p.device if p is not None
                                            else "cpu"))
    modules = dict(gm.named_modules())
    nodes: dict = {"input": nir.Input(input_type={"input": np.array(shape)})}
    edges: list = []
    warned: list[str] = []
    state = {"prev": "input", "last": None, "scale": 1.0, "fresh": False}

    def emit(key: str, node, fresh: bool = False) -> None:
        nodes[key] = node
        edges.append((state["prev"], key))
        state["prev"], state["fresh"] = key, fresh

    last_tensor: fx.Node | None = None
    for node in gm.graph.nodes:
        if node.op == "get_attr" or (node.op == "call_method" and node.target in _SIZE_METHODS):
            continue
        if node.op == "placeholder":
            last_tensor = node
            continue
        args = _tensor_args(node)
        if node.op == "output":
            if args != [last_tensor]:
                raise NIRGraphError("the converted graph's output is not its last layer; NIR "
                                    "export of a converted network needs a chain")
            break
        if len(args) != 1 or args[0] is not last_tensor:
            what = "a residual join (it combines several layers' outputs)" if len(args) > 1 \
                else f"its input {args[0].name!r} is not the layer before it (a branch)"
            raise NIRGraphError(
                f"layer {_where(node)} ({_kind(node, modules)}): {what}; NIR export of a "
                "converted network takes a chain of layers")
        out_shape = tuple(node.meta["tensor_meta"].shape[1:])
        in_shape = tuple(args[0].meta["tensor_meta"].shape[1:]) \
            if "tensor_meta" in args[0].meta else shape
        last_tensor = node
        kind = _classify(node, modules)
        name = node.target if node.op == "call_module" else node.name
        if kind == "skip":
            continue
        if kind == "weight":
            new = _linear_like(nir, modules[node.target], in_shape)
            if isinstance(new, nir.Linear):  # a bias to take the neuron's correction
                new = nir.Affine(weight=new.weight, bias=np.zeros(new.weight.shape[0],
                                                                  dtype=np.float32))
            new.weight = (new.weight * np.float32(state["scale"])).astype(np.float32)
            state["scale"] = 1.0
            emit(name, new, fresh=True)
        elif kind == "neuron":
            m = modules[node.target]
            _fold_threshold(nodes, state, name, m, nir)
            n = _neuron(nir, name, m.neuron, out_shape, dt, target, None, warned)
            v0 = m.v_init.detach().cpu().numpy().astype(np.float32)
            n.metadata["spikeforge_v_init"] = np.broadcast_to(v0, out_shape).copy()
            n.metadata["spikeforge_converted_threshold"] = float(m.threshold)
            warned.append(
                f"NIR node {name!r} (converted IF): initial membrane v_init (per neuron, "
                f"mean {float(v0.mean()):.3g} of the threshold) kept in metadata "
                "'spikeforge_v_init'; NIR has no initial state, so other NIR consumers "
                "start at 0 (about v_init fewer spikes per neuron)")
            emit(name, n)
            state["scale"] = float(m.threshold)
        elif kind == "flatten":
            if len(out_shape) != 1:
                raise NIRGraphError(f"layer {_where(node)}: a reshape to per-sample shape "
                                    f"{out_shape} is not a flatten; NIR export takes flatten")
            emit(name, nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0,
                                   end_dim=-1))
        elif kind == "avgpool":
            emit(name, _avgpool(nir, node, modules, in_shape, out_shape))
        else:
            _refuse(node, modules)
    if state["scale"] != 1.0:  # the network ends in neurons: their spikes weigh theta
        emit("output_scale", nir.Scale(scale=_arr(state["scale"], out_shape)))
    nodes["output"] = nir.Output(output_type={"output": np.array(out_shape)})
    edges.append((state["prev"], "output"))
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={
        **_graph_meta(dt, target), "spikeforge_model": "converted"}, type_check=False)
    for msg in warned:
        warnings.warn(msg, NIRExportWarning, stacklevel=3)
    return graph


def _kind(node: fx.Node, modules: dict) -> str:
    if node.op == "call_module":
        return type(modules[node.target]).__name__
    return getattr(node.target, "__name__", str(node.target))


def _classify(node: fx.Node, modules: dict) -> str:
    if node.op == "call_module":
        m = modules[node.target]
        if isinstance(m, _SKIP_MODULES):
            return "skip"
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            return "weight"
        if isinstance(m, ConvertedIF):
            return "neuron"
        if isinstance(m, nn.Flatten):
            return "flatten"
        if isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            return "avgpool"
        return "refuse"
    if node.op == "call_function":
        if node.target in _SKIP_FUNCS:
            return "skip"
        if node.target in _FLATTEN_FUNCS:
            return "flatten"
        if node.target in (F.avg_pool2d, F.adaptive_avg_pool2d):
            return "avgpool"
        return "refuse"
    if node.op == "call_method":
        if node.target in _SKIP_METHODS:
            return "skip"
        if node.target in _FLATTEN_METHODS:
            return "flatten"
    return "refuse"


def _refuse(node: fx.Node, modules: dict):
    kind = _kind(node, modules)
    if node.op == "call_module" and isinstance(modules[node.target], SpikeMaxPool2d):
        why = ("the spike max pool of conversion (Rueckauer et al. 2017: each window passes "
               "the input with the largest spike count so far) has no NIR node; train the "
               "ANN with average pooling (as the zoo ANNs and the conversion papers do)")
    elif node.op == "call_module" and isinstance(modules[node.target],
                                                 nn.modules.batchnorm._BatchNorm):
        why = ("a BatchNorm not folded into a Conv/Linear (it does not directly follow "
               "one) has no NIR node")
    elif node.target in (operator.add, torch.add, torch.cat) or node.target == "add":
        why = "a residual join; NIR export of a converted network takes a chain of layers"
    else:
        why = ("not exportable; a converted network exports Conv/Linear, converted IF, "
               "AvgPool2d, flatten and dropout in a chain")
    raise NIRGraphError(f"layer {_where(node)} ({kind}): {why}")


def _fold_threshold(nodes: dict, state: dict, name: str, m: ConvertedIF, nir) -> None:
    """Fold ``1/theta`` and ``b/theta`` of neuron ``m`` into the Conv/Linear just emitted
    (its output feeds only this neuron: the graph is a chain)."""
    theta = float(m.threshold)
    b = m.bias.detach().cpu().numpy().astype(np.float64).reshape(-1)
    prev = nodes.get(state["prev"])
    if not (state["fresh"] and isinstance(prev, (nir.Affine, nir.Conv1d, nir.Conv2d))):
        raise NIRGraphError(
            f"layer {name!r} (ConvertedIF): NIR export folds its threshold into a Conv or "
            f"Linear directly before it, and {state['prev']!r} is not one")
    if state["scale"] != 1.0:  # pragma: no cover - a weight layer resets the scale
        raise NIRGraphError(f"layer {name!r}: spike weights left unfolded")
    w = prev.weight.astype(np.float64) / theta
    bias = (prev.bias.astype(np.float64) + np.broadcast_to(b, prev.bias.shape)) / theta
    prev.weight, prev.bias = w.astype(np.float32), bias.astype(np.float32)


def _avgpool(nir, node: fx.Node, modules: dict, in_shape, out_shape):
    """NIR ``AvgPool2d`` of an average pool (an adaptive one when its kernel is whole)."""
    if node.op == "call_module":
        m = modules[node.target]
        if isinstance(m, nn.AdaptiveAvgPool2d):
            return _adaptive(nir, node, in_shape, out_shape)
        k, s, p = m.kernel_size, m.stride, m.padding
        extra = (m.ceil_mode, m.count_include_pad or not _any(p), m.divisor_override)
    elif node.target is F.adaptive_avg_pool2d:
        return _adaptive(nir, node, in_shape, out_shape)
    else:
        names = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                 "divisor_override")
        kw = {**dict(zip(names, node.args[1:])), **node.kwargs}
        k, s, p = kw["kernel_size"], kw.get("stride") or kw["kernel_size"], kw.get("padding", 0)
        extra = (kw.get("ceil_mode", False), kw.get("count_include_pad", True) or not _any(p),
                 kw.get("divisor_override"))
    if extra != (False, True, None):
        raise NIRGraphError(f"layer {_where(node)} (average pool): ceil_mode, "
                            "count_include_pad=False with padding and divisor_override are "
                            "not exported")
    return nir.AvgPool2d(kernel_size=np.array(_two(k)), stride=np.array(_two(s)),
                         padding=np.array(_two(p)))


def _adaptive(nir, node, in_shape, out_shape):
    h, w = in_shape[-2:]
    oh, ow = out_shape[-2:]
    if h % oh or w % ow:
        raise NIRGraphError(f"layer {_where(node)} (adaptive average pool): {h}x{w} -> "
                            f"{oh}x{ow} has no whole kernel, which NIR's AvgPool2d needs")
    k = np.array((h // oh, w // ow))
    return nir.AvgPool2d(kernel_size=k, stride=k.copy(), padding=np.array((0, 0)))


def _any(p) -> bool:
    return any(int(v) for v in _two(p))


def _two(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)
