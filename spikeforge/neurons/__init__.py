"""``nn.Module`` spiking neurons over time-first tensors ``[T, B, ...]``.

Each neuron type is one file registered with :func:`register_neuron`; its import line
below is its one registration line (see docs/neurons.md). Every registered type's class
is exported.
"""

from spikeforge.neurons.alif import ALIF as ALIF
from spikeforge.neurons.base import (
    NEURONS,
    SpikingNeuron,
    get_neuron,
    neuron_parameters,
    register_neuron,
)
from spikeforge.neurons.cubalif import CubaLIF as CubaLIF
from spikeforge.neurons.lif import IF as IF
from spikeforge.neurons.lif import LIF as LIF
from spikeforge.neurons.lif import PLIF as PLIF
from spikeforge.neurons.monitor import FiringRateMonitor
from spikeforge.neurons.multispike import MultiSpikeIF as MultiSpikeIF

__all__ = [
    "NEURONS", "FiringRateMonitor", "SpikingNeuron", "get_neuron", "neuron_parameters",
    "register_neuron", *(cls.__name__ for cls in NEURONS.values()),
]
