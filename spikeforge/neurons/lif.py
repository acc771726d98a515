"""IF, LIF and PLIF: the one-variable neurons (state :class:`LIFState` ``(v,)``; steps
:func:`~spikeforge.functional.neuron.if_step` and
:func:`~spikeforge.functional.neuron.lif_step`)."""

from __future__ import annotations

import math

import torch
from torch import nn

from spikeforge.functional.neuron import LIFState, if_step, lif_step
from spikeforge.functional.surrogate import Surrogate
from spikeforge.neurons.base import SpikingNeuron, register_neuron, time_constant


@register_neuron("if")
class IF(SpikingNeuron):
    """Integrate-and-fire: ``H[t] = V[t-1] + X[t]``, spike when ``H[t] >= V_th``, then
    reset (see :class:`SpikingNeuron` for the options)."""

    kernel = "if"
    State = LIFState
    step_fn = staticmethod(if_step)

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        detach_reset: bool = False,
        surrogate: str | Surrogate = "atan",
        reset: str | None = None,
        backend: str = "auto",
        **options,
    ) -> None:
        super().__init__(v_threshold, v_reset, True, detach_reset, surrogate, reset, backend,
                         **options)
        self._check_backend()


@register_neuron("lif")
class LIF(SpikingNeuron):
    """Leaky integrate-and-fire with time constant ``tau`` (``k = 1/tau``)::

        H[t] = V[t-1] + (X[t] - (V[t-1] - V_rest)) / tau     decay_input=True
        H[t] = V[t-1] - (V[t-1] - V_rest) / tau + X[t]       decay_input=False
        S[t] = Heaviside(H[t] - V_th),  then the reset (hard, soft or none)

    ``V_rest = v_leak`` if given, else ``v_reset`` for a hard reset, else 0; the state
    starts at ``V_rest`` (as SpikingJelly's ``LIFNode`` starts at ``v_reset``). Peers:
    SpikingJelly ``LIFNode(tau, decay_input, v_reset)`` is this with the same arguments;
    snnTorch 1.0 ``Leaky(beta)`` is ``LIF(tau=1/(1-beta), decay_input=False,
    v_reset=None, fire_strict=True, reset_delay=True, detach_reset=True)`` (and its
    ``reset_delay=False`` the same without ``reset_delay``, see docs/neurons.md for the
    one case that differs); Norse 1.1 ``LIFBoxCell(p, dt)`` is ``LIF(tau=1/(dt
    tau_mem_inv), v_leak=p.v_leak, v_reset=p.v_reset, fire_strict=True)``.
    Options: :class:`SpikingNeuron`.
    """

    kernel = "lif"
    State = LIFState
    step_fn = staticmethod(lif_step)

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
        **options,
    ) -> None:
        tau = time_constant("LIF", "tau", tau)
        super().__init__(v_threshold, v_reset, decay_input, detach_reset, surrogate, reset,
                         backend, **options)
        self.tau = tau
        self._check_backend()

    def params(self) -> tuple:
        return (self.leak(),)

    def leak(self):
        return 1.0 / self.tau

    def extra_repr(self) -> str:
        return f"tau={self.tau}, " + super().extra_repr()


@register_neuron("plif")
class PLIF(SpikingNeuron):
    """Parametric LIF (Fang et al., ICCV 2021): the LIF update with a learnable leak
    ``k = sigmoid(w)``, ``w`` initialised to ``-log(init_tau - 1)`` so that
    ``1/k = init_tau`` at the start. One ``w`` per layer, trained with the weights.
    Options: :class:`SpikingNeuron` (``learn_threshold`` also trains ``V_th``).
    """

    kernel = "lif"
    State = LIFState
    step_fn = staticmethod(lif_step)
    config_aliases = {"tau": "init_tau"}

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
        **options,
    ) -> None:
        if not (isinstance(init_tau, (int, float)) and init_tau > 1.0):
            raise ValueError(f"PLIF: init_tau must be a number > 1, got {init_tau!r}")
        super().__init__(v_threshold, v_reset, decay_input, detach_reset, surrogate, reset,
                         backend, **options)
        self.w = nn.Parameter(torch.tensor(-math.log(init_tau - 1.0)))
        self._check_backend()

    def params(self) -> tuple:
        return (self.leak(),)

    def leak(self):
        return torch.sigmoid(self.w)

    @property
    def tau(self) -> float:
        """Current time constant ``1 / sigmoid(w)``."""
        return float(1.0 / torch.sigmoid(self.w.detach()))

    def extra_repr(self) -> str:
        return f"tau={self.tau:.4g} (learnable), " + super().extra_repr()
