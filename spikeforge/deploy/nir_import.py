"""Import a NIR graph as a time-first spikeforge module, with the exporter's conventions.

NIR's ODEs are integrated with forward Euler in steps of ``dt`` (see
:mod:`spikeforge.deploy.nir_export` for the equations); each NIR neuron becomes the
spikeforge neuron with exactly those discrete dynamics, firing at ``>`` as NIR does:

- ``LIF(tau, r, v_leak, v_threshold, v_reset)`` -> ``LIF(tau=tau/dt, v_leak, v_reset,
  fire_strict=True)``, with ``decay_input=True`` when ``r = 1``, ``decay_input=False``
  when ``r = tau/dt``, and otherwise a ``Scale(r)`` on its input;
- ``CubaLIF`` -> ``CubaLIF(tau_syn=tau_syn/dt, tau=tau_mem/dt)`` with its input scaled by
  ``w_in dt / tau_syn`` (times ``r`` unless ``r`` is 1 or ``tau_mem/dt``);
- ``IF(r, ...)`` -> ``IF`` with input scaled by ``r dt``; ``LI`` and ``I`` ->
  :class:`~spikeforge.deploy.graph.LeakyIntegrator` / ``Integrator``; ``Delay(d)`` ->
  ``d/dt`` whole steps.

``convention`` reproduces a known exporter's own network rather than the letter of its
file (each quirk read from the peer's code, version stated):

- ``"nir"``: the file as NIR defines it; ``dt`` from the graph's metadata (spikeforge
  writes it) or the ``dt`` argument. A spikeforge file's ``spikeforge_*`` node metadata
  restores what NIR cannot state (soft reset, ``>=``, late reset, surrogate, and the
  initial membrane ``spikeforge_v_init`` of a converted network's neurons).
- ``"snntorch"`` (snnTorch 1.0 ``export_to_nir``): ``dt = 1e-4`` (hard-coded in its
  exporter and importer). Its file cannot tell subtract from zero reset; by default the
  reset is snnTorch's importer's (to zero, at once); ``reset="subtract"`` and
  ``reset="zero"`` are ``Leaky``'s ``reset_mechanism`` with its default ``reset_delay``
  (the reset lands one step late), i.e. the native networks.
- ``"norse"`` (Norse 1.1 ``to_nir``, default ``dt = 1e-3``): Norse writes
  ``tau = dt / tau_mem_inv`` (its issue #411), so the native leak ``dt tau_mem_inv`` is
  ``dt^2 / tau``; it ignores ``r`` of LIF and IF, adds CubaLIF's input to the current
  whole (``w_in`` as a plain factor) and resets to zero (its importer ignores
  ``v_reset``).

``reset`` (``"hard"``: to the file's ``v_reset``; ``"zero"``; ``"subtract"``) overrides
the convention's reset for every neuron (with ``"snntorch"``, see above).
"""

from __future__ import annotations

import errno
import os

import numpy as np
import torch
from torch import nn

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
from spikeforge.neurons import IF, LIF, CubaLIF

CONVENTIONS = ("nir", "snntorch", "norse")
CONVENTION_DT = {"snntorch": 1e-4, "norse": 1e-3}
RESETS = (None, "hard", "zero", "subtract")
SUPPORTED = ("Input", "Output", "Affine", "Linear", "Conv1d", "Conv2d", "Flatten",
             "SumPool2d", "AvgPool2d", "Scale", "Threshold", "IF", "LIF", "CubaLIF", "LI", "I",
             "Delay", "NIRGraph")


def read_nir(source):
    """A ``nir.NIRGraph`` from a path or a graph; a clear error for a non-NIR file."""
    import nir

    if isinstance(source, nir.NIRGraph):
        return source
    if isinstance(source, nir.NIRNode):
        return nir.NIRGraph.from_list(source)
    path = os.fspath(source)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "NIR file does not exist", path)
    try:
        # nir's own type check rejects files the peers write (scalar parameters); the
        # dry run of from_nir checks the shapes instead, naming the node
        return nir.read(path, type_check=False)
    except Exception as err:  # h5py/nir raise OSError, KeyError, ValueError...
        raise NIRGraphError(f"{path} is not a NIR file ({type(err).__name__}: {err})") from err


