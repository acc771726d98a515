"""Monitors attached through forward hooks: spikes of every neuron layer, operations of
every counted layer. Nothing in the model changes; removing the hooks restores it.

Both are context managers::

    with SpikeMonitor(model) as spikes, OpsMonitor(model) as ops:
        model(x)                       # x: [T, B, ...]
    spikes.layers()["features.2"].firing_rate
    ops.layers()["features.0.layer"].sops
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from spikeforge.analysis.counters import LayerOps, find_counter
from spikeforge.neurons.base import SpikingNeuron
from spikeforge.neurons.monitor import FiringRateMonitor


class NoSpikingLayerError(ValueError):
    """The model holds no :class:`~spikeforge.neurons.SpikingNeuron`."""


def spiking_layer_names(model: nn.Module) -> list[str]:
    """Names of every :class:`SpikingNeuron` in ``model``; a clear error when there is none."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch nn.Module, got {type(model).__name__}")
    names = [n for n, m in model.named_modules() if isinstance(m, SpikingNeuron)]
    if not names:
        raise NoSpikingLayerError(
            f"{type(model).__name__} has no spiking layer (no spikeforge.neurons.SpikingNeuron "
            "module): spikes, SOPs and energy are defined for spiking networks"
        )
    return names


@dataclass
class NeuronLayerStats:
    """Spike statistics of one neuron layer over everything the monitor saw.

    ``neurons``: neurons per sample; ``samples``: samples seen; ``steps``: time
    steps per sample; ``spikes``: total spikes; ``rate_per_step[t]``: spikes at
    step ``t`` / (neurons x samples); ``rate_per_neuron[i]``: spikes of neuron
    ``i`` / (steps x samples); ``raster``: spikes ``[T, neurons]`` of the first
    sample seen; ``membrane``: post-reset membrane ``[T, k]`` of the requested
    neurons of the first sample (else None).
    """

    name: str
    neurons: int
    samples: int
    steps: int
    spikes: float
    rate_per_step: torch.Tensor
    rate_per_neuron: torch.Tensor
    raster: torch.Tensor | None
    membrane: torch.Tensor | None = None
    membrane_index: list[int] = field(default_factory=list)
    v_threshold: float = 1.0

    @property
    def firing_rate(self) -> float:
        """Spikes / (neurons x steps x samples)."""
        n = self.neurons * self.steps * self.samples
        return self.spikes / n if n else 0.0

    @property
    def spikes_per_sample(self) -> float:
        """Mean number of spikes of the layer per sample (all steps)."""
        return self.spikes / self.samples if self.samples else 0.0

    def dead_fraction(self) -> float:
        """Fraction of neurons that never spiked."""
        return float((self.rate_per_neuron == 0).double().mean())

    def saturated_fraction(self, rate: float = 1.0) -> float:
        """Fraction of neurons whose firing rate is at least ``rate`` (default: a
        spike at every step of every sample)."""
        return float((self.rate_per_neuron >= rate - 1e-12).double().mean())


