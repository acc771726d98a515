"""Fused neuron kernels behind one entry point.

``ops`` is the top layer: it imports nothing else from spikeforge. The plain
PyTorch reference dynamics live in :mod:`spikeforge.functional.neuron`, which
dispatches here for the fast paths and is the oracle every kernel is tested
against.
"""

from spikeforge.ops.spec import RESET_KINDS, SURROGATE_NAMES, NeuronSpec

__all__ = ["NeuronSpec", "RESET_KINDS", "SURROGATE_NAMES"]
