"""Energy model and the profile of a model on data: spikes, SOPs, MACs and energy per
layer and in total, per sample."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from spikeforge.analysis.monitor import NeuronLayerStats, OpsMonitor, SpikeMonitor


@dataclass(frozen=True)
class EnergyModel:
    """``E = E_AC * SOPs + E_MAC * MACs``.

    Defaults: 32-bit floating-point add 0.9 pJ and multiply-add 4.6 pJ (3.7 pJ
    multiply + 0.9 pJ add) in 45 nm CMOS (Horowitz, "Computing's energy problem
    (and what we can do about it)", ISSCC 2014), the constants of the SNN
    literature (e.g. Spikformer, Zhou et al. ICLR 2023; SEW-ResNet energy
    estimates). Memory access and neuron updates are not included.
    """

    e_ac_pj: float = 0.9
    e_mac_pj: float = 4.6

    def __post_init__(self) -> None:
        for name in ("e_ac_pj", "e_mac_pj"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"EnergyModel.{name} must be a finite number >= 0, got {v!r}")

    def energy_pj(self, sops: float, macs: float) -> float:
        """Energy in picojoules of ``sops`` accumulates and ``macs`` multiply-accumulates."""
        return self.e_ac_pj * sops + self.e_mac_pj * macs


@dataclass
class Profile:
    """What :func:`profile_model` measured. Per-sample figures divide totals by ``samples``."""

    samples: int
    neurons: dict[str, NeuronLayerStats]
    ops: dict
    energy: EnergyModel
    accuracy_vs_steps: list[float] | None = None

    @property
    def sops_per_sample(self) -> float:
        """Synaptic operations (spike-driven accumulates) per sample."""
        return sum(s.sops for s in self.ops.values()) / self.samples

    @property
    def macs_per_sample(self) -> float:
        """Multiply-accumulates (analog-driven) per sample."""
        return sum(s.macs for s in self.ops.values()) / self.samples

    @property
    def dense_ops_per_sample(self) -> float:
        """All connections for all inputs, zeros included (NeuroBench's ``Dense``)."""
        return sum(s.dense for s in self.ops.values()) / self.samples

    @property
    def energy_uj_per_sample(self) -> float:
        """``(E_AC * SOPs + E_MAC * MACs)`` per sample, in microjoules."""
        return self.energy.energy_pj(self.sops_per_sample, self.macs_per_sample) * 1e-6

    @property
    def spikes_per_sample(self) -> float:
        """Spikes of all neuron layers per sample."""
        return sum(s.spikes for s in self.neurons.values()) / self.samples

    @property
    def activation_sparsity(self) -> float:
        """Zero outputs / all outputs of the neuron layers, over all steps and samples
        (NeuroBench's ``ActivationSparsity`` for binary spikes)."""
        total = sum(s.neurons * s.steps * s.samples for s in self.neurons.values())
        return 1.0 - sum(s.spikes for s in self.neurons.values()) / total

    def to_dict(self) -> dict:
        """JSON-ready summary: totals and one row per layer (neuron and synaptic)."""
        n = self.samples
        neuron_rows = [
            {
                "name": s.name,
                "neurons": s.neurons,
                "spikes_per_sample": s.spikes_per_sample,
                "firing_rate": s.firing_rate,
                "dead_fraction": s.dead_fraction(),
                "saturated_fraction": s.saturated_fraction(),
                "firing_rate_per_step": [float(r) for r in s.rate_per_step],
            }
            for s in self.neurons.values()
        ]
        op_rows = [
            {
                "name": s.name,
                "type": s.type,
                "input": "/".join(sorted(s.kinds - {"none"})) or "-",
                "sops_per_sample": s.sops / n,
                "macs_per_sample": s.macs / n,
                "dense_ops_per_sample": s.dense / n,
                "energy_uj_per_sample": self.energy.energy_pj(s.sops / n, s.macs / n) * 1e-6,
            }
            for s in self.ops.values()
        ]
        out = {
            "samples": n,
            "spikes_per_sample": self.spikes_per_sample,
            "activation_sparsity": self.activation_sparsity,
            "sops_per_sample": self.sops_per_sample,
            "macs_per_sample": self.macs_per_sample,
            "dense_ops_per_sample": self.dense_ops_per_sample,
            "energy_uj_per_sample": self.energy_uj_per_sample,
            "energy_model": {"e_ac_pj": self.energy.e_ac_pj, "e_mac_pj": self.energy.e_mac_pj},
            "neuron_layers": neuron_rows,
            "synaptic_layers": op_rows,
        }
        if self.accuracy_vs_steps is not None:
            out["accuracy_vs_time_steps"] = self.accuracy_vs_steps
        return out


@torch.no_grad()
def profile_model(
    model: nn.Module,
    batches: Iterable,
    energy: EnergyModel | None = None,
    membrane: Mapping[str, Sequence[int]] | None = None,
) -> Profile:
    """Run ``model`` in eval mode on ``batches`` under both monitors.

    Args:
        model: a time-first spiking model (``[T, B, ...] -> [T, B, classes]``).
        batches: tensors ``x`` ``[T, B, ...]`` or pairs ``(x, y)``; with labels the
            profile also holds the accuracy of the mean output over the first
            ``t`` steps for every ``t`` (accuracy versus time steps, from the
            same single pass: the models keep no state between calls).
        energy: the :class:`EnergyModel` (default 0.9 / 4.6 pJ).
        membrane: neurons whose membrane traces to record (see :class:`SpikeMonitor`).
    """
    energy = energy or EnergyModel()
    was_training = model.training
    model.eval()
    correct: torch.Tensor | None = None
    labelled = 0
    try:
        with SpikeMonitor(model, membrane) as spikes, OpsMonitor(model) as ops:
            for batch in batches:
                x, y = batch if isinstance(batch, (tuple, list)) else (batch, None)
                if not isinstance(x, torch.Tensor) or x.dim() < 3:
                    raise ValueError(
                        "profile_model: each batch must be a time-first tensor [T, B, ...], got "
                        f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
                    )
                out = model(x)
                if y is not None:
                    if out.dim() != 3:
                        raise ValueError(
                            f"profile_model: labels need outputs [T, B, classes], got "
                            f"{tuple(out.shape)}"
                        )
                    t = torch.arange(1, out.shape[0] + 1, device=out.device).view(-1, 1, 1)
                    pred = (out.cumsum(0) / t).argmax(2)  # [T, B]
                    hit = (pred == y.to(out.device).view(1, -1)).sum(1).cpu()
                    correct = hit if correct is None else correct + hit
                    labelled += y.numel()
    finally:
        model.train(was_training)
    if ops.samples == 0:
        raise ValueError("profile_model: no batch was given")
    acc = None if correct is None else [float(c) / labelled for c in correct]
    return Profile(ops.samples, spikes.layers(), ops.layers(), energy, acc)
