"""Reference neuron dynamics: the shared charge/fire/reset pieces, the IF and LIF steps,
and the one multi-step loop every neuron type's reference is derived from.

The equations (shared with every kernel, see :mod:`spikeforge.ops.spec`; ``dt = 1``)::

    H[t] = V[t-1] + k (X[t] - (V[t-1] - V_rest))     LIF family, decay_input=True
    H[t] = V[t-1] - k (V[t-1] - V_rest) + X[t]       LIF family, decay_input=False
    H[t] = V[t-1] + X[t]                             IF
    S[t] = Heaviside(H[t] - theta[t])                >= by default, > with fire_strict
    V[t] = H[t] (1 - S[t]) + V_reset S[t]            hard reset
    V[t] = H[t] - theta[t] S[t]                      soft reset
    V[t] = H[t]                                      no reset
    V[t] = max(V[t], V_min)                          membrane floor (v_min), when set

with ``theta[t] = V_th`` (a type may raise it: ALIF), ``V_rest = v_leak`` when set, else
``V_reset`` for a hard reset and 0 otherwise. ``k = 1/tau`` for LIF (Gerstner et al.,
*Neuronal Dynamics*, discretised with dt = 1 as in SpikingJelly) and ``k = sigmoid(w)``
for PLIF (Fang et al., "Incorporating Learnable Membrane Time Constant", ICCV 2021).

The membrane floor ``v_min`` (sinabs ``min_v_mem``; SynSense Speck's ``threshold_low``)
clips the membrane after the reset of every step, as sinabs does
(``sinabs/layers/functional/lif.py``: ``relu(v - min_v_mem) + min_v_mem`` after
``reset_fn``); below the floor the clipped membrane passes no gradient. Du et al.'s
event-driven networks (``train-event-driven/models/snn_speck.py`` of
``brain-intelligence-lab/temporal_flexibility_in_SNN``) use ``min_v_mem=-1``.

Ties: we fire at ``H >= V_th`` like SpikingJelly; snnTorch and Norse fire at ``H > V_th``,
which ``fire_strict`` selects.

``reset_delay`` (snnTorch 1.0's default ``Leaky``/``Synaptic``): the state holds the
membrane before any reset, and the reset of step ``t-1`` lands at step ``t``, from
``R[t-1] = Heaviside(V[t-1] - V_th)`` (recomputed from the state)::

    H[t] = charge(V[t-1], X[t]) - V_th R[t-1]                  soft: undecayed subtraction
    H[t] = charge(V[t-1] (1 - R[t-1]) + V_reset R[t-1], X[t])  hard: reset, then decay
    S[t] = Heaviside(H[t] - V_th),   V[t] = H[t]

so for snnTorch's ``Leaky(beta)`` (``decay_input=False``, ``k = 1 - beta``) the soft form
is ``mem[t] = beta mem[t-1] + x[t] - thr S[t-1]``. ``R`` is detached when
``detach_reset`` (snnTorch always detaches it).

A neuron type (see :mod:`spikeforge.neurons`) is a named state tuple plus a pure
``step(x, state, params, spec, surrogate, theta=None) -> (S[t], new_state)``;
:func:`multistep_reference` is the loop of that step over time and is the oracle the
fused kernels are tested against. Half-precision inputs are computed in float32; the
spikes come back in the input dtype, the state in the compute dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from spikeforge.functional.surrogate import Surrogate, get_surrogate
from spikeforge.ops import dispatch
from spikeforge.ops.spec import NeuronSpec

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class LIFState(NamedTuple):
    """State of the one-variable neurons (IF, LIF, PLIF): membrane ``v``."""

    v: torch.Tensor


class MultiStepResult(NamedTuple):
    """Output of a multi-step neuron: spikes ``[T, ...]``, the final named state (e.g.
    :class:`LIFState`; ``None`` when the caller said it does not need it) and, when
    requested, the membrane after reset at every step ``[T, ...]`` (else ``None``).
    ``.v`` is the final membrane (``state.v``)."""

    spikes: torch.Tensor
    state: tuple | torch.Tensor | None
    v_seq: torch.Tensor | None

    @property
    def v(self) -> torch.Tensor | None:
        """The final membrane potential, ``state.v`` (``None`` without a state)."""
        st = self.state
        return st if st is None or isinstance(st, torch.Tensor) else st.v


def charge(v: torch.Tensor, x: torch.Tensor, k, spec: NeuronSpec) -> torch.Tensor:
    """Membrane before firing, ``H[t]`` from ``V[t-1]`` and ``X[t]``; ``k=None`` is IF
    (no leak), otherwise the LIF charge with leak ``k`` towards ``spec.v_rest``."""
    if k is None:
        return v + x
    if spec.decay_input:
        return v + k * (x - (v - spec.v_rest))
    return v - k * (v - spec.v_rest) + x


def fire(h: torch.Tensor, theta, spec: NeuronSpec, surrogate: Surrogate) -> torch.Tensor:
    """``S[t] = Heaviside(H[t] - theta)`` (``>`` with ``spec.fire_strict``, else ``>=``),
    with the surrogate's derivative in backward."""
    if spec.fire_strict:
        return surrogate.spike(h - theta, strict=True)
    return surrogate(h - theta)


