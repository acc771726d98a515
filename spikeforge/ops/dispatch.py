"""One entry point to the fused multi-step neuron kernels.

``multistep(backend, x, state0, params, spec, need_state)`` runs the neuron described by
:class:`~spikeforge.ops.spec.NeuronSpec` (kernel kinds ``"if"``, ``"lif"``, ``"alif"``,
``"cubalif"``; equations in :mod:`spikeforge.ops.spec`) over time-first ``x`` ``[T, ...]``
with the named backend (``"cpu"``: numba loops in :mod:`spikeforge.ops.cpu`;
``"triton"``: Triton kernels in :mod:`spikeforge.ops.triton_neuron`) and returns
``(spikes, final_state)``, differentiable with respect to ``x``, the initial state and
tensor parameters through one ``torch.autograd.Function`` per backend
(:mod:`spikeforge.ops._autograd`, which also documents the raw entry points), whose
backward recomputes the state from ``x`` instead of storing it.

Each backend declares what it runs in one place (a
:class:`~spikeforge.ops.support.BackendSupport`); :func:`unsupported` reads it and
answers with a sentence naming what a backend cannot run, which callers use both to pick
a backend (the reference runs everything) and as the error of an explicit choice.

The Triton backend runs on CUDA tensors, or on any device when the environment
variable ``TRITON_INTERPRET=1`` is set (Triton's interpreter: slow, but it lets the
whole neuron path be tested on a CPU).
"""

from __future__ import annotations

import importlib
import importlib.util
import os

import torch
from torch._C import _is_tracing as _is_jit_tracing  # torch.jit.is_tracing without its wrapper

from spikeforge.ops import custom_op  # registers spikeforge::multistep (exported programs)
from spikeforge.ops.spec import PARAM_NAMES, STATE_NAMES, NeuronSpec

BACKENDS = ("cpu", "triton")
_FUNCTIONS: dict[str, type] = {}