def from_nir(source, dt: float | None = None, convention: str = "nir",
             reset: str | None = None, backend: str = "auto") -> NIRGraphModule:
    """A time-first module (``[T, B, *input]`` in, the output node's ``[T, B, ...]`` out)
    running the NIR graph ``source`` (a path or a ``nir.NIRGraph``) in steps of ``dt``
    seconds, read with ``convention`` (see the module docstring); ``backend`` is the
    neurons' (``"auto"``, ``"reference"``, ...).

    Raises :class:`NIRGraphError` naming the node for an unsupported node type, per-neuron
    parameters spikeforge's neurons do not take, mismatched shapes or a cycle without a
    delay or neuron.

    Example::

        net = from_nir("model.nir", convention="snntorch")
        spikes = net(torch.rand(100, 8, 20))   # [T, B, 20] -> [T, B, out]
    """
    if convention not in CONVENTIONS:
        raise NIRGraphError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if reset not in RESETS:
        raise NIRGraphError(f"reset must be one of {RESETS}, got {reset!r}")
    graph = read_nir(source)
    meta = {k: _plain(v) for k, v in (graph.metadata or {}).items()}
    if dt is None:
        dt = meta.get("dt", CONVENTION_DT.get(convention))
    if dt is None:
        raise NIRGraphError("the NIR file does not state its time step: pass dt (seconds), or a "
                         "convention ('snntorch': 1e-4, 'norse': 1e-3)")
    dt = float(dt)
    nodes, edges = _flatten_graph(graph)
    inputs = [n for n, node in graph.nodes.items() if type(node).__name__ == "Input"]
    outputs = [n for n, node in graph.nodes.items() if type(node).__name__ == "Output"]
    modules: dict = {}
    expect: dict = {}
    extra_edges: list = []
    node_meta: dict = {}
    initial: dict = {}
    for name, node in nodes.items():
        kind = type(node).__name__
        if kind not in SUPPORTED:
            raise NIRGraphError(f"node {name!r}: NIR type {kind} is not supported (supported: "
                                f"{', '.join(SUPPORTED)})")
        node_meta[name] = {k: _plain(v) for k, v in (getattr(node, "metadata", None)
                                                     or {}).items()}
        mod, scale, shape = _module(name, node, dt, convention, reset, node_meta[name])
        if hasattr(mod, "backend"):
            mod.backend = backend
            mod._check_backend()
        modules[name] = mod
        if shape is not None:
            expect[name] = shape
        v0 = node_meta[name].get("spikeforge_v_init") if convention == "nir" else None
        if v0 is not None:  # NIR has no initial state: our metadata
            initial[name] = np.asarray(v0, dtype=np.float32)
            expect.setdefault(name, initial[name].shape)
        if scale is not None:  # a Scale node in front of the neuron
            sname = f"{name}.input_scale"
            modules[sname] = Scale(scale)
            edges = [(a, sname) if b == name else (a, b) for a, b in edges]
            extra_edges.append((sname, name))
    edges = edges + extra_edges
    net = NIRGraphModule(modules, edges, inputs, outputs,
                         metadata={**meta, "dt": dt, "convention": convention},
                         node_metadata=node_meta, expect=expect, initial=initial)
    _check_shapes(net, nodes, inputs)
    return net