def membrane_floor(v: torch.Tensor, spec: NeuronSpec) -> torch.Tensor:
    """``max(V, V_min)`` with the floor ``spec.v_min`` (``None``: ``V`` unchanged). The
    gradient is 1 above the floor and 0 where it clips, as sinabs' ``relu(v - min) + min``."""
    v_min = getattr(spec, "v_min", None)
    return v if v_min is None else torch.clamp(v, min=v_min)


def reset(h: torch.Tensor, s: torch.Tensor, spec: NeuronSpec, theta=None) -> torch.Tensor:
    """Membrane after firing, ``V[t]`` from ``H[t]`` and ``S[t]``; the soft reset subtracts
    ``theta`` (default ``spec.v_threshold``); then the membrane floor ``spec.v_min``
    (:func:`membrane_floor`), when set."""
    if spec.reset == "none":
        return membrane_floor(h, spec)
    s_r = s.detach() if spec.detach_reset else s
    if spec.reset == "hard":
        return membrane_floor(h * (1 - s_r) + spec.v_reset * s_r, spec)
    return membrane_floor(h - (spec.v_threshold if theta is None else theta) * s_r, spec)


def integrate_and_fire(
    v: torch.Tensor, x: torch.Tensor, k, spec: NeuronSpec, surrogate: Surrogate, theta=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Charge, fire and reset once: ``(S[t], V[t])`` from ``V[t-1]`` and the drive ``X[t]``
    (module equations; ``k=None`` is IF). Honours ``reset_delay`` (the reset of the
    previous step, recomputed from ``V[t-1]``, lands now and ``V[t] = H[t]``)."""
    theta = spec.v_threshold if theta is None else theta
    if not spec.reset_delay:
        h = charge(v, x, k, spec)
        s = fire(h, theta, spec, surrogate)
        return s, reset(h, s, spec, theta)
    r = fire(v, theta, spec, surrogate)
    if spec.detach_reset:
        r = r.detach()
    if spec.reset == "hard":
        h = charge(v * (1 - r) + spec.v_reset * r, x, k, spec)
    elif spec.reset == "soft":
        h = charge(v, x, k, spec) - theta * r
    else:
        h = charge(v, x, k, spec)
    return fire(h, theta, spec, surrogate), membrane_floor(h, spec)


def if_step(x, state: LIFState, params: tuple, spec: NeuronSpec, surrogate: Surrogate,
            theta=None) -> tuple[torch.Tensor, LIFState]:
    """Integrate-and-fire step, params ``()``: ``H[t] = V[t-1] + X[t]``, then fire and
    reset (module equations)."""
    s, v = integrate_and_fire(state.v, x, None, spec, surrogate, theta)
    return s, LIFState(v)


def lif_step(x, state: LIFState, params: tuple, spec: NeuronSpec, surrogate: Surrogate,
             theta=None) -> tuple[torch.Tensor, LIFState]:
    """Leaky integrate-and-fire step, params ``(k,)`` (``k = 1/tau``, or PLIF's
    ``sigmoid(w)`` as a 0-d tensor)::

        H[t] = V[t-1] + k (X[t] - (V[t-1] - V_rest))   (decay_input; else V - k(V - V_rest) + X)
        S[t] = Heaviside(H[t] - V_th),   V[t] = reset(H[t], S[t])
    """
    (k,) = params
    s, v = integrate_and_fire(state.v, x, k, spec, surrogate, theta)
    return s, LIFState(v)


# Kernel kind -> (state type, step): the reference each fused kind is tested against.
# The neuron registry (spikeforge.neurons.register_neuron) adds the kinds of the types it
# registers; IF and LIF live here because every other type builds on their pieces.
KERNEL_REFERENCES: dict[str, tuple[type, Callable]] = {
    "if": (LIFState, if_step),
    "lif": (LIFState, lif_step),
}


def register_reference(kind: str, state_type: type, step: Callable) -> None:
    """Make ``step`` (with its state tuple type) the reference of kernel kind ``kind``."""
    known = KERNEL_REFERENCES.get(kind)
    if known is not None and known != (state_type, step):
        raise ValueError(f"kernel kind {kind!r} already has a reference step {known[1]}")
    KERNEL_REFERENCES[kind] = (state_type, step)


def rest_state(state_type: type, like: torch.Tensor, spec: NeuronSpec) -> tuple:
    """The rest state shaped like ``like``: ``v = V_rest``, every other variable 0."""
    return state_type(*(
        torch.full_like(like, spec.v_rest if name == "v" else 0.0)
        for name in state_type._fields
    ))


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the dynamics run in: float64 for float64 input, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def multistep_reference(
    x: torch.Tensor,
    state0=None,
    params=(),
    spec: NeuronSpec | None = None,
    surrogate: Surrogate | None = None,
    record_membrane: bool = False,
    *,
    step: Callable | None = None,
    state_type: type | None = None,
    theta=None,
) -> MultiStepResult:
    """The reference multi-step neuron: ``step`` applied to ``x[0], ..., x[T-1]``.

    Args:
        x: ``[T, ...]`` floating input.
        state0: the initial state (a tuple in the type's order, a bare tensor for
            one-variable types, or ``None`` for the rest state).
        params: the type's parameter tuple (kernel order, see :mod:`spikeforge.ops.spec`).
            The older one-variable form, a bare ``k`` (read as ``(k,)`` for kind
            ``"lif"``, ignored for ``"if"``), also returns the older result: the final
            membrane tensor in place of the named state.
        spec: the options; ``surrogate`` defaults to ``spec.surrogate``.
        step / state_type: the type's step and state; default: the reference of kernel
            kind ``spec.kind`` (:data:`KERNEL_REFERENCES`).
        theta: threshold override (a tensor broadcasting against ``x[t]``: a learnable
            threshold), default ``spec.v_threshold``.

    Returns:
        :class:`MultiStepResult` ``(spikes in x's dtype, final state, membrane trace)``.
    """
    spec = spec or NeuronSpec()
    if step is None:
        if spec.kind not in KERNEL_REFERENCES:
            raise ValueError(
                f"no reference step for neuron kind {spec.kind!r} (known: "
                f"{sorted(KERNEL_REFERENCES)}; import spikeforge.neurons to register the "
                "built-in types, or pass step= and state_type=)"
            )
        state_type, step = KERNEL_REFERENCES[spec.kind]
    legacy = not isinstance(params, tuple)
    if legacy:
        params = () if spec.kind == "if" else (params,)
    if surrogate is None:
        surrogate = get_surrogate(spec.surrogate, spec.alpha)
    cdt = compute_dtype(x.dtype)
    xc = x.to(cdt)
    if state0 is None:
        state = rest_state(state_type, xc[0], spec)
    else:
        if isinstance(state0, torch.Tensor):
            state0 = (state0,)
        state = state_type(*(s.to(cdt) for s in state0))
    spikes, v_seq = [], []
    for t in range(x.shape[0]):
        s, state = step(xc[t], state, params, spec, surrogate, theta)
        spikes.append(s)
        if record_membrane:
            v_seq.append(state.v)
    s_all = torch.stack(spikes).to(x.dtype)
    if legacy and len(state) == 1:
        state = state.v
    return MultiStepResult(s_all, state, torch.stack(v_seq) if record_membrane else None)


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


BACKENDS = ("auto", "reference", "cpu", "triton")


def unsupported_reason(
    backend: str,
    spec: NeuronSpec,
    surrogate: Surrogate,
    dtype: torch.dtype,
    device: torch.device,
    params: tuple,
    *,
    step: Callable | None = None,
    theta=None,
) -> str | None:
    """Why fused ``backend`` cannot run this neuron, or ``None`` when it can.

    A neuron reaches a kernel only when its step *is* the reference of a kernel kind
    (a type with its own step never does, whatever its ``spec.kind`` says), its threshold
    is a number, its surrogate is a built-in one and the backend's own declaration
    (:func:`spikeforge.ops.dispatch.unsupported`) accepts the kind, options, dtype,
    device and parameter types.
    """
    known = KERNEL_REFERENCES.get(spec.kind)
    if step is not None and (known is None or known[1] is not step):
        return f"backend {backend!r} does not run neuron kind {spec.kind!r} (no fused kernel)"
    if theta is not None:
        return f"backend {backend!r} does not run a learnable (tensor) threshold"
    if not surrogate.fused:
        return (
            f"backend {backend!r} implements only the built-in surrogates; {surrogate!r} "
            "needs backend='reference'"
        )
    return dispatch.unsupported(backend, spec, dtype, device, params)


def choose_backend(
    backend: str,
    spec: NeuronSpec,
    surrogate: Surrogate,
    dtype: torch.dtype,
    device: torch.device,
    params: tuple,
    *,
    step: Callable | None = None,
    theta=None,
    name: str | None = None,
) -> str:
    """The backend that runs this neuron: ``"reference"`` as asked; for ``"auto"`` the
    fused path of the tensor's device (Triton on CUDA, numba on CPU) when it supports the
    type, options, dtype and device, else the reference; an explicit ``"cpu"`` or
    ``"triton"`` that cannot run it is a ``ValueError`` naming the neuron type and the
    reason."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "reference":
        return backend
    candidate = ("triton" if device.type == "cuda" else "cpu") if backend == "auto" else backend
    reason = unsupported_reason(
        candidate, spec, surrogate, dtype, device, params, step=step, theta=theta
    )
    if reason is None:
        return candidate
    if backend == "auto":
        return "reference"
    raise ValueError(f"neuron type {name or spec.kind!r} cannot run on backend {backend!r}: "
                     f"{reason}")


def multistep_neuron(
    x: torch.Tensor,
    state0=None,
    params=(),
    spec: NeuronSpec | None = None,
    surrogate: Surrogate | None = None,
    backend: str = "auto",
    record_membrane: bool = False,
    need_state: bool = True,
    *,
    step: Callable | None = None,
    state_type: type | None = None,
    theta=None,
    name: str | None = None,
    k=None,
) -> MultiStepResult:
    """Run a multi-step neuron over time-first ``x`` ``[T, ...]`` on the backend
    :func:`choose_backend` picks: the fused kernel of ``spec.kind`` or the reference
    (:func:`multistep_reference`, same arguments). Recording the membrane trace always
    uses the reference. Without ``need_state`` the result's state is ``None`` and the
    fused kernels skip storing it. ``k`` is the older spelling of ``params=(k,)``.
    """
    spec = spec or NeuronSpec()
    check_sequence_input(x)
    if k is not None:
        params = (k,)
    if not isinstance(params, tuple):
        params = () if spec.kind == "if" else (params,)
    if surrogate is None:
        surrogate = get_surrogate(spec.surrogate, spec.alpha)
    if state0 is not None:
        if isinstance(state0, torch.Tensor):
            state0 = (state0,)
        for i, s0 in enumerate(state0):
            if s0.shape != x.shape[1:]:
                field = state_type._fields[i] if state_type is not None else f"state[{i}]"
                raise ValueError(
                    f"initial state {field} has shape {tuple(s0.shape)}, expected "
                    f"{tuple(x.shape[1:])} (x.shape[1:] for x of shape {tuple(x.shape)})"
                )
    chosen = choose_backend(backend, spec, surrogate, x.dtype, x.device, params,
                            step=step, theta=theta, name=name)
    if chosen == "reference" or record_membrane:
        out = multistep_reference(x, state0, params, spec, surrogate, record_membrane,
                                  step=step, state_type=state_type, theta=theta)
        return out if need_state or record_membrane else out._replace(state=None)
    if state_type is None:
        state_type = KERNEL_REFERENCES[spec.kind][0]
    spikes, final = dispatch.multistep(chosen, x, None if state0 is None else tuple(state0),
                                       params, spec, need_state)
    return MultiStepResult(spikes, None if final is None else state_type(*final), None)
