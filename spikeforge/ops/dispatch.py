"""One entry point to the fused multi-step neuron kernels.

``multistep(backend, x, v0, k, spec)`` runs the neuron described by
:class:`~spikeforge.ops.spec.NeuronSpec` over time-first ``x`` with the named
backend and returns ``(spikes, v_final)``, differentiable with respect to
``x``, ``v0`` and a tensor ``k``.
"""

from __future__ import annotations

import torch

from spikeforge.ops.spec import NeuronSpec


def is_available(backend: str, device: torch.device) -> bool:
    """Whether ``backend`` can run on ``device`` in this installation."""
    return False


def unavailable_reason(backend: str, device: torch.device) -> str:
    """A sentence saying why ``backend`` cannot run on ``device``."""
    return f"backend {backend!r} is not available on device {device}"


def multistep(backend: str, x: torch.Tensor, v0, k, spec: NeuronSpec):
    """Run the fused kernel of ``backend``; see the module docstring."""
    raise RuntimeError(unavailable_reason(backend, x.device))