def _plain(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return v.item()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _flatten_graph(graph, prefix: str = ""):
    """Nodes and edges with nested graphs (snnTorch's ``RLeaky``) inlined: a subgraph's
    ``Input``/``Output`` become pass-through nodes ``sub.input``/``sub.output``."""
    import nir

    nodes, edges = {}, []
    sub_io = {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sn, se = _flatten_graph(node, full + ".")
            nodes.update(sn)
            edges += se
            ins = [n for n, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [n for n, v in node.nodes.items() if isinstance(v, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise NIRGraphError(f"node {full!r}: a subgraph needs one Input and one Output")
            sub_io[full] = (f"{full}.{ins[0]}", f"{full}.{outs[0]}")
        else:
            nodes[full] = node
    for a, b in graph.edges:
        a, b = prefix + a, prefix + b
        a = sub_io[a][1] if a in sub_io else a
        b = sub_io[b][0] if b in sub_io else b
        edges.append((a, b))
    return nodes, edges


def _uniform(name: str, field: str, value) -> float:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 0:
        raise NIRGraphError(f"node {name!r}: {field} is empty")
    if not np.all(arr == arr.flat[0]):
        raise NIRGraphError(f"node {name!r}: {field} differs between neurons; spikeforge's "
                            f"neurons take one {field} per layer")
    return float(arr.flat[0])


def _param_shape(node, field: str):
    arr = np.asarray(getattr(node, field))
    return tuple(arr.shape) if arr.size > 1 else None


def _t(v) -> torch.Tensor:
    return torch.as_tensor(np.asarray(v, dtype=np.float32))


def _module(name, node, dt, convention, reset, meta):
    """(module or None, input scale or None, per-sample shape its parameters fix)."""
    kind = type(node).__name__
    if kind in ("Input", "Output", "NIRGraph"):
        return None, None, None
    if kind in ("Affine", "Linear"):
        w = _t(node.weight)
        if w.dim() != 2:
            raise NIRGraphError(f"node {name!r} ({kind}): weight must be 2-D, got {tuple(w.shape)}")
        m = nn.Linear(w.shape[1], w.shape[0], bias=kind == "Affine")
        with torch.no_grad():
            m.weight.copy_(w)
            if kind == "Affine":
                m.bias.copy_(_t(node.bias))
        return m, None, None
    if kind in ("Conv1d", "Conv2d"):
        w = _t(node.weight)
        cls = nn.Conv1d if kind == "Conv1d" else nn.Conv2d
        pad = node.padding if isinstance(node.padding, str) else _ints(node.padding)
        m = cls(w.shape[1] * int(node.groups), w.shape[0], tuple(w.shape[2:]),
                stride=_ints(node.stride), padding=pad, dilation=_ints(node.dilation),
                groups=int(node.groups), bias=True)
        with torch.no_grad():
            m.weight.copy_(w)
            m.bias.copy_(_t(node.bias) if node.bias is not None else torch.zeros(w.shape[0]))
        return m, None, None
    if kind == "Flatten":
        return NIRFlatten(int(node.start_dim), int(node.end_dim)), None, None
    if kind == "SumPool2d":
        return SumPool2d(_ints(node.kernel_size), _ints(node.stride), _ints(node.padding)), \
            None, None
    if kind == "AvgPool2d":
        return nn.AvgPool2d(_ints(node.kernel_size), _ints(node.stride), _ints(node.padding)), \
            None, None
    if kind == "Scale":
        return Scale(_t(node.scale)), None, _param_shape(node, "scale")
    if kind == "Threshold":
        return Threshold(_t(node.threshold)), None, _param_shape(node, "threshold")
    if kind == "LI":
        tau = np.asarray(node.tau, dtype=np.float64)
        k = dt * dt / tau if convention == "norse" else dt / tau
        r = np.ones_like(tau) if convention == "norse" else node.r
        return LeakyIntegrator(_t(k), _t(r), _t(node.v_leak)), None, _param_shape(node, "tau")
    if kind == "I":
        return Integrator(_t(node.r), dt), None, _param_shape(node, "r")
    if kind == "Delay":
        steps = np.asarray(node.delay, dtype=np.float64) / dt
        if not np.allclose(steps, np.round(steps), atol=1e-6):
            raise NIRGraphError(f"node {name!r} (Delay): delay {node.delay} is not a whole "
                                f"number of steps of dt={dt}")
        return Delay(torch.as_tensor(np.round(steps).astype(np.int64))), None, \
            _param_shape(node, "delay")
    return _neuron(name, node, kind, dt, convention, reset, meta)


def _ints(v):
    arr = np.atleast_1d(np.asarray(v)).astype(int).tolist()
    return arr[0] if len(arr) == 1 else tuple(arr)


def _reset_kwargs(name, node, convention, reset, meta) -> dict:
    """The reset and firing options of one neuron: the override, else a spikeforge file's
    metadata, else the convention's."""
    v_reset = getattr(node, "v_reset", None)
    v_reset = 0.0 if v_reset is None else _uniform(name, "v_reset", v_reset)
    if convention == "norse":
        v_reset = 0.0  # Norse 1.1's importer ignores v_reset; its exporter does not write it
    own = meta.get("spikeforge_reset") if convention == "nir" else None
    if reset is None and own is not None:
        opts = {"fire_strict": meta.get("spikeforge_fire", ">") == ">",
                "reset_delay": bool(meta.get("spikeforge_reset_delay", False)),
                "detach_reset": bool(meta.get("spikeforge_detach_reset", False)),
                "surrogate": meta.get("spikeforge_surrogate", "atan")}
        if meta.get("spikeforge_v_min") is not None:  # NIR has no floor: our metadata
            opts["v_min"] = float(meta["spikeforge_v_min"])
        if own == "hard":
            return {**opts, "v_reset": float(meta.get("spikeforge_v_reset", v_reset))}
        return {**opts, "v_reset": None, "reset": own}
    late = convention == "snntorch"  # Leaky's reset_mechanism comes with reset_delay=True
    if reset == "subtract":
        return {"fire_strict": True, "v_reset": None, "reset_delay": late, "detach_reset": True}
    if reset == "zero":
        return {"fire_strict": True, "v_reset": 0.0, "reset_delay": late}
    if convention == "snntorch" and reset is None:
        return {"fire_strict": True, "v_reset": 0.0}  # what snnTorch's importer builds
    return {"fire_strict": True, "v_reset": v_reset}


def _neuron(name, node, kind, dt, convention, reset, meta):
    opts = _reset_kwargs(name, node, convention, reset, meta)
    vth = _uniform(name, "v_threshold", node.v_threshold)
    shape = _param_shape(node, "v_threshold")
    if kind == "IF":
        r_dt = 1.0 if convention == "norse" else _uniform(name, "r", node.r) * dt
        return IF(v_threshold=vth, **opts), (None if r_dt == 1.0 else r_dt), shape
    v_leak = _uniform(name, "v_leak", node.v_leak)
    if v_leak != 0.0 or opts.get("v_reset") not in (None, v_leak):
        opts["v_leak"] = v_leak
    if kind == "LIF":
        tau = _uniform(name, "tau", node.tau)
        tau_s = _own(meta, "spikeforge_tau_steps",
                     tau / dt / dt if convention == "norse" else tau / dt)
        _check_tau(name, "tau", tau_s, dt)
        r = 1.0 if convention == "norse" else _uniform(name, "r", node.r)
        decay, scale = _decay(r, tau_s)
        return LIF(tau=tau_s, v_threshold=vth, decay_input=decay, **opts), scale, shape
    tau_syn, tau_mem = (_uniform(name, f, getattr(node, f)) for f in ("tau_syn", "tau_mem"))
    div = dt * dt if convention == "norse" else dt
    tau_syn_s = _own(meta, "spikeforge_tau_syn_steps", tau_syn / div)
    tau_s = _own(meta, "spikeforge_tau_steps", tau_mem / div)
    _check_tau(name, "tau_syn", tau_syn_s, dt)
    _check_tau(name, "tau_mem", tau_s, dt)
    w_in = _uniform(name, "w_in", node.w_in)
    r = _uniform(name, "r", node.r)
    decay, r_scale = _decay(r, tau_s)
    # NIR: the input enters the current through its time constant (w_in dt / tau_syn);
    # Norse's LIFCell adds it whole and its importer applies w_in as a plain factor
    scale = w_in * (1.0 if convention == "norse" else 1.0 / tau_syn_s) * (r_scale or 1.0)
    return (CubaLIF(tau=tau_s, tau_syn=tau_syn_s, v_threshold=vth, decay_input=decay, **opts),
            None if np.isclose(scale, 1.0, rtol=1e-6, atol=0.0) else scale, shape)


def _own(meta: dict, key: str, value: float) -> float:
    """A spikeforge file's exact step count (the file's float32 ``tau`` divided by ``dt``
    is off in the last bits), when it agrees with the file."""
    own = meta.get(key)
    if own is not None and np.isclose(float(own), value, rtol=1e-5, atol=0.0):
        return float(own)
    return value


def _decay(r: float, tau_s: float):
    """``r = 1``: input decays with the membrane; ``r = tau/dt``: no input decay; any
    other ``r``: input decay and a Scale(r) in front."""
    if r == 1.0:
        return True, None
    if np.isclose(r, tau_s, rtol=1e-5, atol=0.0):
        return False, None
    return True, r


def _check_tau(name: str, field: str, tau_s: float, dt: float) -> None:
    if not tau_s >= 1.0:
        raise NIRGraphError(f"node {name!r}: {field}/dt = {tau_s:.4g} < 1: forward Euler with "
                            f"dt={dt} is unstable for it; pass a smaller dt")


def _check_shapes(net: NIRGraphModule, nodes: dict, inputs: list) -> None:
    """A dry run on zeros of the input node's shape: mismatched shapes fail here, naming
    the node."""
    it = getattr(nodes[inputs[0]], "input_type", None) if inputs else None
    if not it:
        return
    shape = tuple(int(s) for s in np.asarray(next(iter(it.values()))).reshape(-1))
    if not shape:
        return
    net.input_shape = shape
    net.node_shapes(shape)
