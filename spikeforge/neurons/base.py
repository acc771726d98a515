"""Stateless multi-step spiking neurons as ``nn.Module`` (thin shells over functional/)."""

from __future__ import annotations

import math

import torch
from torch import nn

from spikeforge.functional.neuron import (
    MultiStepResult,
    check_sequence_input,
    multistep_neuron,
    neuron_step,
    resolve_backend,
)
from spikeforge.functional.surrogate import Surrogate, get_surrogate
from spikeforge.ops.spec import NeuronSpec


class SpikingNeuron(nn.Module):
    """Common shell of IF / LIF / PLIF.

    Multi-step ``forward(x)`` over time-first ``x`` ``[T, B, ...]`` keeps no
    state between calls: each call starts from ``v0`` (default zeros) and can
    return the final membrane (``return_state=True``) and the membrane trace
    after reset (``record_membrane=True``). ``step(x_t, v)`` runs one step for
    streaming use and returns ``(spikes, v)``.

    ``v_reset=None`` selects a soft reset (subtract ``v_threshold``); ``reset``
    may name ``"hard"``, ``"soft"`` or ``"none"`` explicitly. ``backend`` picks
    the kernel (``"auto"``, ``"reference"``, ``"cpu"``, ``"triton"``); an explicit
    backend that cannot run the chosen surrogate is an error here, at
    construction.
    """

    kind = "lif"

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        decay_input: bool = True,
        detach_reset: bool = False,
        surrogate: str | Surrogate = "atan",
        reset: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if reset is None:
            reset = "soft" if v_reset is None else "hard"
        if reset == "hard" and v_reset is None:
            raise ValueError("reset='hard' needs a v_reset value; v_reset=None means soft reset")
        for name, value in (("v_threshold", v_threshold), ("v_reset", v_reset)):
            if value is not None and not math.isfinite(float(value)):
                raise ValueError(f"{name} must be a finite number, got {value}")
        self.surrogate = get_surrogate(surrogate)
        self.spec = NeuronSpec(
            kind=self.kind,
            v_threshold=float(v_threshold),
            v_reset=0.0 if v_reset is None else float(v_reset),
            reset=reset,
            detach_reset=bool(detach_reset),
            decay_input=bool(decay_input),
            surrogate=self.surrogate.name if self.surrogate.fused else "atan",
            alpha=self.surrogate.alpha,
        )
        # Fail now, not at the first batch, when an explicit backend cannot run.
        if backend in ("cpu", "triton"):
            device = torch.device("cuda" if backend == "triton" else "cpu")
            resolve_backend(backend, device, self.surrogate)
        elif backend not in ("auto", "reference"):
            resolve_backend(backend, torch.device("cpu"), self.surrogate)
        self.backend = backend

    @property
    def v_threshold(self) -> float:
        return self.spec.v_threshold

    @property
    def v_reset(self) -> float | None:
        return self.spec.v_reset if self.spec.reset == "hard" else None

    def leak(self):
        """The leak factor ``k`` of the update equation (1 for IF)."""
        return 1.0

    def forward(
        self,
        x: torch.Tensor,
        v0: torch.Tensor | None = None,
        return_state: bool = False,
        record_membrane: bool = False,
    ) -> torch.Tensor | MultiStepResult:
        """Spikes ``[T, B, ...]`` (same dtype as ``x``) for input ``x`` ``[T, B, ...]``.

        With ``return_state`` or ``record_membrane`` returns a
        :class:`~spikeforge.functional.MultiStepResult` ``(spikes, v, v_seq)``.
        """
        out = multistep_neuron(
            x, v0, self.leak(), self.spec, self.surrogate, self.backend, record_membrane,
            need_state=return_state or record_membrane,
        )
        return out if (return_state or record_membrane) else out.spikes

    def step(
        self, x: torch.Tensor, v: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step: ``(S[t], V[t])`` from ``X[t]`` ``[B, ...]`` and ``V[t-1]``."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"step() input must be a floating tensor, got {getattr(x, 'dtype', x)}")
        if v is not None and v.shape != x.shape:
            raise ValueError(f"step(): v has shape {tuple(v.shape)}, x has {tuple(x.shape)}")
        compute = torch.float64 if x.dtype == torch.float64 else torch.float32
        v = torch.zeros(x.shape, dtype=compute, device=x.device) if v is None else v.to(compute)
        s, v = neuron_step(x.to(compute), v, self.leak(), self.spec, self.surrogate)
        return s.to(x.dtype), v

    def extra_repr(self) -> str:
        s = self.spec
        return (
            f"v_threshold={s.v_threshold}, v_reset={self.v_reset}, reset={s.reset!r}, "
            f"decay_input={s.decay_input}, detach_reset={s.detach_reset}, "
            f"surrogate={self.surrogate!r}, backend={self.backend!r}"
        )


class IF(SpikingNeuron):
    """Integrate-and-fire: ``H[t] = V[t-1] + X[t]``, spike when ``H[t] >= V_th``, then reset."""

    kind = "if"

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        detach_reset: bool = False,
        surrogate: str | Surrogate = "atan",
        reset: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(v_threshold, v_reset, True, detach_reset, surrogate, reset, backend)


class LIF(SpikingNeuron):
    """Leaky integrate-and-fire with time constant ``tau`` (``k = 1/tau``)::

        H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau     decay_input=True
        H[t] = V[t-1] - (V[t-1] - V_reset) / tau + X[t]       decay_input=False

    then ``S[t] = Heaviside(H[t] - V_th)`` and the reset (hard, soft or none).
    """

    kind = "lif"

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        decay_input: bool = True,
        detach_reset: bool = False,
        surrogate: str | Surrogate = "atan",
        reset: str | None = None,
        backend: str = "auto",
    ) -> None:
        if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau >= 1.0):
            raise ValueError(f"LIF: tau must be a number >= 1, got {tau!r}")
        super().__init__(v_threshold, v_reset, decay_input, detach_reset, surrogate, reset, backend)
        self.tau = float(tau)

    def leak(self):
        return 1.0 / self.tau

    def extra_repr(self) -> str:
        return f"tau={self.tau}, " + super().extra_repr()


class PLIF(SpikingNeuron):
    """Parametric LIF (Fang et al., ICCV 2021): the LIF update with a learnable leak
    ``k = sigmoid(w)``, ``w`` initialised to ``-log(init_tau - 1)`` so that
    ``1/k = init_tau`` at the start. One ``w`` per layer, trained with the weights.
    """

    kind = "lif"

    def __init__(
        self,
        init_tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        decay_input: bool = True,
        detach_reset: bool = False,
        surrogate: str | Surrogate = "atan",
        reset: str | None = None,
        backend: str = "auto",
    ) -> None:
        if not (isinstance(init_tau, (int, float)) and init_tau > 1.0):
            raise ValueError(f"PLIF: init_tau must be a number > 1, got {init_tau!r}")
        super().__init__(v_threshold, v_reset, decay_input, detach_reset, surrogate, reset, backend)
        self.w = nn.Parameter(torch.tensor(-math.log(init_tau - 1.0)))

    def leak(self):
        return torch.sigmoid(self.w)

    @property
    def tau(self) -> float:
        """Current time constant ``1 / sigmoid(w)``."""
        return float(1.0 / torch.sigmoid(self.w.detach()))

    def extra_repr(self) -> str:
        return f"tau={self.tau:.4g} (learnable), " + super().extra_repr()


__all__ = ["IF", "LIF", "PLIF", "SpikingNeuron", "check_sequence_input"]
