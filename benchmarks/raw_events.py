"""Raw-event access time of ``nmnist-sim``: the call the event-driven simulator iterates.

Generates (or finds) the cached raw events of the test split, then times,
median of ``--repeats`` fresh processes' worth of work done in this one:
``get_raw_events("nmnist-sim", cfg, "test")`` (loading the cache file) plus
one pass over every sample (``ds[i]`` for all i, touching each event array).
Also records the first-call (simulation) time when the cache was empty.
Writes ``benchmarks/results/raw_events_cpu.json``.

    python benchmarks/raw_events.py [--repeats 5] [--cache-dir DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from spikeforge.data import get_raw_events  # noqa: E402
from spikeforge.data import nmnist_sim as ns  # noqa: E402
from spikeforge.train.config import DataConfig  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cache-dir", default=None, help="default: a fresh temporary folder")
    ap.add_argument("--limit", type=int, default=None, help="first N test digits (smoke runs)")
    ap.add_argument("--out", default="benchmarks/results/raw_events_cpu.json")
    args = ap.parse_args(argv)
    cache = args.cache_dir or tempfile.mkdtemp(prefix="spikeforge-raw-")
    cfg = DataConfig(name="nmnist-sim", cache_dir=cache)

    def open_split():
        if args.limit is None:
            return get_raw_events("nmnist-sim", cfg, "test")
        return ns.nmnist_sim_events(cfg, "test", limit=args.limit)

    path = ns.events_cache_path(ns.NMNISTSimParams(), "test", args.limit, cache)
    cold = not os.path.exists(path)
    t0 = time.perf_counter()
    open_split()
    first = time.perf_counter() - t0
    times, n_events = [], 0
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ds = open_split()
        n_events = sum(len(ds[i][0]) for i in range(len(ds)))
        times.append(time.perf_counter() - t0)
    result = {
        "benchmark": "raw_events nmnist-sim test split: load + one pass",
        "samples": len(ds),
        "events": n_events,
        "cache_file_bytes": os.path.getsize(path),
        "first_call_s": first,
        "first_call_generated": cold,
        "load_and_pass_s": {"median": float(np.median(times)), "all": times},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "command": "python benchmarks/raw_events.py " + " ".join(argv or sys.argv[1:]),
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
