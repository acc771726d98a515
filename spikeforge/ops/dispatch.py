"""One entry point to the fused multi-step neuron kernels.

``multistep(backend, x, v0, k, spec)`` runs the neuron described by
:class:`~spikeforge.ops.spec.NeuronSpec` over time-first ``x`` ``[T, ...]`` with the
named backend (``"cpu"``: numba loops in :mod:`spikeforge.ops.cpu_neuron`;
``"triton"``: Triton kernels in :mod:`spikeforge.ops.triton_neuron`) and returns
``(spikes, v_final)``::

    H[t] = V[t-1] + k (X[t] - (V[t-1] - V_rest))   (LIF, decay_input; other forms in spec)
    S[t] = Heaviside(H[t] - V_th)
    V[t] = reset(H[t], S[t])

``spikes`` ``[T, ...]`` has ``x``'s dtype; ``v_final`` ``[...]`` is float32 (float64 for
float64 input). Both are differentiable with respect to ``x``, ``v0`` and a tensor
``k`` through one ``torch.autograd.Function`` per backend, whose backward recomputes
the membrane from ``x`` instead of storing it.

The Triton backend runs on CUDA tensors, or on any device when the environment
variable ``TRITON_INTERPRET=1`` is set (Triton's interpreter: slow, but it lets the
whole neuron path be tested on a CPU).
"""

from __future__ import annotations

import importlib.util
import os

import torch

from spikeforge.ops.spec import NeuronSpec

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


def _function(backend: str) -> type:
    fn = _FUNCTIONS.get(backend)
    if fn is None:
        from spikeforge.ops._autograd import make_function

        if backend == "cpu":
            from spikeforge.ops import cpu_neuron as impl

            name = "CPUMultiStep"
        else:
            from spikeforge.ops import triton_neuron as impl

            name = "TritonMultiStep"
        fn = _FUNCTIONS[backend] = make_function(name, impl.forward, impl.backward)
    return fn


def multistep(backend: str, x: torch.Tensor, v0, k, spec: NeuronSpec, need_state: bool = True):
    """Run the fused kernel of ``backend`` over time-first ``x``::

        H[t] = V[t-1] + k (X[t] - (V[t-1] - V_rest))   (IF / non-decay forms in spec)
        S[t] = Heaviside(H[t] - V_th),   V[t] = reset(H[t], S[t]),   V[-1] = v0

    with surrogate gradients in backward (see the module docstring).

    ``x``: ``[T, ...]`` float16/bfloat16/float32/float64, any strides; ``v0``: ``x.shape[1:]``
    or ``None`` (zeros); ``k``: the leak factor, a float or a 0-d/1-element tensor (PLIF,
    which then receives a gradient). Returns ``(spikes [T, ...], v_final [...])``;
    ``v_final`` is ``None`` without ``need_state`` (the kernels then skip storing it).
    """
    if not is_available(backend, x.device):
        raise RuntimeError(unavailable_reason(backend, x.device))
    if x.dim() < 1 or x.shape[0] == 0:
        raise ValueError(f"x must be time-first [T, ...] with T >= 1, got shape {tuple(x.shape)}")
    T = x.shape[0]
    x2d = (x if x.dim() == 2 else x.reshape(T, -1)).contiguous()
    n = x2d.shape[1]
    if v0 is not None:
        if v0.numel() != n:
            raise ValueError(
                f"v0 has shape {tuple(v0.shape)}, expected {tuple(x.shape[1:])} (x.shape[1:])"
            )
        v0 = v0.reshape(n)
    if isinstance(k, torch.Tensor):
        if k.numel() != 1:
            raise ValueError(
                f"k must be a float or a one-element tensor, got shape {tuple(k.shape)}"
            )
    else:
        k = float(k)
    spikes, v = _function(backend).apply(x2d, v0, k, spec, bool(need_state))
    if x.dim() != 2:
        spikes = spikes.reshape(x.shape)
    if v is not None:
        v = v.reshape(x.shape[1:])
    return spikes, v
