"""Paired comparison of the MTT and fixed-T networks run event-driven on the same test
digits: exact McNemar tests over the digits one network gets right and the other wrong.

    python benchmarks/mtt_paired.py RESULT.json [RESULT.json ...] \
        [--out benchmarks/results/mtt_nmnist_sim_paired.json]

Each RESULT.json is a ``benchmarks/mtt_nmnist_sim.py`` result whose run directories
(``event_driven.run_dir`` of both arms) still exist; their event-driven accuracies are
recomputed and must equal the recorded ones. A seed's test is exact (two-sided binomial
on the discordant digits); the pooled line sums the discordant counts over the seeds
(the seeds share the 1,000 test digits, so it is a summary, not independent evidence).
"""

from __future__ import annotations

import argparse
import json
import math

from spikeforge.data import get_raw_events
from spikeforge.deploy.event_driven import EventDrivenSimulator, simulate_dataset
from spikeforge.deploy.lower import lower_model
from spikeforge.train.engine import load_trained


def correct_per_digit(run_dir: str) -> tuple[list[bool], float]:
    """Whether the run's network, run fully event-driven, classifies each test sample
    right (the simulation of ``spikeforge simulate RUN --event-driven``), and accuracy."""
    trainer = load_trained(run_dir)
    cfg = trainer.cfg
    sim = EventDrivenSimulator(lower_model(trainer.model, trainer.bundle.input_shape),
                               mode="events")
    events = get_raw_events(cfg.data.name, cfg.data, "test")
    r = simulate_dataset(sim, events, int(cfg.data.time_steps), keep_samples=True)
    labels = [int(events[i][1]) for i in range(r.samples)]
    return [s.prediction == y for s, y in zip(r.per_sample, labels)], r.accuracy


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: ``b`` and ``c`` discordant pairs, under the null
    each discordant pair goes either way with probability 1/2."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+")
    p.add_argument("--out", default="benchmarks/results/mtt_nmnist_sim_paired.json")
    a = p.parse_args()
    seeds, b_all, c_all = [], 0, 0
    for path in a.results:
        with open(path) as f:
            res = json.load(f)
        arms = {}
        for arm in ("fixed", "mtt"):
            rec = res[arm]["event_driven"]
            ok, acc = correct_per_digit(rec["run_dir"])
            if abs(acc - rec["accuracy"]) > 1e-12:
                raise SystemExit(f"{path}: {arm} event-driven accuracy {acc} differs from the "
                                 f"recorded {rec['accuracy']}: not the same network")
            arms[arm] = ok
        b = sum(f and not m for f, m in zip(arms["fixed"], arms["mtt"]))  # fixed right only
        c = sum(m and not f for f, m in zip(arms["fixed"], arms["mtt"]))  # MTT right only
        b_all, c_all = b_all + b, c_all + c
        seeds.append({"result": path, "digits": len(arms["mtt"]),
                      "fixed_accuracy": sum(arms["fixed"]) / len(arms["fixed"]),
                      "mtt_accuracy": sum(arms["mtt"]) / len(arms["mtt"]),
                      "fixed_right_mtt_wrong": b, "mtt_right_fixed_wrong": c,
                      "mcnemar_exact_p": mcnemar_exact(b, c)})
        print(json.dumps(seeds[-1]), flush=True)
    out = {"command": "python benchmarks/mtt_paired.py " + " ".join(a.results),
           "seeds": seeds,
           "pooled": {"fixed_right_mtt_wrong": b_all, "mtt_right_fixed_wrong": c_all,
                      "mcnemar_exact_p": mcnemar_exact(b_all, c_all),
                      "note": "the seeds share the test digits: a summary, not independent"}}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out["pooled"]))


if __name__ == "__main__":
    main()
