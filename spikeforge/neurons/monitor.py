"""Firing-rate recording through forward hooks (no state inside the neurons).

Lives in ``neurons/`` because the training engine needs it and ``train/`` may
not import ``analysis/``; richer monitors in ``analysis/`` build on it.
"""

from __future__ import annotations

from torch import nn

from spikeforge.neurons.base import SpikingNeuron


class FiringRateMonitor:
    """Accumulate the mean firing rate of every :class:`SpikingNeuron` in a model.

    ``rate = (number of spikes) / (number of neurons x time steps x samples)``,
    accumulated over all forward calls while active. Use as a context manager::

        with FiringRateMonitor(model) as mon:
            model(x)
        mon.rates()  # {"layer name": rate}
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.names = [n for n, m in model.named_modules() if isinstance(m, SpikingNeuron)]
        self._spikes = {n: 0.0 for n in self.names}
        self._count = {n: 0 for n in self.names}
        self._handles: list = []

    def _hook(self, name: str):
        def hook(module, inputs, output):
            spikes = output.spikes if isinstance(output, tuple) else output
            self._spikes[name] += float(spikes.detach().float().sum())
            self._count[name] += spikes.numel()

        return hook

    def __enter__(self) -> FiringRateMonitor:
        modules = dict(self.model.named_modules())
        self._handles = [modules[n].register_forward_hook(self._hook(n)) for n in self.names]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def rates(self) -> dict[str, float]:
        """Mean firing rate per spiking layer (0 for a layer that never ran)."""
        return {n: self._spikes[n] / self._count[n] if self._count[n] else 0.0 for n in self.names}

    def mean_rate(self) -> float:
        """Firing rate over all spiking layers together."""
        total = sum(self._count.values())
        return sum(self._spikes.values()) / total if total else 0.0

