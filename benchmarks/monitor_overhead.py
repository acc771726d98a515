"""Cost of the analysis monitors on an evaluation pass of the default model.

Builds the default model (``spikeforge train``'s config: the spiking CNN on the
embedded MNIST digits, T=4, direct encoding), then times a full pass over the
test split (1,000 digits, batches of 256, ``torch.no_grad``, eval mode) without
hooks and under :class:`~spikeforge.analysis.SpikeMonitor` +
:class:`~spikeforge.analysis.OpsMonitor` (everything ``metrics.json`` and
``spikeforge report`` read: spikes per step and per neuron, a raster, SOPs, MACs
and dense operations of every layer). The two variants alternate, ``--repeats``
times each after one warm-up of each; the overhead is the ratio of the medians.
With ``--run-dir`` the trained weights of a run are used (the spike counts, and so
the counting work, are those of a trained network). Writes
``benchmarks/results/monitor_overhead_<device>.json``.

    python benchmarks/monitor_overhead.py --threads 2 --repeats 7
    python benchmarks/monitor_overhead.py --samples 256 --repeats 2   # smoke run
    python benchmarks/monitor_overhead.py --threads 1 --samples 512 --repeats 2 --hook-times
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from neurons import device_name  # benchmarks/neurons.py, beside this script

from spikeforge.analysis import OpsMonitor, SpikeMonitor
from spikeforge.data import get_dataset
from spikeforge.functional.encoding import direct_encode
from spikeforge.models import build_model
from spikeforge.train import load_config, load_trained


def _model_and_batches(run_dir: str | None, samples: int, device: torch.device):
    if run_dir:
        trainer = load_trained(run_dir)
        cfg, model = trainer.cfg, trainer.model
    else:
        cfg = load_config(None, [])
        torch.manual_seed(cfg.seed)
        model = None
    bundle = get_dataset(cfg.data.name, cfg.data)
    if model is None:
        model = build_model(cfg.model.name, bundle.input_shape, bundle.num_classes, cfg.model)
    x, _ = bundle.test.tensors[:2]
    x = x[:samples].to(device)
    batches = [direct_encode(b, cfg.data.time_steps) for b in x.split(256)]
    return model.to(device).eval(), batches, cfg


HOOK_SECONDS: dict[str, float] = {}


def _time_hooks() -> None:
    """Wrap every monitor hook with a timer (``--hook-times``): the hooks' own seconds,
    free of the scheduling noise that the pass-to-pass difference carries."""
    for cls, tag in ((SpikeMonitor, "neurons:"), (OpsMonitor, "ops:")):
        orig = cls._hook

        def make(self, name, *a, _orig=orig, _tag=tag):
            hook = _orig(self, name, *a)

            def timed(*args):
                t0 = time.perf_counter()
                out = hook(*args)
                key = _tag + name
                HOOK_SECONDS[key] = HOOK_SECONDS.get(key, 0.0) + time.perf_counter() - t0
                return out

            return timed

        cls._hook = make


@torch.no_grad()
def _pass(model, batches, monitored: bool, device: torch.device) -> float:
    t0 = time.perf_counter()
    if monitored:
        with SpikeMonitor(model), OpsMonitor(model):
            for b in batches:
                model(b)
    else:
        for b in batches:
            model(b)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    """Parse the options, time both variants, print and write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--samples", type=int, default=1000, help="test digits per pass (1000)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--run-dir", help="use the trained weights of this run directory")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/...)")
    p.add_argument("--hook-times", action="store_true",
                   help="also time the hooks themselves (seconds per monitored pass)")
    args = p.parse_args()
    if args.hook_times:
        _time_hooks()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model, batches, cfg = _model_and_batches(args.run_dir, args.samples, device)
    _pass(model, batches, False, device)
    _pass(model, batches, True, device)  # warm-up: kernels compiled, fan-out maps cached
    HOOK_SECONDS.clear()
    plain, monitored = [], []
    for _ in range(args.repeats):
        plain.append(_pass(model, batches, False, device))
        monitored.append(_pass(model, batches, True, device))
    mp, mm = statistics.median(plain), statistics.median(monitored)
    result = {
        "benchmark": "monitor_overhead",
        "device": device_name(args.device),
        "torch": torch.__version__,
        "model": cfg.model.name,
        "weights": args.run_dir or "fresh initialisation (seeded)",
        "samples": sum(b.shape[1] for b in batches),
        "time_steps": cfg.data.time_steps,
        "repeats": args.repeats,
        "seconds_plain": plain,
        "seconds_monitored": monitored,
        "median_plain_s": mp,
        "median_monitored_s": mm,
        "overhead": mm / mp - 1.0,
        "hook_seconds_per_pass": {k: v / args.repeats for k, v in HOOK_SECONDS.items()} or None,
        "command": "python benchmarks/monitor_overhead.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v),
    }
    print(f"eval pass of {result['samples']} samples: plain {mp:.3f} s, monitored {mm:.3f} s, "
          f"overhead {100 * result['overhead']:.1f}%")
    if HOOK_SECONDS:
        hooks = sum(HOOK_SECONDS.values()) / args.repeats
        print(f"hooks' own time: {hooks:.3f} s per pass ({100 * hooks / mp:.1f}% of plain)")
    here = os.path.dirname(os.path.abspath(__file__))
    out = args.out or os.path.join(here, "results", f"monitor_overhead_{args.device}.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
