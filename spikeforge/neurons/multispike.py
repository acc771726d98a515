"""Multi-spike integrate-and-fire: the IF neuron of asynchronous chips, on a clock.

On an event-driven chip (SynSense Speck; :mod:`spikeforge.deploy`'s simulator) an IF
neuron with reset by subtraction fires as many times as its membrane holds the
threshold, at once. Clock-driven, the same neuron fires that many spikes in one step
(sinabs ``IAF(spike_fn=MultiSpike, reset_fn=MembraneSubtract)``, the neuron Du et al.,
"Temporal Flexibility in Spiking Neural Networks", ICLR 2025, train their
event-driven networks with, ``train-event-driven/models/snn_speck.py``)::

    H[t] = V[t-1] + X[t]
    S[t] = floor(H[t] / V_th)  when H[t] >= V_th, else 0   (a spike count)
    V[t] = H[t] - V_th S[t]                                 (never >= V_th after a step)
    V[t] = max(V[t], V_min)                                 with a floor v_min (sinabs
                                                            min_v_mem; the authors' -1)

so the spike count of a layer does not depend on how finely its input is cut into
steps while the input is excitatory: the regime mixed time-step training moves
between. Backward: the surrogate's derivative at the nearest multiple of the
threshold, ``sg'(H - m V_th)`` with ``m = max(1, round(H / V_th))`` (the periodic
surrogate sinabs pairs with ``MultiSpike``). Reference path only (no fused kernel).
"""

from __future__ import annotations

import torch

from spikeforge.functional.neuron import LIFState, fire, membrane_floor
from spikeforge.functional.surrogate import Surrogate
from spikeforge.neurons.base import SpikingNeuron, register_neuron
from spikeforge.ops.spec import NeuronSpec


def multispike_if_step(x, state: LIFState, params: tuple, spec: NeuronSpec,
                       surrogate: Surrogate, theta=None) -> tuple[torch.Tensor, LIFState]:
    """One step of :class:`MultiSpikeIF` (module equations): ``(S[t], V[t])``."""
    theta = spec.v_threshold if theta is None else theta
    h = state.v + x
    ratio = (h / theta).detach()
    count = torch.clamp(torch.floor(ratio), min=0)
    nearest = torch.clamp(torch.round(ratio), min=1)
    s1 = fire(h - (nearest - 1) * theta, theta, spec, surrogate)
    s = s1 + (count - s1).detach()  # forward: the count; backward: sg'(H - m V_th)
    s_r = s.detach() if spec.detach_reset else s
    return s, LIFState(membrane_floor(h - theta * s_r, spec))


@register_neuron("if_multi")
class MultiSpikeIF(SpikingNeuron):
    """IF with reset by subtraction that fires ``floor(H / V_th)`` spikes per step (see
    the module docstring). ``v_reset`` must be ``None`` (the reset subtracts);
    ``v_min``: the membrane floor (``None``: none; see :class:`SpikingNeuron`)."""

    kernel = None
    State = LIFState
    step_fn = staticmethod(multispike_if_step)

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = None,
        detach_reset: bool = False,
        surrogate: str | Surrogate = "atan",
        backend: str = "auto",
        v_min: float | None = None,
    ) -> None:
        if v_reset is not None:
            raise ValueError("if_multi resets by subtraction: v_reset must be None (null), "
                             f"got {v_reset}")
        if not v_threshold > 0:
            raise ValueError(f"if_multi: v_threshold must be > 0, got {v_threshold}")
        super().__init__(v_threshold, None, True, detach_reset, surrogate, "soft", backend,
                         v_min=v_min)
