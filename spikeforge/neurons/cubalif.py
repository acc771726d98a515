"""CubaLIF: current-based (synaptic) leaky integrate-and-fire, two state variables.
The whole neuron type is this file: its state, its step, its module.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from spikeforge.functional.neuron import integrate_and_fire
from spikeforge.functional.surrogate import Surrogate
from spikeforge.neurons.base import SpikingNeuron, register_neuron, time_constant
from spikeforge.ops.spec import NeuronSpec


class CubaLIFState(NamedTuple):
    """CubaLIF state: synaptic current ``i`` and membrane ``v`` (rest: 0, ``V_rest``)."""

    i: torch.Tensor
    v: torch.Tensor


def cubalif_step(x, state: CubaLIFState, params: tuple, spec: NeuronSpec,
                 surrogate: Surrogate, theta=None) -> tuple[torch.Tensor, CubaLIFState]:
    """One CubaLIF step, params ``(k_syn, k_mem)``::

        I[t] = I[t-1] - k_syn I[t-1] + X[t]
        H[t] = V[t-1] + k_mem (I[t] - (V[t-1] - V_rest))   (decay_input=False:
                                                            V - k_mem (V - V_rest) + I[t])
        S[t] = Heaviside(H[t] - V_th),   V[t] = reset(H[t], S[t])

    (all LIF options apply to the membrane, ``reset_delay`` included).
    """
    k_syn, k_mem = params
    i = state.i - k_syn * state.i + x
    s, v = integrate_and_fire(state.v, i, k_mem, spec, surrogate, theta)
    return s, CubaLIFState(i, v)


@register_neuron("cubalif")
class CubaLIF(SpikingNeuron):
    """Current-based LIF: :func:`cubalif_step` with ``k_syn = 1/tau_syn`` and
    ``k_mem = 1/tau``. The input charges a synaptic current that decays with
    ``tau_syn``; the current charges the membrane as the input of a LIF does.

    Parameter mapping to the peers (dt = 1):

    - snnTorch 1.0 ``Synaptic(alpha, beta, threshold)``: ``syn = alpha syn + x``,
      ``mem = beta mem + syn - thr S``; equal to ``CubaLIF(tau_syn=1/(1-alpha),
      tau=1/(1-beta), decay_input=False, v_reset=None, v_threshold=thr,
      fire_strict=True, reset_delay=True)`` (its ``reset_delay=False``: without
      ``reset_delay``, up to the case described for ``Leaky`` in docs/neurons.md; its
      ``reset_mechanism="zero"`` zeroes the whole next membrane, input included, which
      no option here reproduces).
    - Norse 1.1 ``LIFCell(LIFParameters(tau_syn_inv, tau_mem_inv, v_leak, v_th,
      v_reset), dt)``: ``CubaLIF(tau_syn=1/(dt tau_syn_inv), tau=1/(dt tau_mem_inv),
      v_leak=v_leak, v_reset=v_reset, v_threshold=v_th, fire_strict=True)``, the same
      spikes and membrane. Norse adds the input to the current, charges the membrane
      with it, then decays the current before storing it: its state ``i`` is our
      ``(1 - k_syn) I``, one decay further along.
    - NIR 1.0 ``CubaLIF(tau_syn, tau_mem, r, v_leak, v_threshold, v_reset, w_in)``, the
      ODE ``tau_syn dI/dt = -I + w_in x``, ``tau_mem dv/dt = (v_leak - v) + r I``, hard
      reset, fire at ``v > v_threshold``: discretised with ``dt = 1`` as Norse does, and
      ``r = 1``, it is ``CubaLIF(tau_syn, tau=tau_mem, v_leak=v_leak, v_reset=v_reset,
      v_threshold=v_threshold, fire_strict=True)`` with the input scaled by
      ``w_in / tau_syn`` (NIR's input enters the current through its time constant;
      ours adds ``X[t]`` whole).

    Args:
        tau: membrane time constant (>= 1 step), NIR's ``tau_mem``.
        tau_syn: synaptic time constant (>= 1 step; 1 makes the current the input, LIF).
        Other arguments and options: :class:`SpikingNeuron`.
    """

    kernel = "cubalif"
    State = CubaLIFState
    step_fn = staticmethod(cubalif_step)

    def __init__(
        self,
        tau: float = 2.0,
        tau_syn: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        decay_input: bool = True,
        detach_reset: bool = False,
        surrogate: str | Surrogate = "atan",
        reset: str | None = None,
        backend: str = "auto",
        **options,
    ) -> None:
        tau = time_constant("CubaLIF", "tau", tau)
        tau_syn = time_constant("CubaLIF", "tau_syn", tau_syn)
        super().__init__(v_threshold, v_reset, decay_input, detach_reset, surrogate, reset,
                         backend, **options)
        self.tau, self.tau_syn = tau, tau_syn
        self._check_backend()

    def params(self) -> tuple:
        return (1.0 / self.tau_syn, 1.0 / self.tau)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, tau_syn={self.tau_syn}, " + super().extra_repr()
