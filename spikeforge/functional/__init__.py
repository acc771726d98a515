"""Pure functions: neuron dynamics, surrogate gradients, encoders, losses (no hidden state)."""

from spikeforge.functional.neuron import (
    LIFState,
    MultiStepResult,
    charge,
    fire,
    if_step,
    integrate_and_fire,
    lif_step,
    multistep_neuron,
    multistep_reference,
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
    "LIFState",
    "MultiStepResult",
    "Rectangle",
    "SURROGATES",
    "Sigmoid",
    "Surrogate",
    "Triangle",
    "charge",
    "fire",
    "get_surrogate",
    "heaviside",
    "if_step",
    "integrate_and_fire",
    "lif_step",
    "multistep_neuron",
    "multistep_reference",
    "reset",
]
