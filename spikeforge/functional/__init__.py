"""Pure functions: neuron dynamics, surrogate gradients, encoders, losses (no hidden state)."""

from spikeforge.functional.neuron import (
    MultiStepResult,
    charge,
    multistep_neuron,
    multistep_reference,
    neuron_step,
    reset,
)
from spikeforge.functional.surrogate import (
    SURROGATES,
    ATan,
    FastSigmoid,
    Rectangle,
    Sigmoid,
    Surrogate,
    Triangle,
    get_surrogate,
    heaviside,
)

__all__ = [
    "ATan",
    "FastSigmoid",
    "MultiStepResult",
    "Rectangle",
    "SURROGATES",
    "Sigmoid",
    "Surrogate",
    "Triangle",
    "charge",
    "get_surrogate",
    "heaviside",
    "multistep_neuron",
    "multistep_reference",
    "neuron_step",
    "reset",
]
