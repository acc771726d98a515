"""The generic neuron shell and the neuron registry.

A neuron type is one definition (one file, e.g. :mod:`spikeforge.neurons.alif`): its
state as a ``NamedTuple``, its pure single-step update with the equation in the
docstring, and a thin :class:`SpikingNeuron` subclass naming them and mapping its
parameters to the step's parameter tuple, registered with :func:`register_neuron`.
The shell owns everything else, once for every type (as Norse's ``SNNCell`` does):
the time loop (the reference of :mod:`spikeforge.functional.neuron`, derived from the
step), the choice of a fused kernel, state handling and the shared options.
"""

from __future__ import annotations

import inspect
import math
import typing

import torch
from torch import nn

from spikeforge.functional.neuron import (
    BACKENDS,
    LIFState,
    MultiStepResult,
    check_sequence_input,
    choose_backend,
    compute_dtype,
    lif_step,
    multistep_reference,
    register_reference,
    rest_state,
)
from spikeforge.functional.surrogate import Surrogate, get_surrogate
from spikeforge.ops import dispatch
from spikeforge.ops.spec import KERNEL_KINDS, RESET_KINDS, NeuronSpec

NEURONS: dict[str, type[SpikingNeuron]] = {}

# Keys of model config that every type may take; a type that names one differently
# (PLIF's init_tau) says so in its ``config_aliases``.
CONFIG_COMMON = ("tau", "v_threshold", "v_reset", "detach_reset", "surrogate", "backend")


