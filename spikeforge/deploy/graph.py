"""Time-first modules for the NIR primitives spikeforge has no layer for, and the graph
executor an imported NIR file runs in.

Every module here maps ``[T, B, ...]`` to ``[T, B, ...]``. The stateful ones (leaky
integrator, integrator, delay) also take one step, ``step(x_t, state) -> (y_t, state)``,
for graphs with recurrent edges, which the executor runs step by step. The discrete
equations are NIR's ODEs under forward Euler with a step ``dt`` (as snnTorch and Norse
integrate them); the importer (:mod:`spikeforge.deploy.nir`) turns NIR's continuous
parameters into the per-step ones stored here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spikeforge.errors import SpikeforgeError
from spikeforge.neurons.base import SpikingNeuron


class NIRGraphError(SpikeforgeError, ValueError):
    """A NIR graph spikeforge cannot run or write; the message names the node."""


class Scale(nn.Module):
    """NIR ``Scale``: ``y = s * x``, ``s`` broadcast over the per-sample shape."""

    def __init__(self, scale) -> None:
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.to(x.dtype)


class Threshold(nn.Module):
    """NIR ``Threshold``: ``y = Heaviside(x - theta)``, 1 where ``x > theta`` (NIR's
    strict comparison). Stateless; no gradient (use a spiking neuron for training)."""

    def __init__(self, threshold) -> None:
        super().__init__()
        self.register_buffer("threshold", torch.as_tensor(threshold, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x > self.threshold.to(x.dtype)).to(x.dtype)


class SumPool2d(nn.Module):
    """NIR ``SumPool2d``: the sum over each window, ``y = k_h k_w AvgPool2d(x)`` with
    zero padding counted (``[N, C, H, W]``)."""

    def __init__(self, kernel_size, stride, padding=0) -> None:
        super().__init__()
        self.kernel_size = tuple(int(k) for k in _pair(kernel_size))
        self.stride = tuple(int(s) for s in _pair(stride))
        self.padding = tuple(int(p) for p in _pair(padding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, divisor_override=1)


class NIRFlatten(nn.Module):
    """NIR ``Flatten(start_dim, end_dim)``, dimensions counted in the per-sample shape
    (NIR has no batch dimension): on ``[N, *sample]`` it flattens ``start_dim + 1`` to
    ``end_dim + 1`` (a negative ``end_dim`` counts from the end as it is)."""

    def __init__(self, start_dim: int = 0, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        start = self.start_dim + 1 if self.start_dim >= 0 else self.start_dim
        end = self.end_dim + 1 if self.end_dim >= 0 else self.end_dim
        return x.flatten(start, end)


class LeakyIntegrator(nn.Module):
    """NIR ``LI`` in steps of ``dt`` (forward Euler of ``tau dv/dt = (v_leak - v) + r I``)::

        V[t] = V[t-1] + k (r X[t] - (V[t-1] - v_leak)),   k = dt / tau

    output ``V[t]`` (no spikes); ``V`` starts at ``v_leak``. Norse 1.1's ``LIBoxCell`` is
    this with ``k = dt tau_mem_inv`` and ``r = 1``.
    """

    def __init__(self, k, r=1.0, v_leak=0.0) -> None:
        super().__init__()
        self.register_buffer("k", torch.as_tensor(k, dtype=torch.float32))
        self.register_buffer("r", torch.as_tensor(r, dtype=torch.float32))
        self.register_buffer("v_leak", torch.as_tensor(v_leak, dtype=torch.float32))

    def step(self, x: torch.Tensor, state=None):
        """One step from membrane ``state`` (None: ``v_leak``): ``(V[t], V[t])``."""
        v = self.v_leak.to(x.dtype).expand_as(x) if state is None else state
        k, r, v_leak = (b.to(x.dtype) for b in (self.k, self.r, self.v_leak))
        v = v + k * (r * x - (v - v_leak))
        return v, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run_steps(self, x)


class Integrator(nn.Module):
    """NIR ``I`` in steps of ``dt`` (forward Euler of ``dv/dt = r I``)::

        V[t] = V[t-1] + dt r X[t],   output V[t], V starts at 0."""

    def __init__(self, r=1.0, dt: float = 1.0) -> None:
        super().__init__()
        self.dt = float(dt)
        self.register_buffer("r", torch.as_tensor(r, dtype=torch.float32))

    def step(self, x: torch.Tensor, state=None):
        """One step from ``state`` (None: 0): ``(V[t], V[t])``."""
        v = torch.zeros_like(x) if state is None else state
        v = v + self.dt * self.r.to(x.dtype) * x
        return v, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(x * (self.dt * self.r.to(x.dtype)), dim=0)


class Delay(nn.Module):
    """NIR ``Delay`` in whole steps: ``y[t] = x[t - d]`` (0 before the first input), with
    ``d = delay / dt`` per element of the per-sample shape (or one for all)."""

    def __init__(self, steps) -> None:
        super().__init__()
        d = torch.as_tensor(steps, dtype=torch.long)
        if (d < 0).any():
            raise NIRGraphError(f"Delay: negative delay {d.min().item()} steps")
        self.register_buffer("steps", d)

    @property
    def max_steps(self) -> int:
        return int(self.steps.max()) if self.steps.numel() else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[0]
        d = self.steps.expand(x.shape[2:]) if self.steps.dim() else self.steps
        pad = torch.cat([torch.zeros((self.max_steps,) + x.shape[1:], dtype=x.dtype,
                                     device=x.device), x])
        idx = torch.arange(t, device=x.device).view(-1, *([1] * (x.dim() - 1)))
        idx = (idx + self.max_steps - d).expand(x.shape)
        return pad.gather(0, idx)

    def step(self, x: torch.Tensor, state=None):
        """One step: the history ``hist[j] = x[t-j]`` (``x_t`` pushed first), output
        ``hist[d]``."""
        hist = torch.zeros((self.max_steps + 1,) + x.shape, dtype=x.dtype, device=x.device) \
            if state is None else torch.cat([x.new_zeros((1,) + x.shape), state[:-1]])
        hist[0] = x
        return self._read(hist, 0), hist

    def _read(self, hist: torch.Tensor, offset: int) -> torch.Tensor:
        d = (self.steps - offset).clamp(min=0).expand(hist.shape[1:])
        return hist.gather(0, d.unsqueeze(0)).squeeze(0)


def _run_steps(module, x: torch.Tensor) -> torch.Tensor:
    state, out = None, []
    for t in range(x.shape[0]):
        y, state = module.step(x[t], state)
        out.append(y)
    return torch.stack(out)


def _pair(v):
    v = list(v) if hasattr(v, "__len__") else [v]
    return v * 2 if len(v) == 1 else v


def is_stateful(module: nn.Module) -> bool:
    """Whether a node carries state from step to step (a cycle through it is computable
    with the one-step delay of a recurrent edge)."""
    return isinstance(module, (SpikingNeuron, LeakyIntegrator, Integrator, Delay))


class NIRGraphModule(nn.Module):
    """A NIR graph as a time-first module: ``x [T, B, *input]`` in, the output node's
    ``[T, B, *output]`` out (a tuple for several outputs).

    A node's input is the sum of its predecessors' outputs (NIR's edge semantics).
    Per-sample layers (``Linear``, ``Conv``, pooling, ``Scale``, ``Threshold``,
    ``Flatten``) run on every step; neurons and integrators run over time.

    Recurrent edges: an acyclic graph runs layer by layer over the whole sequence (the
    neurons' fused kernels apply). A graph with cycles runs step by step; a ``Delay`` of
    ``d >= 1`` steps inside a cycle gives it its delay, and otherwise the edge that
    closes the cycle (found depth-first from the inputs, in the file's edge order)
    carries the previous step's output, the one-step delay of snnTorch's ``RLeaky``
    and Norse's recurrent cells; into step 0 it carries the network's output at rest
    (:meth:`_rest`: an Affine's bias, as ``RLeaky`` adds). A delay's output before its
    first input is 0. A cycle through no neuron, integrator or delay is an
    algebraic loop and an error naming its nodes.

    ``initial`` maps a neuron node to its initial membrane ``V[-1]`` (per-sample shape;
    a spikeforge file's ``spikeforge_v_init``, written for converted networks, as NIR
    has no initial state); the other neurons start at rest.
    """

    def __init__(self, nodes: dict[str, nn.Module | None], edges, inputs, outputs,
                 metadata: dict | None = None, node_metadata: dict | None = None,
                 expect: dict | None = None, initial: dict | None = None) -> None:
        super().__init__()
        self.node_names = list(nodes)
        self.layers = nn.ModuleDict({_key(n): m for n, m in nodes.items() if m is not None})
        self.edges = [tuple(e) for e in edges]
        self.inputs, self.outputs = list(inputs), list(outputs)
        self.metadata = dict(metadata or {})
        self.node_metadata = dict(node_metadata or {})
        self.expect = dict(expect or {})  # node -> per-sample shape its parameters fix
        self._lead = 2
        for a, b in self.edges:
            for n in (a, b):
                if n not in nodes:
                    raise NIRGraphError(f"edge ({a!r}, {b!r}) names node {n!r}, not in the graph")
        if len(self.inputs) != 1:
            raise NIRGraphError(f"the graph needs exactly one input node, has {self.inputs}")
        self.preds = {n: [a for a, b in self.edges if b == n] for n in self.node_names}
        self.initial_nodes = []
        for n, v in (initial or {}).items():
            m = nodes.get(n)
            if not isinstance(m, SpikingNeuron) or len(m.State._fields) != 1:
                raise NIRGraphError(f"node {n!r}: an initial membrane needs a one-variable "
                                    f"neuron (IF, LIF), got {type(m).__name__}")
            self.register_buffer(f"v_init__{_key(n)}", torch.as_tensor(v, dtype=torch.float32))
            self.initial_nodes.append(n)
        self._plan()

    def initial(self, name: str, y: torch.Tensor):
        """The initial state of node ``name`` for a step input ``y`` ``[B, ...]`` (None:
        the neuron's rest state)."""
        if name not in self.initial_nodes:
            return None
        v = self.initial_membrane(name).to(y.dtype)
        return (v.expand(y.shape).contiguous(),)

    def initial_membrane(self, name: str) -> torch.Tensor:
        """The initial membrane buffer of neuron node ``name`` (per-sample shape)."""
        return getattr(self, f"v_init__{_key(name)}")

    def module(self, name: str) -> nn.Module | None:
        """The module of node ``name`` (None for a pass-through Input/Output node)."""
        return self.layers[_key(name)] if _key(name) in self.layers else None

    # --- scheduling ----------------------------------------------------------------
    def _breaker(self, name: str) -> bool:
        m = self.module(name)
        return isinstance(m, Delay) and m.steps.numel() > 0 and int(m.steps.min()) >= 1

    def _plan(self) -> None:
        """Order the nodes; mark back edges (cycles) and check every cycle is computable."""
        deps = {n: [a for a in self.preds[n] if not self._breaker(a)] for n in self.node_names}
        succ = {n: [b for a, b in self.edges if a == n and not self._breaker(a)]
                for n in self.node_names}
        self.back_edges: set[tuple[str, str]] = set()
        state, stack, order = {}, [], []

        def visit(n):
            state[n] = 1
            stack.append(n)
            for m in succ[n]:
                if state.get(m) == 1:
                    cycle = stack[stack.index(m):]
                    if not any(is_stateful(self.module(c)) for c in cycle):
                        raise NIRGraphError(
                            "a cycle without a delay or a neuron (an algebraic loop): "
                            + " -> ".join(cycle + [m]))
                    self.back_edges.add((n, m))
                elif m not in state:
                    visit(m)
            stack.pop()
            state[n] = 2

        roots = self.inputs + [n for n in self.node_names if self._breaker(n)]
        for r in roots + self.node_names:
            if r not in state:
                visit(r)
        # topological order on the dependencies without back edges (Kahn)
        indeg = {n: sum(1 for a in deps[n] if (a, n) not in self.back_edges)
                 for n in self.node_names}
        ready = [n for n in self.node_names if indeg[n] == 0]
        while ready:
            n = ready.pop(0)
            order.append(n)
            for m in succ[n]:
                if (n, m) not in self.back_edges:
                    indeg[m] -= 1
                    if indeg[m] == 0:
                        ready.append(m)
        self.order = order
        self.cyclic = bool(self.back_edges) or any(
            self._breaker(a) and self._reaches(b, a) for a, b in self.edges)

    def _reaches(self, src: str, dst: str) -> bool:
        seen, todo = set(), [src]
        while todo:
            n = todo.pop()
            if n == dst:
                return True
            if n not in seen:
                seen.add(n)
                todo += [b for a, b in self.edges if a == n]
        return False

    # --- running -------------------------------------------------------------------
    def forward(self, x: torch.Tensor):
        if x.dim() < 2:
            raise ValueError(f"NIRGraphModule expects time-first [T, B, ...], got {tuple(x.shape)}")
        out = self._run_steps(x) if self.cyclic else self._run_sequence(x)
        ys = tuple(out[n] for n in self.outputs)
        return ys[0] if len(ys) == 1 else ys

    def node_shapes(self, input_shape) -> dict:
        """Per-sample output shape of every node (and ``"name:in"``, its input's), from a
        dry run on zeros."""
        self._shapes = {}
        try:
            with torch.no_grad():
                self.forward(torch.zeros((1, 1) + tuple(input_shape)))
            return self._shapes
        finally:
            self._shapes = None

    _shapes = None

    def _gather(self, n: str, out: dict):
        terms = [out[a] for a in self.preds[n] if out.get(a) is not None]
        if not terms:
            raise NIRGraphError(f"node {n!r} has no input")
        y = terms[0]
        want = self.expect.get(n)
        if want is not None and tuple(y.shape[self._lead:]) != tuple(want):
            raise NIRGraphError(f"node {n!r}: its parameters have shape {tuple(want)}, but its "
                                f"input has per-sample shape {tuple(y.shape[self._lead:])}")
        for t in terms[1:]:
            if t.shape != y.shape:
                raise NIRGraphError(f"node {n!r}: its inputs have shapes {tuple(y.shape)} and "
                                    f"{tuple(t.shape)}; summed inputs must match")
            y = y + t
        if self._shapes is not None:
            self._shapes[f"{n}:in"] = tuple(y.shape[self._lead:])
        return y

    def _record(self, n: str, y: torch.Tensor) -> None:
        if self._shapes is not None:
            self._shapes[n] = tuple(y.shape[self._lead:])

    def _run_sequence(self, x: torch.Tensor) -> dict:
        self._lead = 2
        out = {}
        for n in self.order:
            if n in self.inputs:
                out[n] = x
                continue
            y = self._gather(n, out)
            m = self.module(n)
            if m is None:
                out[n] = y
            elif isinstance(m, (SpikingNeuron, LeakyIntegrator, Integrator, Delay)):
                # a shape-only dry run need not run (and compile) the neuron
                out[n] = y if self._shapes is not None else (
                    m(y, self.initial(n, y[0])) if n in self.initial_nodes else m(y))
            else:
                out[n] = _per_step(m, y, n)
            self._record(n, out[n])
        return out

    def _rest(self, x0: torch.Tensor) -> dict:
        """Every node's output at step -1, the network at rest under zero input: neurons
        and integrators emit their rest output, per-sample layers their response (an
        Affine its bias). What a recurrent edge carries into step 0 (snnTorch's ``RLeaky``
        adds ``recurrent(0)``, the bias, at its first step)."""
        shapes = self.node_shapes(tuple(x0.shape[1:]))
        self._lead = 1
        b = x0.shape[0]
        rest: dict = {}
        for n in self.order:
            if n in self.inputs:
                rest[n] = torch.zeros_like(x0)
                continue
            terms = {a: (x0.new_zeros((b,) + shapes[a]) if (a, n) in self.back_edges
                         or self._breaker(a) else rest.get(a)) for a in self.preds[n]}
            y = self._gather(n, terms)
            m = self.module(n)
            if m is None:
                rest[n] = y
            elif isinstance(m, LeakyIntegrator):
                rest[n] = m.v_leak.to(y.dtype).expand_as(y).clone()
            elif is_stateful(m):
                rest[n] = torch.zeros_like(y)
            else:
                rest[n] = m(y)
        return rest

    def _run_steps(self, x: torch.Tensor) -> dict:
        prev: dict = {} if self._shapes is not None else self._rest(x[0])
        self._lead = 1
        states: dict = {}
        seq: dict = {n: [] for n in self.outputs}
        for t in range(x.shape[0]):
            cur: dict = {}
            for n in self.node_names:  # delays with d >= 1 emit before their input arrives
                if self._breaker(n) and n in states:
                    cur[n] = self.module(n)._read(states[n], 1)
                elif self._breaker(n):
                    cur[n] = None
            for n in self.order:
                if n in self.inputs:
                    cur[n] = x[t]
                    continue
                terms = {a: (prev.get(a) if (a, n) in self.back_edges else cur.get(a))
                         for a in self.preds[n]}
                y = self._gather(n, terms)
                m = self.module(n)
                if self._breaker(n):
                    hist = states.get(n)
                    hist = (torch.zeros((m.max_steps + 1,) + y.shape, dtype=y.dtype,
                                        device=y.device) if hist is None
                            else torch.cat([y.new_zeros((1,) + y.shape), hist[:-1]]))
                    hist[0] = y
                    states[n] = hist
                    if cur[n] is None:
                        cur[n] = torch.zeros_like(y)
                elif m is None:
                    cur[n] = y
                elif hasattr(m, "step") and self._shapes is not None:
                    cur[n] = y
                elif hasattr(m, "step"):
                    cur[n], states[n] = m.step(y, states[n] if n in states
                                               else self.initial(n, y))
                else:
                    cur[n] = m(y)
                self._record(n, cur[n])
            for n in self.outputs:
                seq[n].append(cur[n])
            prev = cur
        return {n: torch.stack(v) for n, v in seq.items()}


def _per_step(m: nn.Module, x: torch.Tensor, name: str) -> torch.Tensor:
    t, b = x.shape[:2]
    try:
        y = m(x.reshape(t * b, *x.shape[2:]))
    except RuntimeError as err:
        raise NIRGraphError(f"node {name!r} ({type(m).__name__}) cannot take input of "
                            f"per-sample shape {tuple(x.shape[2:])}: {err}") from err
    return y.reshape(t, b, *y.shape[1:])


def _key(name: str) -> str:
    # ModuleDict keys cannot contain '.'
    return name.replace(".", "__")
