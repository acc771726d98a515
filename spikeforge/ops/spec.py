"""The switches every neuron path reads: one definition shared by the reference
and all kernels.

A multi-step neuron over ``[T, N]`` computes, per step ``t`` (``dt = 1``)::

    H[t] = V[t-1] + k (X[t] - (V[t-1] - V_rest))      LIF family, decay_input=True
    H[t] = V[t-1] - k (V[t-1] - V_rest) + X[t]       LIF family, decay_input=False
    H[t] = V[t-1] + X[t]                             IF
    S[t] = Heaviside(H[t] - theta[t])                (>= by default, > with fire_strict;
                                                      surrogate derivative in backward)
    V[t] = H[t] (1 - S[t]) + V_reset S[t]            reset=hard
    V[t] = H[t] - theta[t] S[t]                      reset=soft
    V[t] = H[t]                                      reset=none
    V[t] = max(V[t], V_min)                          with a membrane floor v_min

with ``theta[t] = V_th`` and ``V_rest = v_leak`` when set, else ``V_reset`` for a hard
reset and 0 otherwise. With ``detach_reset`` the ``S[t]`` inside the reset carries no
gradient. The kernel kinds (:data:`KERNEL_KINDS`) add state to that core:

- ``"if"``: state ``(V,)``, params ``()``.
- ``"lif"``: state ``(V,)``, params ``(k,)``; ``k = 1/tau`` (LIF) or ``sigmoid(w)`` (PLIF,
  Fang et al., ICCV 2021), a float or a 0-d tensor that receives a gradient.
- ``"alif"`` (Bellec et al., "Long short-term memory and learning-to-learn in networks
  of spiking neurons", NeurIPS 2018): state ``(V, A)``, params ``(k, rho, beta)``::

      theta[t] = V_th + beta A[t-1],   A[t] = rho A[t-1] + S[t]

  (the soft reset subtracts ``theta[t]``); ``rho = exp(-1/tau_adapt)``. Bellec's code
  scales the increment by ``1 - rho``: the same dynamics with ``beta_ours = beta (1 -
  rho)``.
- ``"cubalif"`` (current-based LIF): state ``(I, V)``, params ``(k_syn, k_mem)``::

      I[t] = I[t-1] - k_syn I[t-1] + X[t]

  and the LIF charge with ``X[t]`` replaced by ``I[t]`` and ``k = k_mem``.

The rest state (what ``state0=None`` means): ``V = V_rest``, ``A = 0``, ``I = 0``.

Kernels read options through the named constants :class:`Reset` and
:class:`SurrogateId` (``IntEnum``: numba treats their members as compile-time
integers, and Triton accepts their ``int`` values as ``constexpr``), never through
positions in a tuple of names.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from enum import IntEnum


class Reset(IntEnum):
    """Reset rule after a spike (see the module docstring)."""

    HARD = 0
    SOFT = 1
    NONE = 2


class SurrogateId(IntEnum):
    """Surrogate gradients the kernels implement; each formula is defined in
    :mod:`spikeforge.functional.surrogate` and, for the kernels, once in
    :mod:`spikeforge.ops.cpu.surrogates` (tested against it)."""

    SIGMOID = 0
    ATAN = 1
    FAST_SIGMOID = 2
    RECTANGLE = 3
    TRIANGLE = 4


# Names used in configs and by NeuronSpec, in enum order.
RESET_KINDS = tuple(r.name.lower() for r in Reset)
SURROGATE_NAMES = tuple(s.name.lower() for s in SurrogateId)

# Kernel kinds: the dynamics form a fused kernel may implement. A neuron type names one
# of these (or none: it then always runs the reference). Per kind, the names of its state
# and of its parameters, in the order of dispatch.multistep's tuples.
KERNEL_KINDS = ("if", "lif", "alif", "cubalif")
NEURON_KINDS = KERNEL_KINDS  # the old name
STATE_NAMES: dict[str, tuple[str, ...]] = {
    "if": ("v",),
    "lif": ("v",),
    "alif": ("v", "a"),
    "cubalif": ("i", "v"),
}
PARAM_NAMES: dict[str, tuple[str, ...]] = {
    "if": (),
    "lif": ("k",),
    "alif": ("k", "rho", "beta"),
    "cubalif": ("k_syn", "k_mem"),
}


@dataclass(frozen=True)
class NeuronSpec:
    """Static options of a multi-step neuron (see the module docstring).

    Args:
        kind: the kernel kind, one of :data:`KERNEL_KINDS`, or another name for a neuron
            type that only the reference runs (every backend then refuses it).
        v_threshold: firing threshold ``V_th``.
        v_reset: value a hard reset sets (ignored by the soft and no resets).
        reset: ``"hard"``, ``"soft"`` or ``"none"`` (or a :class:`Reset`).
        detach_reset: no gradient through ``S`` in the reset (and, for ``"alif"``,
            through the adaptation ``A``).
        decay_input: whether the leak factor also scales the input.
        surrogate: surrogate-gradient name (:data:`SURROGATE_NAMES`) or a
            :class:`SurrogateId`; ``alpha`` its width/sharpness parameter.
        v_leak: leak target ``V_rest``; ``None`` keeps the rule ``V_reset`` for a hard
            reset, else 0 (Norse's ``v_leak`` separate from ``v_reset``).
        reset_delay: snnTorch's default ``Leaky``: the soft reset is subtracted one step
            late and undecayed, ``V[t] = beta V[t-1] + X[t] - V_th S[t-1]``.
        fire_strict: spike when ``H > V_th`` (snnTorch, Norse) instead of ``H >= V_th``
            (SpikingJelly, the default).
        v_min: membrane floor ``V_min``: after the reset of every step the membrane is
            clipped to ``V[t] = max(V[t], V_min)`` (sinabs ``min_v_mem``, applied after
            the spike and reset of each step in ``sinabs/layers/functional/lif.py``;
            SynSense Speck's ``threshold_low``). ``None``: no floor. It must lie below
            ``V_th`` and at or below ``V_rest`` (a neuron at rest is above its floor;
            the event-driven grid mode relies on it). The CPU kernel runs it for IF/LIF
            (:data:`spikeforge.ops.cpu.support.SUPPORT`); for Triton and the other kinds
            ``"auto"`` runs the reference.
    """

    kind: str = "lif"
    v_threshold: float = 1.0
    v_reset: float = 0.0
    reset: str = "hard"
    detach_reset: bool = False
    decay_input: bool = True
    surrogate: str = "atan"
    alpha: float = 2.0
    v_leak: float | None = None
    reset_delay: bool = False
    fire_strict: bool = False
    v_min: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.reset, Reset):
            object.__setattr__(self, "reset", self.reset.name.lower())
        if isinstance(self.surrogate, SurrogateId):
            object.__setattr__(self, "surrogate", self.surrogate.name.lower())
        if not isinstance(self.kind, str) or not self.kind:
            raise ValueError(f"NeuronSpec.kind must be a non-empty name, got {self.kind!r}")
        if self.reset not in RESET_KINDS:
            raise ValueError(f"NeuronSpec.reset must be one of {RESET_KINDS}, got {self.reset!r}")
        if self.surrogate not in SURROGATE_NAMES:
            raise ValueError(
                f"NeuronSpec.surrogate must be one of {SURROGATE_NAMES}, got {self.surrogate!r}"
            )
        if self.v_leak is not None and not math.isfinite(float(self.v_leak)):
            raise ValueError(f"NeuronSpec.v_leak must be a finite number or None, got "
                             f"{self.v_leak!r}")
        if self.v_min is not None:
            if isinstance(self.v_min, bool) or not isinstance(self.v_min, numbers.Real) \
                    or not math.isfinite(float(self.v_min)):
                raise ValueError(f"v_min (membrane floor) must be a finite number or None, "
                                 f"got {self.v_min!r}")
            object.__setattr__(self, "v_min", float(self.v_min))
            if not self.v_min < self.v_threshold:
                raise ValueError(f"v_min (membrane floor) {self.v_min} must be below the "
                                 f"threshold v_threshold={self.v_threshold}")
            if self.v_min > self.v_rest:
                raise ValueError(f"v_min (membrane floor) {self.v_min} must be at or below "
                                 f"the rest potential {self.v_rest} (v_leak, else v_reset for "
                                 "a hard reset, else 0): a neuron at rest sits above its floor")

    @property
    def v_rest(self) -> float:
        """Potential the leak pulls towards and the rest value of ``V``: ``v_leak`` when
        set, else ``v_reset`` for a hard reset, else 0."""
        if self.v_leak is not None:
            return float(self.v_leak)
        return self.v_reset if self.reset == "hard" else 0.0

    @property
    def reset_code(self) -> Reset:
        """The reset rule as a :class:`Reset` member."""
        return Reset[self.reset.upper()]

    @property
    def surrogate_code(self) -> SurrogateId:
        """The surrogate as a :class:`SurrogateId` member."""
        return SurrogateId[self.surrogate.upper()]

    @property
    def reset_id(self) -> int:
        """``int(reset_code)`` (a plain int for kernels' compile-time arguments)."""
        return int(self.reset_code)

    @property
    def surrogate_id(self) -> int:
        """``int(surrogate_code)``."""
        return int(self.surrogate_code)

    @property
    def state_names(self) -> tuple[str, ...]:
        """Names of the state tensors of this kind, in tuple order (``("v",)`` for a kind
        that is not a kernel kind)."""
        return STATE_NAMES.get(self.kind, ("v",))

    def rest_state(self) -> tuple[float, ...]:
        """The rest value of each state tensor, in :attr:`state_names` order."""
        return tuple(self.v_rest if n == "v" else 0.0 for n in self.state_names)
