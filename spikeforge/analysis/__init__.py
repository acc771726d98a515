"""Analysis: spike monitors, synaptic operations and energy per layer, plots, run reports.

* :class:`SpikeMonitor` / :class:`OpsMonitor`: forward hooks on spikeforge neurons
  and on the layers they feed (no change to the model).
* :mod:`spikeforge.analysis.counters`: one SOP counter per layer type, in a
  registry (:func:`register_counter`) that new layer types extend.
* :func:`profile_model`: spikes, SOPs, MACs and energy per layer and per sample.
* :mod:`spikeforge.analysis.plots` and :mod:`spikeforge.analysis.report`: figures
  and the self-contained HTML report of a run directory.
"""

from spikeforge.analysis.counters import COUNTERS, LayerOps, find_counter, register_counter
from spikeforge.analysis.monitor import NoSpikingLayerError, OpsMonitor, SpikeMonitor
from spikeforge.analysis.profile import EnergyModel, Profile, profile_model
from spikeforge.analysis.run_metrics import final_metrics
from spikeforge.train.engine import FINAL_METRICS

if final_metrics not in FINAL_METRICS:
    FINAL_METRICS.append(final_metrics)

__all__ = [
    "COUNTERS",
    "EnergyModel",
    "LayerOps",
    "NoSpikingLayerError",
    "OpsMonitor",
    "Profile",
    "SpikeMonitor",
    "final_metrics",
    "find_counter",
    "profile_model",
    "register_counter",
]