def triton_interpret() -> bool:
    """Whether ``TRITON_INTERPRET`` asks for Triton's CPU interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def unavailable_reason(backend: str, device: torch.device) -> str | None:
    """A sentence saying why ``backend`` cannot run on ``device``, or ``None`` if it can."""
    device = torch.device(device)
    if backend == "cpu":
        if device.type != "cpu":
            return f"backend 'cpu' runs on CPU tensors only, got a tensor on {device}"
        if not _has_module("numba"):
            return "backend 'cpu' needs numba, which is not installed (pip install numba)"
        return None
    if backend == "triton":
        if not _has_module("triton"):
            return "backend 'triton' needs triton, which is not installed (pip install triton)"
        if triton_interpret():
            return None
        if device.type != "cuda":
            return (
                f"backend 'triton' runs on CUDA tensors, got a tensor on {device} "
                "(set TRITON_INTERPRET=1 to run Triton's CPU interpreter)"
            )
        if not torch.cuda.is_available():
            return "backend 'triton' needs CUDA, but torch.cuda.is_available() is False"
        return None
    return f"unknown backend {backend!r}; fused backends are {BACKENDS}"


_AVAILABLE: dict = {}


def is_available(backend: str, device: torch.device) -> bool:
    """Whether ``backend`` can run on ``device`` in this installation (the answer is
    kept per backend, device type and ``TRITON_INTERPRET`` setting: it is asked on every
    call of a neuron, and finding modules costs more than the neuron's own host work)."""
    dev_type = device.type if isinstance(device, torch.device) else torch.device(device).type
    key = (backend, dev_type, backend == "triton" and triton_interpret())
    ok = _AVAILABLE.get(key)
    if ok is None:
        ok = _AVAILABLE[key] = unavailable_reason(backend, device) is None
    return ok


# Each backend's support declaration (a light module: no numba or Triton import) and its
# raw entry points (forward/backward of :mod:`spikeforge.ops._autograd`), loaded on use.
_SUPPORT_MODULES = {"cpu": "spikeforge.ops.cpu.support", "triton": "spikeforge.ops.triton_support"}


# The declarations are loaded here, at import (they are light), so that torch.compile
# traces support() as a dict lookup instead of breaking the graph at import_module.
_SUPPORT = {b: importlib.import_module(m).SUPPORT for b, m in _SUPPORT_MODULES.items()}


def support(backend: str):
    """The :class:`~spikeforge.ops.support.BackendSupport` declared by ``backend``."""
    if backend not in _SUPPORT:
        raise ValueError(f"unknown backend {backend!r}; fused backends are {BACKENDS}")
    return _SUPPORT[backend]


def unsupported(backend: str, spec: NeuronSpec, dtype: torch.dtype, device, params=None
                ) -> str | None:
    """``None`` when ``backend`` runs neuron ``spec`` on ``device`` for inputs of ``dtype``
    with ``params`` (a tuple; ``None`` skips the parameter check), else a sentence
    naming what it cannot run (the kind, an option, the dtype, a tensor parameter, or
    why the backend is not available on that device)."""
    if backend not in BACKENDS:
        return f"unknown backend {backend!r}; fused backends are {BACKENDS}"
    reason = support(backend).unsupported(spec, dtype, params)
    if reason is not None:
        return reason
    if not is_available(backend, torch.device(device)):
        return unavailable_reason(backend, torch.device(device))
    return None


def _entry_points(backend: str):
    """``(forward, backward)`` raw entry points of ``backend``."""
    if backend == "cpu":
        from spikeforge.ops.cpu import entry

        return entry.forward, entry.backward
    from spikeforge.ops import triton_neuron as impl

    if getattr(impl, "STATE_TUPLES", False):
        return impl.forward, impl.backward
    from spikeforge.ops._autograd import legacy_single_state

    return legacy_single_state(impl.forward, impl.backward)


def _function(backend: str) -> type:
    fn = _FUNCTIONS.get(backend)
    if fn is None:
        from spikeforge.ops._autograd import make_function

        name = {"cpu": "CPUMultiStep", "triton": "TritonMultiStep"}[backend]
        fn = _FUNCTIONS[backend] = make_function(name, *_entry_points(backend))
    return fn


def _tracing() -> bool:
    """Whether the call is being traced (``torch.compile``, ``torch.export``,
    ``torch.jit.trace``): the kernels then run as the custom operators of
    :mod:`spikeforge.ops.custom_op`, which tracers see as one opaque call; eager calls keep
    the lighter autograd Function."""
    return torch.compiler.is_compiling() or _is_jit_tracing()  # 0.4 us in eager


def multistep(backend: str, x: torch.Tensor, state0, params, spec: NeuronSpec,
              need_state: bool = True):
    """Run the fused kernel of ``backend`` for neuron ``spec`` over time-first ``x``
    (equations in :mod:`spikeforge.ops.spec`), with surrogate gradients in backward.

    Args:
        x: ``[T, ...]`` float16/bfloat16/float32/float64, any strides, ``T >= 1``.
        state0: a tuple of tensors shaped ``x.shape[1:]`` in the kind's state order
            (:data:`~spikeforge.ops.spec.STATE_NAMES`: ``(v,)``, ``(v, a)``, ``(i, v)``),
            an entry may be ``None`` for its rest value; or ``None``: the rest state
            (``V = V_rest``, ``A = I = 0``).
        params: a tuple in :data:`~spikeforge.ops.spec.PARAM_NAMES` order: ``()`` for IF,
            ``(k,)`` for LIF (``k`` a float or a 0-d tensor, PLIF, which gets a gradient),
            ``(k, rho, beta)`` for ALIF, ``(k_syn, k_mem)`` for CubaLIF.
        need_state: without it the final state is not stored (``None`` is returned).

    Returns:
        ``(spikes [T, ...] in x's dtype, final_state)``: ``final_state`` a tuple in
        ``state0``'s order, each ``x.shape[1:]`` in the compute dtype (float64 for float64
        input, else float32), or ``None``. Gradients flow to ``x``, every ``state0``
        tensor and every tensor param.

    Raises:
        RuntimeError: naming what ``backend`` cannot run (:func:`unsupported`).
        ValueError: a state or param of the wrong shape or count.
    """
    if backend not in BACKENDS:
        raise RuntimeError(f"unknown backend {backend!r}; fused backends are {BACKENDS}")
    if not is_available(backend, x.device):
        raise RuntimeError(unavailable_reason(backend, x.device))
    if params is None:
        params = ()
    elif not isinstance(params, tuple):
        params = tuple(params)
    params = tuple(p if isinstance(p, torch.Tensor) else float(p) for p in params)
    reason = support(backend).unsupported(spec, x.dtype, params)
    if reason is not None:
        raise RuntimeError(reason)
    if x.dim() < 1 or x.shape[0] == 0:
        raise ValueError(f"x must be time-first [T, ...] with T >= 1, got shape {tuple(x.shape)}")
    for name, p in zip(PARAM_NAMES[spec.kind], params):
        if isinstance(p, torch.Tensor) and p.numel() != 1:
            raise ValueError(
                f"param {name!r} must be a float or a one-element tensor, got shape "
                f"{tuple(p.shape)}"
            )
    names = STATE_NAMES[spec.kind]
    T = x.shape[0]
    x2d = (x if x.dim() == 2 else x.reshape(T, -1)).contiguous()
    n = x2d.shape[1]
    if state0 is None:
        state0 = (None,) * len(names)
    elif not isinstance(state0, tuple):
        state0 = tuple(state0)
    if len(state0) != len(names):
        raise ValueError(f"neuron kind {spec.kind!r} has state {names}, got {len(state0)} "
                         "initial state tensor(s)")
    flat = []
    for name, s0 in zip(names, state0):
        if s0 is not None:
            if s0.numel() != n:
                raise ValueError(f"initial state {name!r} has shape {tuple(s0.shape)}, expected "
                                 f"{tuple(x.shape[1:])} (x.shape[1:])")
            s0 = s0.reshape(n)
        flat.append(s0)
    if _tracing():  # torch.compile / torch.export / jit.trace: the custom operator
        spikes, *final = custom_op.apply(backend, spec, bool(need_state), len(names), x2d,
                                         *flat, *params)
    else:
        spikes, *final = _function(backend).apply(spec, bool(need_state), len(names), x2d,
                                                   *flat, *params)
    if x.dim() != 2:
        spikes = spikes.reshape(x.shape)
    if not need_state or final[0] is None:
        return spikes, None
    return spikes, tuple(f.reshape(x.shape[1:]) for f in final)
