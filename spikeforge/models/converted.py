"""The structure of an ANN converted to an SNN of IF neurons (reset by subtraction).

:func:`ann_graph` traces a per-sample ANN with ``torch.fx``, checks that every
layer is one conversion supports (an unsupported one is a
:class:`ConversionError` naming the layer and its type), turns functional ReLU
and max-pool calls into modules and folds each BatchNorm into the Conv/Linear
before it (:func:`fold_bn`). :func:`snn_from_graph` replaces every activation by
a :class:`ConvertedIF` and every max pool after it by a :class:`SpikeMaxPool2d`.
The data-driven parts (thresholds, calibration) are in :mod:`spikeforge.convert`;
this module is the structure alone, so that the zoo model ``converted`` rebuilds a
converted run from its config and weights.

Time: the SNN runs the ANN graph on time-merged input ``[T*B, ...]``. Every layer
except the neurons and the spike max pool is stateless and per-sample, so running
it on all steps at once equals running it step by step; the time-aware modules
unfold ``[T, B, ...]`` themselves.

Max pooling: the papers whose method we implement build their ANNs with average
pooling instead (Li et al., ICML 2021, and arXiv 2205.10121: ``SNN_Calibration``'s
VGG; Bu et al., ICLR 2022: ``replace_maxpool2d_by_avgpool2d``), and so do our zoo
ANNs. A max pool in a user's ANN is converted with the spike gating of Rueckauer
et al. ("Conversion of continuous-valued deep networks to efficient event-driven
networks", Front. Neurosci. 2017, Sec. 2.2.6): each window passes the spikes of
the input with the highest spike count so far. It must follow an activation
(spikes); ``MaxPool(ReLU(x)) = ReLU(MaxPool(x))`` lets an ANN be written that way.
"""

from __future__ import annotations

import copy
import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from spikeforge.errors import SpikeforgeError
from spikeforge.layers.qcfs import QCFS
from spikeforge.models.zoo import ModelInfo, build_model, register_model
from spikeforge.neurons import IF


class ConversionError(SpikeforgeError, ValueError):
    """An ANN that cannot be converted; the message names the layer and its type."""


