"""Events-to-frames throughput: spikeforge's ``events_to_frames`` vs Tonic's ``ToFrame``.

Both run in this process on the same synthetic event streams, interleaved
sample by sample, in several slicing modes:

- N-MNIST-like: 34x34x2 sensor, ~4,000-6,000 events over 300 ms, Tonic's
  N-MNIST dtype (int64 fields), 200 recordings;
- DVS-Gesture-like: 128x128x2, ~150,000-450,000 events over 6 s, Tonic's
  DVSGesture dtype (int16 x/y, bool p, int64 t), 8 recordings;
- SHD-like: 700 channels, one polarity, ~5,000-15,000 spikes over 1 s, 100 recordings.

Throughput is events / second over a whole pass of the recordings (median of
``--repeats`` passes); ours returns float32 frames, Tonic int16. Every pair of
outputs is checked equal before timing. Writes
``benchmarks/results/data_cpu.json``.

    python benchmarks/data.py [--repeats 7] [--out benchmarks/results/data_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from spikeforge.data.frames import events_to_frames  # noqa: E402

NMNIST_DTYPE = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
GESTURE_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])
SHD_DTYPE = np.dtype([("t", int), ("x", int), ("p", int)])


def make_streams(kind: str, seed: int = 0) -> tuple[list[np.ndarray], tuple[int, int, int]]:
    """Synthetic recordings: sorted uniform timestamps, uniform pixels, random polarity
    (for the frame conversion only the counts and sizes matter)."""
    rng = np.random.default_rng(seed)
    if kind == "nmnist":
        sensor, n_rec, n_range, t_max, dtype = (34, 34, 2), 200, (4000, 6000), 300_000, NMNIST_DTYPE
    elif kind == "dvs_gesture":
        sensor, n_rec, n_range, t_max, dtype = (
            (128, 128, 2), 8, (150_000, 450_000), 6_000_000, GESTURE_DTYPE,
        )  # fmt: skip
    else:
        sensor, n_rec, n_range, t_max, dtype = (700, 1, 1), 100, (5000, 15000), 1_000_000, SHD_DTYPE
    out = []
    for _ in range(n_rec):
        n = int(rng.integers(*n_range))
        ev = np.zeros(n, dtype=dtype)
        ev["t"] = np.sort(rng.integers(0, t_max, n))
        ev["x"] = rng.integers(0, sensor[0], n)
        if "y" in dtype.names:
            ev["y"] = rng.integers(0, sensor[1], n)
            ev["p"] = rng.integers(0, 2, n)
        else:
            ev["p"] = 1
        out.append(ev)
    return out, sensor


MODES = {
    "nmnist": [
        {"n_time_bins": 16},
        {"n_time_bins": 16, "overlap": 0.5},
        {"n_event_bins": 16},
        {"time_window": 10_000.0},
        {"event_count": 500, "overlap": 100, "include_incomplete": True},
    ],
    "dvs_gesture": [
        {"n_time_bins": 16},
        {"n_time_bins": 16, "overlap": 0.5},
        {"n_event_bins": 16},
        {"time_window": 100_000.0},
    ],
    "shd": [
        {"n_time_bins": 100},
        {"n_event_bins": 20},
    ],
}


def _pass(fn, streams) -> float:
    t0 = time.perf_counter()
    for ev in streams:
        fn(ev)
    return time.perf_counter() - t0


def run(repeats: int) -> dict:
    """Time both converters on every dataset and mode; returns the result dict."""
    import tonic
    from tonic.transforms import ToFrame

    results = []
    for kind, modes in MODES.items():
        streams, sensor = make_streams(kind)
        n_events = sum(len(s) for s in streams)
        for mode in modes:
            tonic_tf = ToFrame(sensor_size=sensor, **mode)

            def ours(ev, mode=mode, sensor=sensor):
                return events_to_frames(ev, sensor, **mode)

            def theirs(ev, tf=tonic_tf):
                return tf(ev)  # (for P = 1 Tonic sets p = 0 in place; harmless here)

            for ev in streams[:3]:  # same frames
                a, b = ours(ev), theirs(ev)
                b = b.reshape(a.shape)
                if not np.array_equal(a, b):
                    raise AssertionError(f"{kind} {mode}: frames differ from Tonic's")
            t_ours, t_tonic = [], []
            for _ in range(repeats):  # interleaved, so load spikes hit both
                t_tonic.append(_pass(theirs, streams))
                t_ours.append(_pass(ours, streams))
            med_ours, med_tonic = float(np.median(t_ours)), float(np.median(t_tonic))
            row = {
                "dataset": kind,
                "sensor_size": list(sensor),
                "mode": mode,
                "recordings": len(streams),
                "events": n_events,
                "frames_per_recording": int(ours(streams[0]).shape[0]),
                "ours_s": med_ours,
                "tonic_s": med_tonic,
                "ours_events_per_s": n_events / med_ours,
                "tonic_events_per_s": n_events / med_tonic,
                "speedup": med_tonic / med_ours,
            }
            results.append(row)
            print(
                f"{kind:12s} {json.dumps(mode):70s} ours {row['ours_events_per_s'] / 1e6:7.1f} "
                f"Mev/s  tonic {row['tonic_events_per_s'] / 1e6:7.1f} Mev/s  x{row['speedup']:.2f}",
                flush=True,
            )
    return {
        "benchmark": "events_to_frames vs tonic.transforms.ToFrame",
        "command": f"python benchmarks/data.py --repeats {repeats}",
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "tonic": tonic.__version__,
        "repeats": repeats,
        "timing": "median over repeats of one pass over all recordings, single thread",
        "results": results,
        "min_speedup": min(r["speedup"] for r in results),
    }


def main(argv=None) -> None:
    """Run the benchmark and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument(
        "--out",
        default=os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "results", "data_cpu.json"
        ),
    )
    args = ap.parse_args(argv)
    res = run(args.repeats)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print(f"min speedup x{res['min_speedup']:.2f}; wrote {args.out}")


if __name__ == "__main__":
    main()
