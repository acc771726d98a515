"""Reference dynamics of the IF, LIF and PLIF neurons, and the one dispatch to fast paths.

The equations (shared with every kernel, see :mod:`spikeforge.ops.spec`)::

    H[t] = V[t-1] + k (X[t] - (V[t-1] - V_rest))     LIF / PLIF, decay_input=True
    H[t] = V[t-1] - k (V[t-1] - V_rest) + X[t]       LIF / PLIF, decay_input=False
    H[t] = V[t-1] + X[t]                             IF
    S[t] = Heaviside(H[t] - V_th)
    V[t] = H[t] (1 - S[t]) + V_reset S[t]            hard reset
    V[t] = H[t] - V_th S[t]                          soft reset
    V[t] = H[t]                                      no reset

``k = 1/tau`` for LIF (Gerstner et al., *Neuronal Dynamics*, discretised with
dt = 1 as in SpikingJelly) and ``k = sigmoid(w)`` for PLIF (Fang et al.,
"Incorporating Learnable Membrane Time Constant", ICCV 2021).

The reference is a plain loop over time written for clarity; autograd through
it (with the surrogate in :mod:`spikeforge.functional.surrogate`) is the
gradient oracle. Half-precision inputs are computed in float32 and the spikes
returned in the input dtype.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from spikeforge.functional.surrogate import Surrogate, get_surrogate
from spikeforge.ops import dispatch
from spikeforge.ops.spec import NeuronSpec

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
BACKENDS = ("auto", "reference", "cpu", "triton")


class MultiStepResult(NamedTuple):
    """Output of a multi-step neuron: spikes ``[T, ...]``, final membrane ``[...]``
    (``None`` when the caller said it does not need the state) and, when requested, the
    membrane after reset at every step ``[T, ...]`` (else ``None``)."""

    spikes: torch.Tensor
    v: torch.Tensor | None
    v_seq: torch.Tensor | None


def charge(v: torch.Tensor, x: torch.Tensor, k, spec: NeuronSpec) -> torch.Tensor:
    """Membrane before firing, ``H[t]`` from ``V[t-1]`` and ``X[t]`` (equations above)."""
    if spec.kind == "if":
        return v + x
    if spec.decay_input:
        return v + k * (x - (v - spec.v_rest))
    return v - k * (v - spec.v_rest) + x


def reset(h: torch.Tensor, s: torch.Tensor, spec: NeuronSpec) -> torch.Tensor:
    """Membrane after firing, ``V[t]`` from ``H[t]`` and ``S[t]`` (equations above)."""
    if spec.reset == "none":
        return h
    s_r = s.detach() if spec.detach_reset else s
    if spec.reset == "hard":
        return h * (1 - s_r) + spec.v_reset * s_r
    return h - spec.v_threshold * s_r


def neuron_step(
    x: torch.Tensor, v: torch.Tensor, k, spec: NeuronSpec, surrogate: Surrogate
) -> tuple[torch.Tensor, torch.Tensor]:
    """One time step: returns ``(S[t], V[t])`` given ``X[t]`` and ``V[t-1]``."""
    h = charge(v, x, k, spec)
    s = surrogate(h - spec.v_threshold)
    return s, reset(h, s, spec)


def multistep_reference(
    x: torch.Tensor,
    v0: torch.Tensor | None,
    k,
    spec: NeuronSpec,
    surrogate: Surrogate | None = None,
    record_membrane: bool = False,
) -> MultiStepResult:
    """The reference multi-step neuron: a loop of :func:`neuron_step` over ``x[0..T-1]``."""
    if surrogate is None:
        surrogate = get_surrogate(spec.surrogate, spec.alpha)
    compute_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    xc = x.to(compute_dtype)
    v = torch.full_like(xc[0], spec.v_rest) if v0 is None else v0.to(compute_dtype)
    spikes, v_seq = [], []
    for t in range(x.shape[0]):
        s, v = neuron_step(xc[t], v, k, spec, surrogate)
        spikes.append(s)
        if record_membrane:
            v_seq.append(v)
    s_all = torch.stack(spikes).to(x.dtype)
    return MultiStepResult(s_all, v, torch.stack(v_seq) if record_membrane else None)


def check_sequence_input(x: torch.Tensor, name: str = "x") -> None:
    """Raise a clear error unless ``x`` is a floating tensor shaped ``[T, B, ...]``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be a floating tensor (float16, bfloat16, float32 or float64), "
            f"got dtype {x.dtype}; cast spikes or events with .float()"
        )
    if x.dim() < 2:
        raise ValueError(
            f"{name} must be time-first [T, B, ...] with at least 2 dimensions, got shape "
            f"{tuple(x.shape)}; for a single time step use .step()"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} has T = 0 time steps (shape {tuple(x.shape)})")


def multistep_neuron(
    x: torch.Tensor,
    v0: torch.Tensor | None = None,
    k=None,
    spec: NeuronSpec | None = None,
    surrogate: Surrogate | None = None,
    backend: str = "auto",
    record_membrane: bool = False,
    need_state: bool = True,
) -> MultiStepResult:
    """Run a multi-step neuron over time-first ``x`` ``[T, ...]`` from membrane ``v0``.

    ``k`` is the leak factor (float, or a 0-d tensor for PLIF, which then gets a
    gradient); ``backend`` picks ``"reference"``, ``"cpu"`` (fused CPU loop),
    ``"triton"`` (CUDA) or ``"auto"`` (the fused path for the tensor's device
    when the surrogate is one the kernels implement, else the reference).
    Recording the membrane trace always uses the reference. Without ``need_state``
    the result's ``v`` is ``None`` and the fused kernels skip storing it (half a pass
    over ``[T, N]`` of a 16-bit input at T = 4).
    """
    spec = spec or NeuronSpec()
    check_sequence_input(x)
    if v0 is not None and v0.shape != x.shape[1:]:
        raise ValueError(
            f"initial membrane v0 has shape {tuple(v0.shape)}, expected {tuple(x.shape[1:])} "
            f"(x.shape[1:] for x of shape {tuple(x.shape)})"
        )
    if surrogate is None:
        surrogate = get_surrogate(spec.surrogate, spec.alpha)
    if k is None:
        k = 1.0
    chosen = resolve_backend(backend, x.device, surrogate)
    if chosen == "reference" or record_membrane:
        out = multistep_reference(x, v0, k, spec, surrogate, record_membrane)
        return out if need_state or record_membrane else out._replace(v=None)
    spikes, state = dispatch.multistep(
        chosen, x, None if v0 is None else (v0,), () if spec.kind == "if" else (k,), spec,
        need_state,
    )
    return MultiStepResult(spikes, None if state is None else state[0], None)


def resolve_backend(backend: str, device: torch.device, surrogate: Surrogate) -> str:
    """Resolve ``"auto"`` to a concrete backend; raise if an explicit one cannot run."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "reference":
        return backend
    if backend == "auto":
        if not surrogate.fused:
            return "reference"
        candidate = "triton" if device.type == "cuda" else "cpu"
        return candidate if dispatch.is_available(candidate, device) else "reference"
    if not surrogate.fused:
        raise ValueError(
            f"backend {backend!r} implements only the built-in surrogates; {surrogate!r} "
            "needs backend='reference'"
        )
    if not dispatch.is_available(backend, device):
        raise RuntimeError(dispatch.unavailable_reason(backend, device))
    return backend
