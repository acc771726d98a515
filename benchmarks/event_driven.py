"""Cost of the event-driven simulator against input spike rate.

An event-driven run does work only where spikes arrive, so its cost should grow
with the number of input events, not with neurons x time steps. This drives the
bias-free ``event_cnn`` (random weights scaled so that spikes propagate, IF with
reset by subtraction) with Poisson input on a 2x34x34 sensor at three rates and
records, per rate, the input events, the events processed, the synaptic
operations, the seconds and events per second of the clockless mode, beside the
clock-driven network's work (neurons x T updates, dense synaptic operations) at
T = 16. Writes ``benchmarks/results/event_driven_cpu.json``::

    python benchmarks/event_driven.py [--samples 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from spikeforge.deploy import lower_model
from spikeforge.deploy.event_driven import EventDrivenSimulator
from spikeforge.models import build_model
from spikeforge.train.config import ModelConfig

RATES = (0.002, 0.01, 0.05)  # events per pixel per time step
T = 16
SHAPE = (2, 34, 34)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--out", default="benchmarks/results/event_driven_cpu.json")
    a = p.parse_args()
    torch.manual_seed(0)
    cfg = ModelConfig(name="event_cnn", neuron="if", v_reset=None, channels=[16, 32],
                      backend="reference")
    model = build_model("event_cnn", SHAPE, 10, cfg)
    with torch.no_grad():
        for prm in model.parameters():
            prm.mul_(3.0)  # enough drive that spikes reach the readout
    net = lower_model(model, SHAPE)
    sim = EventDrivenSimulator(net, mode="events")
    n_in = int(np.prod(SHAPE))
    neurons = sum(st.n_out for st in net.stages if st.neurons is not None)
    dense_sops = sum(st.weight.nnz for st in net.stages if st.weight is not None) * T
    rng = np.random.default_rng(0)
    sim.run_sample(np.array([0.0]), np.array([0]), dt=1.0)  # compile outside the timing
    rows = []
    for rate in RATES:
        inputs = events = sops = 0
        secs = 0.0
        for _ in range(a.samples):
            n = rng.poisson(rate * n_in * T)
            t = np.sort(rng.uniform(0, T, n))
            idx = rng.integers(0, n_in, n)
            t0 = time.perf_counter()
            r = sim.run_sample(t, idx, dt=1.0)
            secs += time.perf_counter() - t0
            inputs += n
            events += r.events
            sops += r.sops
        rows.append({
            "input_rate_per_pixel_step": rate,
            "input_events_per_sample": inputs / a.samples,
            "events_processed_per_sample": events / a.samples,
            "sops_per_sample": sops / a.samples,
            "ms_per_sample": 1e3 * secs / a.samples,
            "events_per_second": events / secs,
            "ns_per_sop": 1e9 * secs / max(sops, 1),
        })
        print(json.dumps(rows[-1]))
    base = rows[0]
    out = {
        "command": f"python benchmarks/event_driven.py --samples {a.samples}",
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.processor() or platform.machine(),
        "load_average": os.getloadavg(),
        "network": "event_cnn [16, 32] (2x34x34 -> 10), IF, reset by subtraction, random "
        "weights x3, mode=events",
        "clock_driven_at_T16": {"neuron_updates": neurons * T, "dense_sops": dense_sops},
        "rows": rows,
        "cost_ratio_vs_input_ratio": [
            {
                "input_ratio": r["input_events_per_sample"] / base["input_events_per_sample"],
                "time_ratio": r["ms_per_sample"] / base["ms_per_sample"],
                "sops_ratio": r["sops_per_sample"] / base["sops_per_sample"],
            }
            for r in rows
        ],
    }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