class ConvertedIF(nn.Module):
    """IF neurons with reset by subtraction standing in for one ReLU of the ANN.

    With threshold ``theta`` (buffer ``threshold``), per-step input current
    ``x[t]``, correction ``b`` (buffer ``bias``, per channel after light
    calibration) and initial membrane ``v0`` (buffer ``v_init``, in units of the
    threshold, ``1/2`` by default as in QCFS and per neuron after potential
    calibration)::

        V[-1] = v0,  H[t] = V[t-1] + (x[t] + b) / theta,
        S[t] = [H[t] >= 1],  V[t] = H[t] - S[t],  output theta * S[t]

    i.e. :class:`spikeforge.neurons.IF` with ``V_th = 1`` and ``v_reset=None`` on
    the input divided by ``theta``. Because the soft-reset IF is positively
    homogeneous this equals an IF with ``V_th = theta`` whose spikes weigh
    ``theta`` (Li et al.'s ``SpikeModule``, Bu et al.'s ``ScaledNeuron``). Over
    ``T`` steps of a constant input the mean output is
    ``theta/T * clip(floor(T (x+b)/theta + v0), 0, T)``: the clipped ReLU up to a
    ``theta/T`` step. Keeping ``theta`` as a buffer (rather than folding ``1/theta``
    into the layer before and ``theta`` into the one after) leaves the weights in
    the ANN's units, which calibration needs, and lets a run reload from its
    safetensors; the fold is a linear rewrite an exporter can apply.

    ``shape`` is the per-sample shape of the layer (``[C, H, W]`` or ``[F]``):
    ``v_init`` has that shape, ``bias`` one value per channel, so that a converted
    run's weights have fixed shapes. ``time_steps`` is set by
    :class:`ConvertedSNN` before each call. Shape: ``[T*B, ...] -> [T*B, ...]``.
    """

    def __init__(self, threshold: float = 1.0, v_init: float = 0.5,
                 shape: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.neuron = IF(v_threshold=1.0, v_reset=None)
        shape = tuple(shape)
        channel = shape[:1] + (1,) * (len(shape) - 1)
        self.register_buffer("threshold", torch.tensor(float(threshold)))
        self.register_buffer("v_init", torch.full(shape, float(v_init)))
        self.register_buffer("bias", torch.zeros(channel))
        self.time_steps: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Weighted spikes ``theta * S`` for the time-merged input current ``x``."""
        z = unmerge(x, self.time_steps, self)
        z = (z + self.bias) / self.threshold
        z = torch.cat([z[:1] + self.v_init, z[1:]], 0)
        s = self.neuron(z)
        return (s * self.threshold).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"threshold={float(self.threshold):.4g}"


class SpikeMaxPool2d(nn.Module):
    """Max pooling of spike trains by gating (Rueckauer et al. 2017, Sec. 2.2.6).

    At step ``t`` each window outputs ``x[t]`` at the input position with the
    largest spike count ``sum_{s<=t} x[s]`` (first such position on ties), so its
    rate follows the largest input rate. Shape: ``[T*B, C, H, W]`` in and out
    (pooled).
    """

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.time_steps: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The gated spikes, pooled."""
        counts = unmerge(x, self.time_steps, self).cumsum(0).reshape(x.shape)
        _, idx = F.max_pool2d(counts, self.kernel_size, self.stride, self.padding,
                              return_indices=True)
        flat = x.flatten(2).gather(2, idx.flatten(2))
        return flat.reshape(idx.shape)


def unmerge(x: torch.Tensor, time_steps: int | None, who: nn.Module) -> torch.Tensor:
    """``[T*B, ...] -> [T, B, ...]``, with an error naming ``who`` when T is unknown."""
    if not time_steps:
        raise RuntimeError(f"{type(who).__name__}: time_steps not set; run it in ConvertedSNN")
    if x.shape[0] % time_steps:
        raise ValueError(f"{type(who).__name__}: {x.shape[0]} rows not divisible by T={time_steps}")
    return x.reshape(time_steps, x.shape[0] // time_steps, *x.shape[1:])


# ---------------------------------------------------------------------------- tracing
ACTIVATIONS = (nn.ReLU, QCFS)
MODULES = (
    nn.Conv1d, nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, QCFS,
    nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.MaxPool2d,
    nn.Flatten, nn.Dropout, nn.Identity,
)
_RELU_FUNCS = (F.relu, torch.relu)
# Linear, per-sample operations: they commute with averaging over time.
FUNCTIONS = (
    operator.add, torch.add, torch.flatten, torch.cat, operator.getitem, F.avg_pool2d,
    F.adaptive_avg_pool2d, F.dropout, *_RELU_FUNCS,
)
METHODS = ("view", "reshape", "flatten", "size", "add", "relu", "contiguous", "mean", "dim")


def _is_maxpool_fn(target) -> bool:
    return "max_pool2d" in getattr(target, "__name__", "")


def _set_submodule(root: nn.Module, qualname: str, module: nn.Module) -> None:
    parent, _, name = qualname.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


def _unsupported(what: str, kind: str) -> ConversionError:
    return ConversionError(
        f"cannot convert layer {what} of type {kind}: ANN-to-SNN conversion supports "
        f"Conv/Linear/BatchNorm/ReLU/QCFS, average and max pooling, flatten, dropout and "
        f"residual adds"
    )


class _Tracer(fx.Tracer):
    """torch.fx's tracer with QCFS kept as one module (it is an activation)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, QCFS) or super().is_leaf_module(m, qualname)


def ann_graph(model: nn.Module) -> tuple[fx.GraphModule, list[str]]:
    """Trace ``model`` (per-sample, ``[B, ...]``) into a checked, normalised, BN-folded
    ``GraphModule`` equal to it in eval mode; also returns the names of the
    Conv/Linear layers a BatchNorm was folded into.

    Raises :class:`ConversionError` naming the first unsupported layer and its type.
    """
    model = copy.deepcopy(model).eval()
    try:
        gm = fx.GraphModule(model, _Tracer().trace(model))
    except Exception as e:  # tracing fails on data-dependent control flow
        raise ConversionError(f"cannot trace {type(model).__name__} with torch.fx: {e}") from e
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        if node.op == "call_module":
            m = modules[node.target]
            if not isinstance(m, MODULES):
                raise _unsupported(repr(node.target), type(m).__name__)
            if isinstance(m, nn.ReLU) and m.inplace:
                m.inplace = False
        elif node.op == "call_function":
            if _is_maxpool_fn(node.target) or node.target in _RELU_FUNCS:
                _function_to_module(gm, node)
            elif node.target not in FUNCTIONS:
                name = getattr(node.target, "__name__", str(node.target))
                raise _unsupported(repr(node.name), f"function {name}")
        elif node.op == "call_method":
            if node.target == "relu":
                _function_to_module(gm, node)
            elif node.target not in METHODS:
                raise _unsupported(repr(node.name), f"tensor method .{node.target}()")
    gm.graph.lint()
    gm.recompile()
    folded = fold_bn(gm)
    return gm, folded


def _function_to_module(gm: fx.GraphModule, node: fx.Node) -> None:
    """Turn ``F.relu(x)`` / ``x.relu()`` / ``F.max_pool2d(x, ...)`` into a module call."""
    if _is_maxpool_fn(node.target):
        params = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
        kw = dict(zip(params, node.args[1:]), **node.kwargs)
        kw.pop("return_indices", None)
        module: nn.Module = nn.MaxPool2d(**kw)
    else:
        module = nn.ReLU()
    name = f"act_{node.name}"
    gm.add_submodule(name, module)
    node.op, node.target, node.args, node.kwargs = "call_module", name, node.args[:1], {}


@torch.no_grad()
def fold_bn(gm: fx.GraphModule) -> list[str]:
    """Fold every BatchNorm that directly follows a Conv/Linear (its only user) into it.

    With running mean ``mu``, variance ``var``, ``eps``, scale ``gamma`` and shift
    ``beta``, per output channel ``c``::

        W'[c] = W[c] * gamma[c] / sqrt(var[c] + eps)
        b'[c] = (b[c] - mu[c]) * gamma[c] / sqrt(var[c] + eps) + beta[c]

    so that ``conv'(x) = BN(conv(x))`` in eval mode. Other BatchNorms stay (in eval
    mode they are per-channel affine maps, which a converted SNN runs unchanged).
    Returns the names of the layers folded into. Edits ``gm`` in place.
    """
    modules = dict(gm.named_modules())
    folded = []
    for node in list(gm.graph.nodes):
        bn_types = (nn.BatchNorm1d, nn.BatchNorm2d)
        if node.op != "call_module" or not isinstance(modules[node.target], bn_types):
            continue
        prev = node.args[0]
        if not (isinstance(prev, fx.Node) and prev.op == "call_module" and len(prev.users) == 1):
            continue
        layer, bn = modules[prev.target], modules[node.target]
        if not isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Linear)) or not bn.track_running_stats:
            continue
        inv = torch.rsqrt(bn.running_var + bn.eps)
        gamma = bn.weight if bn.affine else torch.ones_like(inv)
        beta = bn.bias if bn.affine else torch.zeros_like(inv)
        scale = gamma * inv
        bias = layer.bias if layer.bias is not None else torch.zeros_like(inv)
        new_bias = (bias - bn.running_mean) * scale + beta
        layer.weight.mul_(scale.reshape(-1, *([1] * (layer.weight.dim() - 1))))
        layer.bias = nn.Parameter(new_bias.detach().clone())
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
        folded.append(prev.target)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return folded


def activation_names(gm: fx.GraphModule) -> list[str]:
    """Qualified names of the activation modules of a traced ANN, in execution order."""
    modules = dict(gm.named_modules())
    return [n.target for n in gm.graph.nodes
            if n.op == "call_module" and isinstance(modules[n.target], ACTIVATIONS)]


@torch.no_grad()
def activation_shapes(ann: fx.GraphModule, input_shape) -> dict[str, tuple[int, ...]]:
    """Per-sample output shape of every activation of ``ann`` for inputs ``input_shape``."""
    modules = dict(ann.named_modules())
    shapes, handles = {}, []
    for name in activation_names(ann):
        def hook(m, i, o, name=name):
            shapes[name] = tuple(o.shape[1:])
        handles.append(modules[name].register_forward_hook(hook))
    try:
        p = next(ann.parameters(), None)
        ann.eval()(torch.zeros(1, *input_shape, device=p.device if p is not None else "cpu"))
    finally:
        for h in handles:
            h.remove()
    return shapes


def snn_from_graph(ann: fx.GraphModule, input_shape, thresholds: dict[str, float] | None = None,
                   v_init: float = 0.5) -> ConvertedSNN:
    """The SNN of a graph from :func:`ann_graph` for per-sample inputs ``input_shape``:
    activations become :class:`ConvertedIF` (threshold from ``thresholds``, else the
    QCFS bound, else 1) and max pools after them :class:`SpikeMaxPool2d`; every name
    stays the ANN's."""
    gm = copy.deepcopy(ann)
    modules = dict(gm.named_modules())
    acts = set(activation_names(gm))
    shapes = activation_shapes(gm, tuple(input_shape))
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        m = modules[node.target]
        if node.target in acts:
            th = (thresholds or {}).get(node.target)
            if th is None:
                th = float(m.bound) if isinstance(m, QCFS) else 1.0
            _set_submodule(gm, node.target, ConvertedIF(th, v_init, shapes[node.target]))
        elif isinstance(m, nn.MaxPool2d):
            src = node.args[0]
            if not (isinstance(src, fx.Node) and src.op == "call_module" and src.target in acts):
                raise ConversionError(
                    f"cannot convert layer {node.target!r} of type MaxPool2d: a max pool must "
                    f"follow a ReLU (pool spikes, Rueckauer et al. 2017); write ReLU then MaxPool"
                )
            if m.dilation not in (1, (1, 1)) or m.ceil_mode:
                raise _unsupported(repr(node.target), "MaxPool2d with dilation or ceil_mode")
            _set_submodule(gm, node.target, SpikeMaxPool2d(m.kernel_size, m.stride, m.padding))
    gm.recompile()
    return ConvertedSNN(gm)


class ConvertedSNN(nn.Module):
    """A converted SNN: ``[T, B, ...] -> [T, B, K]`` (per-step output currents of the
    last layer; the prediction is their mean over time, the ANN's logits in the limit).

    ``net`` is the ANN graph with :class:`ConvertedIF` neurons, run time-merged
    (see the module docstring), at most ``max_rows`` rows ``T*B`` at a time (larger
    batches run in slices, with the same result). Always in eval mode: BatchNorms left unfolded keep
    their running statistics.
    """

    def __init__(self, net: fx.GraphModule, max_rows: int = 8192) -> None:
        super().__init__()
        self.net = net
        self.max_rows = max_rows

    def time_modules(self) -> list[nn.Module]:
        """The modules that need T (neurons and spike max pools)."""
        return [m for m in self.net.modules() if isinstance(m, (ConvertedIF, SpikeMaxPool2d))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output currents ``[T, B, K]`` for time-first input ``x`` ``[T, B, ...]``."""
        if x.dim() < 2:
            raise ValueError(f"ConvertedSNN expects time-first [T, B, ...], got {tuple(x.shape)}")
        t, b = x.shape[:2]
        for m in self.time_modules():
            m.time_steps = t
        # Bounded memory at large T: at most max_rows time-merged rows per pass.
        chunk = max(1, self.max_rows // t)
        ys = []
        for i in range(0, b, chunk):
            xb = x[:, i : i + chunk]
            y = self.net(xb.reshape(t * xb.shape[1], *x.shape[2:]))
            ys.append(y.reshape(t, xb.shape[1], *y.shape[1:]))
        return torch.cat(ys, 1)

    def train(self, mode: bool = True) -> ConvertedSNN:
        """Stays in eval mode (a converted SNN is not trained further here)."""
        return super().train(False)


def ann_core(model: nn.Module) -> nn.Module:
    """The per-sample network inside a zoo ANN (``TimeMergedANN.net``), else ``model``."""
    return getattr(model, "net", model)


@register_model("converted", ModelInfo(input="that of its model.ann (default ann_cnn)"))
def converted(input_shape, num_classes, cfg, **kwargs) -> nn.Module:
    """The SNN converted from the zoo ANN ``cfg.ann`` (structure only: thresholds,
    calibrated biases and potentials come with the weights of the run). The config
    schema requires ``model.ann``; ``ann_cnn`` stands in where a listing builds it."""
    ann = build_model(getattr(cfg, "ann", None) or "ann_cnn", input_shape, num_classes, cfg)
    gm, _ = ann_graph(ann_core(ann))
    return snn_from_graph(gm, input_shape)
