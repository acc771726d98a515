"""End-to-end benchmark of the default ``spikeforge train`` run on this machine.

Runs the default config (the one ``spikeforge train`` uses with no arguments)
once per neuron backend and reports, per backend: best and final test accuracy,
training seconds until the test accuracy first reached 97%, and the median
seconds per epoch (training only, evaluation excluded — the convention of
``docs/anchors.md``), beside the anchor figures of SpikingJelly 2.0 and snnTorch
measured on 2026-11-23 on the 2-core VMs of that week (processor not recorded; the
kernel benchmarks of those days ran on AMD EPYC Zen 5): on another processor they are a
guide, not a same-machine comparison. Writes
``benchmarks/results/train_default_<device>.json``.

    python benchmarks/train_default.py                      # fused kernel vs reference
    python benchmarks/train_default.py --backends auto      # the default only
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import time

import torch
from neurons import device_name  # benchmarks/neurons.py, beside this script

from spikeforge.train import Trainer, load_config

# docs/anchors.md, "Default training on the embedded digits", 2 CPU cores, torch 2.13.
ANCHORS = {
    "SpikingJelly 2.0 LIF, T=4, MSE on firing rate": {"best": 0.975, "t97": 39, "s_epoch": 4.2},
    "snnTorch 1.0 Leaky, T=4, mse_count_loss": {"best": 0.978, "t97": 108, "s_epoch": 4.7},
}


def epoch_figures(per_epoch: list[float], accuracies: list[float]) -> dict:
    """From the training seconds of each epoch and the test accuracy after it: the
    seconds until the accuracy first reached 97% (``None`` if never) and the median
    epoch time."""
    cum_seconds = list(itertools.accumulate(per_epoch))
    return {
        "seconds_to_97": next((s for s, a in zip(cum_seconds, accuracies) if a >= 0.97), None),
        "median_seconds_per_epoch": statistics.median(per_epoch),
    }


def print_table(rows: list[dict], name_key: str) -> None:
    """One line per run: best and final accuracy, seconds to 97%, seconds per epoch."""
    print(f"{name_key:20s} {'best acc':>8s} {'final':>7s} {'t to 97%':>9s} {'s/epoch':>8s}")
    for r in rows:
        t97 = f"{r['seconds_to_97']:.1f}" if r["seconds_to_97"] is not None else "never"
        print(f"{r[name_key]:20s} {r['best_test_accuracy']:8.4f} {r['final_test_accuracy']:7.4f} "
              f"{t97:>9s} {r['median_seconds_per_epoch']:8.2f}")


def write_result(result: dict, out_dir: str, filename: str) -> None:
    """``result`` plus the machine, torch and date, as JSON at ``out_dir/filename``."""
    result = {**result, "machine": device_name("cpu"), "cpu_count": os.cpu_count(),
              "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, filename)
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {path}")


def run(backend: str, threads: int, overrides: list[str]) -> dict:
    """Train the default config with ``model.backend=backend``; return its figures."""
    cfg = load_config(None, [f"model.backend={backend}", f"threads={threads}",
                             "progress=false", *overrides])
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        m = Trainer(cfg, os.path.join(d, "run")).fit()
        wall = time.perf_counter() - t0
    return {
        "backend": backend,
        "final_test_accuracy": m["test_accuracy"],
        "best_test_accuracy": m["best_test_accuracy"],
        "test_accuracy_per_epoch": m["test_accuracy_per_epoch"],
        **epoch_figures(m["train_seconds_per_epoch"], m["test_accuracy_per_epoch"]),
        "train_seconds": m["seconds"],
        "wall_seconds_with_eval": wall,
        "mean_firing_rate": m["mean_firing_rate"],
    }


def main() -> None:
    """Command-line entry: run, print a table, write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default="auto,reference",
                   help="comma-separated model.backend values to compare")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    p.add_argument("overrides", nargs="*", help="extra config overrides (key=value)")
    args = p.parse_args()
    rows = [run(b, args.threads, args.overrides) for b in args.backends.split(",")]
    print_table(rows, "backend")
    for name, a in ANCHORS.items():
        print(f"anchor: {name}: best {a['best']}, 97% after {a['t97']} s, {a['s_epoch']} s/epoch")
    if len(rows) > 1:
        base = {r["backend"]: r for r in rows}
        if "reference" in base:
            for r in rows:
                r["speedup_vs_reference"] = (
                    base["reference"]["median_seconds_per_epoch"] / r["median_seconds_per_epoch"]
                )
                print(f"{r['backend']}: {r['speedup_vs_reference']:.2f}x the reference's speed "
                      "per epoch")
    write_result({
        "benchmark": "train_default",
        "command": "python benchmarks/train_default.py " + " ".join(
            [f"--backends {args.backends}", f"--threads {args.threads}", *args.overrides]),
        "runs": rows,
        "anchors": ANCHORS,
    }, args.out, "train_default_cpu.json")

if __name__ == "__main__":
    main()
