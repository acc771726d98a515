"""ALIF: leaky integrate-and-fire with an adaptive threshold (Bellec et al., "Long
short-term memory and learning-to-learn in networks of spiking neurons", NeurIPS 2018,
the LSNN). The whole neuron type is this file: its state, its step, its module.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from spikeforge.functional.neuron import charge, fire, reset
from spikeforge.functional.surrogate import Surrogate
from spikeforge.neurons.base import SpikingNeuron, register_neuron, time_constant
from spikeforge.ops.spec import NeuronSpec


class ALIFState(NamedTuple):
    """ALIF state: membrane ``v`` and threshold adaptation ``a`` (rest: ``V_rest``, 0)."""

    v: torch.Tensor
    a: torch.Tensor


def alif_step(x, state: ALIFState, params: tuple, spec: NeuronSpec, surrogate: Surrogate,
              theta=None) -> tuple[torch.Tensor, ALIFState]:
    """One ALIF step, params ``(k, rho, beta)``::

        H[t]     = V[t-1] + k (X[t] - (V[t-1] - V_rest))     (LIF charge; decay_input=False:
                                                              V - k (V - V_rest) + X)
        theta[t] = V_th + beta A[t-1]
        S[t]     = Heaviside(H[t] - theta[t])
        V[t]     = reset(H[t], S[t])                         (soft reset subtracts theta[t])
        A[t]     = rho A[t-1] + S[t]

    i.e. the issue's ``a[t] = rho a[t-1] + s[t-1]`` with threshold ``v_th + beta a[t]``.
    With ``detach_reset`` the ``S[t]`` in both the reset and ``A[t]`` carries no gradient.
    """
    k, rho, beta = params
    th = (spec.v_threshold if theta is None else theta) + beta * state.a
    h = charge(state.v, x, k, spec)
    s = fire(h, th, spec, surrogate)
    s_a = s.detach() if spec.detach_reset else s
    return s, ALIFState(reset(h, s, spec, th), rho * state.a + s_a)


@register_neuron("alif")
class ALIF(SpikingNeuron):
    """Adaptive-threshold LIF (Bellec et al., NeurIPS 2018): :func:`alif_step` with
    ``k = 1/tau``, ``rho = exp(-1/tau_adapt)``; every spike raises the threshold by
    ``beta``, and the raise decays with time constant ``tau_adapt``.

    Bellec's code (``ALIF`` in the LSNN repository) increments the adaptation by
    ``(1 - rho) z``; that is this neuron with ``beta = beta_Bellec (1 - rho)``.

    Args:
        tau: membrane time constant (>= 1 step).
        tau_adapt: adaptation time constant (> 0 steps).
        beta: threshold increase per spike (>= 0; 0 is LIF).
        Other arguments and options: :class:`SpikingNeuron` (``reset_delay`` is not
        offered: the delayed reset would need the previous step's threshold).
    """

    kernel = "alif"
    State = ALIFState
    step_fn = staticmethod(alif_step)

    def __init__(
        self,
        tau: float = 2.0,
        tau_adapt: float = 20.0,
        beta: float = 0.2,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        decay_input: bool = True,
        detach_reset: bool = False,
        surrogate: str | Surrogate = "atan",
        reset: str | None = None,
        backend: str = "auto",
        **options,
    ) -> None:
        tau = time_constant("ALIF", "tau", tau)
        if not (isinstance(tau_adapt, (int, float)) and 0 < tau_adapt < math.inf):
            raise ValueError(f"ALIF: tau_adapt must be a positive number, got {tau_adapt!r}")
        if not (isinstance(beta, (int, float)) and 0 <= beta < math.inf):
            raise ValueError(f"ALIF: beta must be a number >= 0, got {beta!r}")
        if options.get("reset_delay"):
            raise ValueError("ALIF: reset_delay is not offered (see the class docstring)")
        super().__init__(v_threshold, v_reset, decay_input, detach_reset, surrogate, reset,
                         backend, **options)
        self.tau, self.tau_adapt, self.beta = tau, float(tau_adapt), float(beta)
        self._check_backend()

    def params(self) -> tuple:
        return (1.0 / self.tau, math.exp(-1.0 / self.tau_adapt), self.beta)

    def extra_repr(self) -> str:
        return (f"tau={self.tau}, tau_adapt={self.tau_adapt}, beta={self.beta}, "
                + super().extra_repr())
