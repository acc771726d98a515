"""Run a finished training run's test split through the event-driven simulator.

What ``spikeforge simulate RUN_DIR --event-driven`` does: rebuild the run's model
with its final weights, lower it (:func:`spikeforge.deploy.lower_model`), read
the test split's raw events (:func:`spikeforge.data.get_raw_events`) and run
every sample through :class:`~spikeforge.deploy.event_driven.EventDrivenSimulator`.
"""

from __future__ import annotations

from spikeforge.data import get_raw_events
from spikeforge.data.events import RAW_EVENTS
from spikeforge.deploy.event_driven import EventDrivenSimulator, simulate_dataset
from spikeforge.deploy.lower import DeploymentError, lower_model
from spikeforge.train.engine import load_trained


def simulate_run(
    run_dir: str,
    mode: str = "events",
    dataset: str | None = None,
    limit: int | None = None,
    delay: float = 0.0,
    time_steps: int | None = None,
) -> dict:
    """Accuracy, synaptic operations and events per sample, events per second and
    latency to decision (in trained time steps) of ``run_dir``'s model run
    event-driven on the test split of ``dataset`` (default: the run's own).
    ``time_steps``: the grid of ``mode="grid"`` and the step duration of
    ``mode="events"`` (default: the run's ``data.time_steps``)."""
    trainer = load_trained(run_dir)
    cfg = trainer.cfg
    name = dataset or cfg.data.name
    if name not in RAW_EVENTS:
        raise DeploymentError(
            f"simulate reads raw events, and dataset {name!r}"
            + (" (the run's)" if dataset is None else "")
            + f" has none; event datasets: {', '.join(sorted(RAW_EVENTS))} (--dataset NAME)")
    net = lower_model(trainer.model, trainer.bundle.input_shape)
    sim = EventDrivenSimulator(net, mode=mode, delay=delay)
    events = get_raw_events(name, cfg.data, "test")
    t = int(time_steps or cfg.data.time_steps)
    r = simulate_dataset(sim, events, t, limit=limit)
    return {
        "run_dir": run_dir,
        "dataset": name,
        "mode": mode,
        "time_steps": t,
        "delay": delay,
        "samples": r.samples,
        "accuracy": r.accuracy,
        "sops_per_sample": r.sops_per_sample,
        "events_per_sample": r.events_per_sample,
        "events_per_second": r.events_per_second,
        "mean_decision_time_steps": r.mean_decision_time,
        "seconds": r.seconds,
    }