class SpikeMonitor(FiringRateMonitor):
    """Per-layer spike counts, firing rates per step and per neuron, dead and
    saturated neurons, a raster of the first sample and, on request, membrane traces.

    Extends :class:`~spikeforge.neurons.FiringRateMonitor` (``rates()`` and
    ``mean_rate()`` keep their meaning).

    Args:
        model: any module holding :class:`SpikingNeuron` s; neuron outputs must be
            time-first ``[T, B, ...]``.
        membrane: ``{layer name: [flat neuron indices]}``: record the membrane
            (after reset) of these neurons for the first sample. The neuron is run
            a second time on the same input with ``record_membrane=True``, so this
            costs one more neuron pass per listed layer and call.
        raster: keep the spikes of the first sample seen (for raster plots).
    """

    def __init__(
        self,
        model: nn.Module,
        membrane: Mapping[str, Sequence[int]] | None = None,
        raster: bool = True,
    ) -> None:
        spiking_layer_names(model)
        super().__init__(model)
        membrane = dict(membrane or {})
        unknown = [n for n in membrane if n not in self.names]
        if unknown:
            raise KeyError(
                f"membrane: {unknown} are not spiking layers of the model; "
                f"spiking layers: {self.names}"
            )
        self.membrane_request = {n: [int(i) for i in idx] for n, idx in membrane.items()}
        self.keep_raster = raster
        self._steps: dict[str, torch.Tensor] = {}
        self._neuron: dict[str, torch.Tensor] = {}
        self._samples = dict.fromkeys(self.names, 0)
        self._raster: dict[str, torch.Tensor] = {}
        self._membrane: dict[str, torch.Tensor] = {}

    def _hook(self, name: str):
        def hook(module, inputs, output):
            s = (output.spikes if isinstance(output, tuple) else output).detach()
            if s.dim() < 2:
                raise ValueError(
                    f"{name}: neuron output must be time-first [T, B, ...], got {tuple(s.shape)}"
                )
            flat = s.reshape(s.shape[0], s.shape[1], -1)
            # One pass over the spikes: [T, neurons] counts, exact in float32 up to
            # 2^24 samples; the small result is summed in float64.
            counts = flat.sum(1, dtype=torch.float32).to(torch.float64)
            per_step, per_neuron = counts.sum(1), counts.sum(0)
            self._accumulate(name, per_step, per_neuron, flat.shape[1])
            self._spikes[name] += float(per_step.sum())
            self._count[name] += s.numel()
            if self.keep_raster and name not in self._raster:
                self._raster[name] = flat[:, 0].to("cpu", torch.float32)
            if name in self.membrane_request and name not in self._membrane:
                x = inputs[0]
                res = module.forward(x, record_membrane=True)
                v = res.v_seq.detach().reshape(x.shape[0], x.shape[1], -1)[:, 0]
                idx = torch.tensor(self.membrane_request[name], device=v.device)
                if idx.numel() and int(idx.max()) >= v.shape[1]:
                    raise IndexError(
                        f"membrane[{name!r}]: neuron index {int(idx.max())} out of range for "
                        f"{v.shape[1]} neurons"
                    )
                self._membrane[name] = v[:, idx].to("cpu", torch.float32)

        return hook

    def _accumulate(self, name, per_step, per_neuron, batch) -> None:
        steps = self._steps.get(name)
        if steps is not None and steps.shape != per_step.shape:
            raise ValueError(
                f"{name}: the number of time steps changed between calls "
                f"({steps.shape[0]} then {per_step.shape[0]}); use one monitor per T"
            )
        self._steps[name] = per_step if steps is None else steps + per_step
        prev = self._neuron.get(name)
        if prev is not None and prev.shape != per_neuron.shape:
            raise ValueError(
                f"{name}: the layer ran on {prev.shape[0]} then {per_neuron.shape[0]} neurons per "
                "sample; per-neuron statistics need one shape per module (give each call site "
                "its own neuron module)"
            )
        self._neuron[name] = per_neuron if prev is None else prev + per_neuron
        self._samples[name] += batch

    def layers(self) -> dict[str, NeuronLayerStats]:
        """Statistics of every spiking layer that ran, in model order."""
        modules = dict(self.model.named_modules())
        out = {}
        for n in self.names:
            if n not in self._steps:
                continue
            steps, neuron, samples = self._steps[n].cpu(), self._neuron[n].cpu(), self._samples[n]
            t, k = steps.shape[0], neuron.shape[0]
            out[n] = NeuronLayerStats(
                name=n,
                neurons=k,
                samples=samples,
                steps=t,
                spikes=float(steps.sum()),
                rate_per_step=steps / (k * samples),
                rate_per_neuron=neuron / (t * samples),
                raster=self._raster.get(n),
                membrane=self._membrane.get(n),
                membrane_index=self.membrane_request.get(n, []),
                v_threshold=float(modules[n].v_threshold),
            )
        return out


@dataclass
class LayerOpsStats:
    """Operations of one counted layer, summed over every call the monitor saw."""

    name: str
    type: str
    sops: float = 0.0
    macs: float = 0.0
    dense: float = 0.0
    kinds: set = field(default_factory=set)
    calls: int = 0

    def add(self, ops: LayerOps) -> None:
        """Add one call's :class:`LayerOps`."""
        self.sops += ops.sops
        self.macs += ops.macs
        self.dense += ops.dense
        self.kinds.add(ops.kind)
        self.calls += 1


class OpsMonitor:
    """Synaptic operations (SOPs), MACs and dense operations of every layer whose type
    has a counter in :data:`spikeforge.analysis.counters.COUNTERS`, plus the number
    of samples the model saw (``model`` input dim ``batch_dim``, 1 for time-first).

    Per-sample figures are the totals divided by :attr:`samples`.
    """

    def __init__(self, model: nn.Module, batch_dim: int = 1) -> None:
        spiking_layer_names(model)
        self.model = model
        self.batch_dim = batch_dim
        self.samples = 0
        self.stats: dict[str, LayerOpsStats] = {}
        self._counted = [
            (n, m, c) for n, m in model.named_modules() if n and (c := find_counter(m)) is not None
        ]
        self._handles: list = []

    def _count_samples(self, module, inputs):
        x = inputs[0]
        if x.dim() <= self.batch_dim:
            raise ValueError(
                f"OpsMonitor: model input of shape {tuple(x.shape)} has no batch dim "
                f"{self.batch_dim} (time-first input is [T, B, ...])"
            )
        self.samples += x.shape[self.batch_dim]

    def _hook(self, name: str, counter):
        def hook(module, inputs, output):
            ops = counter(module, inputs, output)
            st = self.stats.get(name)
            if st is None:
                st = self.stats[name] = LayerOpsStats(name, type(module).__name__)
            st.add(ops)

        return hook

    def __enter__(self) -> OpsMonitor:
        self._handles = [self.model.register_forward_pre_hook(self._count_samples)]
        self._handles += [m.register_forward_hook(self._hook(n, c)) for n, m, c in self._counted]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def layers(self) -> dict[str, LayerOpsStats]:
        """Per-layer totals, in model order (layers that never ran are left out)."""
        return {n: self.stats[n] for n, _, _ in self._counted if n in self.stats}

    def totals(self) -> LayerOps:
        """Sum over layers (``kind`` left ``none``)."""
        t = LayerOps()
        for st in self.stats.values():
            t.sops += st.sops
            t.macs += st.macs
            t.dense += st.dense
        return t
