"""``nn.Module`` spiking neurons over time-first tensors ``[T, B, ...]``."""

from spikeforge.neurons.base import IF, LIF, PLIF, SpikingNeuron
from spikeforge.neurons.monitor import FiringRateMonitor

NEURONS = {"if": IF, "lif": LIF, "plif": PLIF}

__all__ = ["IF", "LIF", "NEURONS", "PLIF", "FiringRateMonitor", "SpikingNeuron"]
