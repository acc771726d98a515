"""Spike, SOP and energy statistics of a trained model, added to ``metrics.json``.

:func:`final_metrics` is registered in :data:`spikeforge.train.engine.FINAL_METRICS`
when :mod:`spikeforge.analysis` is imported (``train/`` may not import
``analysis/``, see DESIGN.md), so ``spikeforge train`` and any program that
imports ``spikeforge.analysis`` get them.
"""

from __future__ import annotations

import contextlib
import logging

from spikeforge.analysis.profile import EnergyModel, profile_model
from spikeforge.neurons.base import SpikingNeuron
from spikeforge.train.batches import derived_seed, iterate_batches, seeded_generator

log = logging.getLogger("spikeforge.analysis")

#: Test samples profiled for metrics.json (the report takes its own --samples).
FINAL_SAMPLES = 256


def profile_batches(trainer, samples: int):
    """The first ``samples`` test samples of ``trainer`` as time-first ``(x, y)``
    batches, encoded with the generator :meth:`Trainer.evaluate` uses."""
    gen = seeded_generator(derived_seed(trainer.cfg.seed, 0, 3))
    left = samples
    for x, y in iterate_batches(trainer.bundle.test, min(256, samples), None):
        if left <= 0:
            return
        x, y = x[:left], y[:left]
        left -= len(y)
        yield trainer.to_time_first(x, gen), y.to(trainer.device)


def final_metrics(trainer, result=None, energy: EnergyModel | None = None) -> dict:
    """``sops_per_sample``, ``macs_per_sample``, ``energy_uj_per_sample``,
    ``spikes_per_sample``, ``activation_sparsity``, the energy model and per-layer
    statistics (``layer_statistics``) of ``trainer.model`` on the first
    :data:`FINAL_SAMPLES` test samples; nothing for a model without spiking layers."""
    if not any(isinstance(m, SpikingNeuron) for m in trainer.model.modules()):
        return {}
    try:
        # profiled as it runs: under train.precision's autocast
        with trainer.autocast() if hasattr(trainer, "autocast") else contextlib.nullcontext():
            p = profile_model(
                trainer.model, profile_batches(trainer, FINAL_SAMPLES), energy
            ).to_dict()
    except Exception as e:  # a finished training run must still write its metrics
        log.warning("spike / SOP / energy statistics failed: %s: %s", type(e).__name__, e)
        return {"analysis_error": f"{type(e).__name__}: {e}"}
    keys = ("sops_per_sample", "macs_per_sample", "dense_ops_per_sample",
            "energy_uj_per_sample", "spikes_per_sample", "activation_sparsity", "energy_model")
    out = {k: p[k] for k in keys}
    out["ops_samples"] = p["samples"]
    out["layer_statistics"] = {
        "neuron_layers": p["neuron_layers"], "synaptic_layers": p["synaptic_layers"]
    }
    return out