class SpikingNeuron(nn.Module):
    """Common shell of every spiking neuron over time-first tensors.

    Multi-step ``forward(x)`` over ``x`` ``[T, B, ...]`` keeps no state between calls:
    each call starts from ``state`` (default: the type's rest state, ``v = V_rest``,
    other variables 0) and can return the final named state (``return_state=True``) and
    the membrane after reset at every step (``record_membrane=True``), as a
    :class:`~spikeforge.functional.neuron.MultiStepResult` ``(spikes, state, v_seq)``.
    ``step(x_t, state)`` runs one step for streaming use and returns
    ``(spikes, state)``. One-variable types also take a bare tensor as the state.

    Args:
        v_threshold: firing threshold ``V_th``; the neuron fires at ``H >= V_th`` like
            SpikingJelly (``fire_strict=True``: at ``H > V_th`` like snnTorch and Norse).
        v_reset: value of a hard reset; ``None`` selects a soft reset (subtract the
            threshold).
        decay_input: whether the leak also scales the input (see the type's equation).
        detach_reset: no gradient through the spike inside the reset.
        surrogate: surrogate-gradient name or :class:`~spikeforge.functional.Surrogate`.
        reset: ``"hard"``, ``"soft"`` or ``"none"`` (default from ``v_reset``).
        backend: ``"auto"`` (the fastest fused path that supports this type, its options,
            the input's dtype and device, else the reference), ``"reference"``, ``"cpu"``
            or ``"triton"`` (an error, at construction, when it cannot run this type).
        v_leak: leak target ``V_rest`` separate from ``v_reset`` (Norse's ``v_leak``);
            ``None``: ``v_reset`` for a hard reset, else 0.
        reset_delay: snnTorch 1.0's default: the reset lands one step late (see
            :mod:`spikeforge.functional.neuron`).
        fire_strict: fire at ``H > V_th`` instead of ``H >= V_th``.
        learn_threshold: make ``V_th`` a trained parameter (reference path only).
        channels: with ``learn_threshold``, one threshold per channel (dimension 1 of a
            step's ``[B, C, ...]`` input) instead of one per layer.
        v_min: membrane floor: after each step's reset ``V[t] = max(V[t], v_min)``
            (sinabs ``min_v_mem``, SynSense Speck's ``threshold_low``; Du et al.'s
            event-driven networks use -1 with ``V_th = 1``). ``None``: no floor. Must be
            below ``V_th`` and at or below the rest potential. Runs on the reference
            path only (no fused kernel implements it; ``backend="auto"`` falls back).
    """

    #: kernel kind of :mod:`spikeforge.ops.spec` this type's step implements (or None)
    kernel: str | None = "lif"
    #: the type's state tuple and pure step (see :mod:`spikeforge.functional.neuron`)
    State: type = LIFState
    step_fn = staticmethod(lif_step)
    #: registry name, set by :func:`register_neuron`
    type_name: str = ""
    #: model-config keys this type spells differently, e.g. ``{"tau": "init_tau"}``
    config_aliases: dict[str, str] = {}

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        decay_input: bool = True,
        detach_reset: bool = False,
        surrogate: str | Surrogate = "atan",
        reset: str | None = None,
        backend: str = "auto",
        *,
        v_leak: float | None = None,
        reset_delay: bool = False,
        fire_strict: bool = False,
        learn_threshold: bool = False,
        channels: int | None = None,
        v_min: float | None = None,
    ) -> None:
        super().__init__()
        name = self.type_name or type(self).__name__
        if reset is None:
            reset = "soft" if v_reset is None else "hard"
        if reset not in RESET_KINDS:
            raise ValueError(f"{name}: reset must be one of {RESET_KINDS}, got {reset!r}")
        if reset == "hard" and v_reset is None:
            raise ValueError("reset='hard' needs a v_reset value; v_reset=None means soft reset")
        for key, value in (("v_threshold", v_threshold), ("v_reset", v_reset),
                           ("v_leak", v_leak)):
            if value is not None and not math.isfinite(float(value)):
                raise ValueError(f"{name}: {key} must be a finite number, got {value}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if channels is not None and not (learn_threshold and int(channels) >= 1):
            raise ValueError(f"{name}: channels={channels!r} needs learn_threshold=True and "
                             "a positive count")
        self.surrogate = get_surrogate(surrogate)
        try:  # the spec checks v_min against the threshold and the rest potential
            self.spec = NeuronSpec(
                kind=self.kernel or name.lower(),
                v_threshold=float(v_threshold),
                v_reset=0.0 if v_reset is None else float(v_reset),
                reset=reset,
                detach_reset=bool(detach_reset),
                decay_input=bool(decay_input),
                surrogate=self.surrogate.name if self.surrogate.fused else "atan",
                alpha=self.surrogate.alpha,
                v_leak=None if v_leak is None else float(v_leak),
                reset_delay=bool(reset_delay),
                fire_strict=bool(fire_strict),
                v_min=v_min,
            )
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
        self.threshold = None
        if learn_threshold:
            shape = () if channels is None else (int(channels),)
            self.threshold = nn.Parameter(torch.full(shape, float(v_threshold)))
        self.backend = backend
        self._backend_cache: dict = {}

    def _check_backend(self) -> None:
        """Fail at construction, not at the first batch, when an explicit backend cannot
        run this type (asked for float32 on the backend's own device). Subclasses call it
        at the end of ``__init__``, once their parameters exist."""
        if self.backend not in ("cpu", "triton"):
            return
        device = torch.device("cpu")
        if self.backend == "triton" and not dispatch.triton_interpret():
            device = torch.device("cuda")
        reason = dispatch.unavailable_reason(self.backend, device)
        if reason is not None:
            raise RuntimeError(reason)
        choose_backend(self.backend, self.spec, self.surrogate, torch.float32, device,
                       self.params(), step=self.step_fn, theta=self.threshold,
                       name=self.type_name or type(self).__name__)

    # --- what a type defines -------------------------------------------------------
    def params(self) -> tuple:
        """The step's parameter tuple (kernel order, :data:`spikeforge.ops.spec.PARAM_NAMES`)."""
        return ()

    def leak(self):
        """The membrane leak factor ``k`` of the charge equation (1 for IF, no leak)."""
        return 1.0

    # --- the shared machinery -------------------------------------------------------
    @property
    def v_threshold(self) -> float:
        """The firing threshold ``V_th`` (its initial value when learnable)."""
        return self.spec.v_threshold

    @property
    def v_reset(self) -> float | None:
        """The hard-reset value, ``None`` for a soft or no reset."""
        return self.spec.v_reset if self.spec.reset == "hard" else None

    def _theta(self, like: torch.Tensor):
        """The learnable threshold shaped to broadcast over a step's input ``[B, C, ...]``."""
        th = self.threshold
        if th is None or th.dim() == 0:
            return th
        if like.dim() < 2 or like.shape[1] != th.shape[0]:
            raise ValueError(
                f"{self.type_name or type(self).__name__}: the learnable threshold has "
                f"{th.shape[0]} channels, but a step's input has shape {tuple(like.shape)} "
                "(channels are dimension 1 of [B, C, ...])"
            )
        return th.reshape(th.shape + (1,) * (like.dim() - 2))

    def _state(self, state, shape: torch.Size, where: str):
        """A user-given state as the type's named tuple (``None`` stays ``None``)."""
        if state is None:
            return None
        if isinstance(state, torch.Tensor):
            if len(self.State._fields) != 1:
                raise TypeError(
                    f"{where}: {type(self).__name__} has state {self.State.__name__}"
                    f"{self.State._fields}; pass that tuple, not a bare tensor"
                )
            state = (state,)
        if len(state) != len(self.State._fields):
            raise ValueError(f"{where}: {type(self).__name__} has state {self.State.__name__}"
                             f"{self.State._fields}, got {len(state)} value(s)")
        for field, s in zip(self.State._fields, state):
            if not isinstance(s, torch.Tensor) or s.shape != shape:
                got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                raise ValueError(f"{where}: state {field} has shape {got}, expected "
                                 f"{tuple(shape)}")
        return self.State(*state)

    def forward(
        self,
        x: torch.Tensor,
        state=None,
        return_state: bool = False,
        record_membrane: bool = False,
    ) -> torch.Tensor | MultiStepResult:
        """Spikes ``[T, B, ...]`` (``x``'s dtype) for input ``x`` ``[T, B, ...]``.

        ``state``: the initial named state (its tensors shaped ``x.shape[1:]``), a bare
        tensor for one-variable types, or ``None`` for the rest state. With
        ``return_state`` or ``record_membrane`` returns a
        :class:`~spikeforge.functional.MultiStepResult` ``(spikes, state, v_seq)``.
        """
        check_sequence_input(x)
        state = self._state(state, x.shape[1:], "forward()")
        params = self.params()
        theta = None if self.threshold is None else self._theta(x[0])
        need_state = return_state or record_membrane
        chosen = self._backend_for(x, params)
        if chosen == "reference" or record_membrane:
            out = multistep_reference(x, state, params, self.spec, self.surrogate,
                                      record_membrane, step=self.step_fn,
                                      state_type=self.State, theta=theta)
            if not need_state:
                return out.spikes
            return out
        spikes, final = dispatch.multistep(chosen, x, state, params, self.spec, need_state)
        if not need_state:
            return spikes
        return MultiStepResult(spikes, self.State(*final), None)

    def _backend_for(self, x: torch.Tensor, params: tuple) -> str:
        """:func:`~spikeforge.functional.neuron.choose_backend` for this input, kept per
        dtype, device type and parameter types (it is asked on every call, and the
        answer depends on nothing else: the spec and surrogate are fixed)."""
        key = (x.dtype, x.device.type, tuple(isinstance(p, torch.Tensor) for p in params))
        chosen = self._backend_cache.get(key)
        if chosen is None:
            chosen = choose_backend(self.backend, self.spec, self.surrogate, x.dtype,
                                    x.device, params, step=self.step_fn, theta=self.threshold,
                                    name=self.type_name or type(self).__name__)
            self._backend_cache[key] = chosen
        return chosen

    def step(self, x: torch.Tensor, state=None):
        """One time step: ``(S[t], state[t])`` from ``X[t]`` ``[B, ...]`` and
        ``state[t-1]`` (default: the rest state). Always the reference update."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"step() input must be a floating tensor, got {getattr(x, 'dtype', x)}")
        cdt = compute_dtype(x.dtype)
        state = self._state(state, x.shape, "step()")
        xc = x.to(cdt)
        if state is None:
            state = rest_state(self.State, xc, self.spec)
        else:
            state = self.State(*(s.to(cdt) for s in state))
        s, state = self.step_fn(xc, state, self.params(), self.spec, self.surrogate,
                                self._theta(x))
        return s.to(x.dtype), state

    def extra_repr(self) -> str:
        s = self.spec
        extra = "".join(
            f", {k}={v!r}" for k, v in (("v_leak", s.v_leak), ("reset_delay", s.reset_delay),
                                       ("fire_strict", s.fire_strict), ("v_min", s.v_min))
            if v not in (None, False)
        )
        if self.threshold is not None:
            extra += f", learn_threshold=True (shape {tuple(self.threshold.shape)})"
        return (
            f"v_threshold={s.v_threshold}, v_reset={self.v_reset}, reset={s.reset!r}, "
            f"decay_input={s.decay_input}, detach_reset={s.detach_reset}, "
            f"surrogate={self.surrogate!r}, backend={self.backend!r}{extra}"
        )


def register_neuron(name: str):
    """Class decorator: register a :class:`SpikingNeuron` subclass as neuron type ``name``.

    The type becomes reachable from :func:`get_neuron`, model configs
    (``model.neuron=name``, its own parameters under ``model.neuron_params``) and the
    CLI. When it names a kernel kind, its step becomes that kind's reference (the
    oracle the fused kernels are tested against).
    """

    def wrap(cls):
        if not (isinstance(cls, type) and issubclass(cls, SpikingNeuron)):
            raise TypeError(f"register_neuron({name!r}) decorates SpikingNeuron subclasses")
        if not (isinstance(cls.State, type) and issubclass(cls.State, tuple)
                and getattr(cls.State, "_fields", ())):
            raise TypeError(f"neuron type {name!r}: State must be a NamedTuple")
        if name in NEURONS and NEURONS[name] is not cls:
            raise ValueError(f"neuron type {name!r} is already registered ({NEURONS[name]})")
        if cls.kernel is not None:
            if cls.kernel not in KERNEL_KINDS:
                raise ValueError(f"neuron type {name!r}: kernel {cls.kernel!r} is not a kernel "
                                 f"kind {KERNEL_KINDS} (use None: reference only)")
            register_reference(cls.kernel, cls.State, cls.step_fn)
        cls.type_name = name
        NEURONS[name] = cls
        return cls

    return wrap


def get_neuron(name: str) -> type[SpikingNeuron]:
    """The registered neuron type ``name``; a clear error listing the known ones."""
    if name not in NEURONS:
        raise ValueError(f"unknown neuron type {name!r}; registered: {', '.join(NEURONS)}")
    return NEURONS[name]


def neuron_parameters(cls: type[SpikingNeuron]) -> dict[str, inspect.Parameter]:
    """The constructor parameters of ``cls`` a config sets under ``model.neuron_params``:
    all of them (a ``**options`` catch-all stands for the shell's keyword options) except
    ``self``, the surrogate and backend, and the keys the model config holds for every
    type (``tau``, ``v_threshold``, ...)."""
    common = set(CONFIG_COMMON) | set(cls.config_aliases.values())
    found = dict(inspect.signature(cls.__init__).parameters)
    if any(p.kind == p.VAR_KEYWORD for p in found.values()):
        for n, p in inspect.signature(SpikingNeuron.__init__).parameters.items():
            if p.kind == p.KEYWORD_ONLY:
                found.setdefault(n, p)
    return {
        n: p for n, p in found.items()
        if n != "self" and n not in common and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def neuron_parameter_types(cls: type[SpikingNeuron]) -> dict[str, object]:
    """The annotated type of each of :func:`neuron_parameters` (for config validation)."""
    hints = dict(typing.get_type_hints(SpikingNeuron.__init__))
    hints.update(typing.get_type_hints(cls.__init__))
    return {n: hints.get(n, object) for n in neuron_parameters(cls)}


def own_parameters(cls: type[SpikingNeuron]) -> dict[str, inspect.Parameter]:
    """The parameters ``cls`` adds beyond the shell's shared options (e.g. ALIF's
    ``tau_adapt`` and ``beta``): what ``spikeforge config`` shows for the type."""
    shared = set(inspect.signature(SpikingNeuron.__init__).parameters)
    return {n: p for n, p in neuron_parameters(cls).items() if n not in shared}


def config_kwargs(cls: type[SpikingNeuron], common: dict, params: dict) -> dict:
    """Constructor keyword arguments of ``cls`` from the model config's shared keys
    (``common``; a key the type does not take is dropped, e.g. IF's ``tau``) and its own
    ``params`` (already validated)."""
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {}
    for key, value in common.items():
        key = cls.config_aliases.get(key, key)
        if key in accepted:
            kwargs[key] = value
    kwargs.update(params)
    return kwargs


def time_constant(owner: str, key: str, value) -> float:
    """``value`` as a float time constant in steps (``k = 1/tau`` per step, so
    ``tau >= 1`` keeps ``0 < k <= 1``); a ``ValueError`` naming ``owner`` and ``key``
    unless it is a finite number >= 1."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 1.0):
        raise ValueError(f"{owner}: {key} must be a number >= 1, got {value!r}")
    return float(value)
