"""Every zoo model, tiny, on the embedded MNIST digits at one budget; and the default
CNN's loss and normalisation ablations through the real trainer.

``--part zoo``: each registered model at its tiny size (``tests/zoo_helpers.py``: the
widths the tests train; the papers' sizes are far too slow for a 2-core CPU) trained
for ``--epochs`` passes over the 4,000 training digits resized to 16x16 (VGG-11:
32x32, its five pools), T = 2, direct input, TET loss, Adam with cosine schedule,
batch 64, one thread; test accuracy on the 1,000 test digits and training seconds.

``--part ablation``: ``spikeforge train`` (the README's default run: default_cnn on
mnist5k, T = 4) for ``--ablation-epochs`` epochs with TET against mean-output
cross-entropy, and with BatchNorm (the default), tdBN and no normalisation.

    python benchmarks/zoo_digits.py   # -> benchmarks/results/zoo_digits_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from zoo_helpers import TINY, fit_digits, tiny_model  # noqa: E402

from spikeforge.train import Trainer, load_config  # noqa: E402

ABLATIONS = {
    "tet + bn (default)": [],
    "ce + bn": ["loss.name=ce"],
    "tet + tdbn": ["model.norm=tdbn"],
    "tet + no norm": ["model.norm=none"],
}


def zoo(args) -> list[dict]:
    rows = []
    torch.set_num_threads(1)
    for name in args.models.split(",") if args.models else TINY:
        side = TINY[name][1]
        torch.manual_seed(0)
        model = tiny_model(name)
        steps = args.epochs * 4000 // 64
        r = fit_digits(model, side, steps=steps, lr=args.lr)
        row = {"model": name, "tiny": TINY[name][0], "input": [1, side, side], "steps": steps,
               "parameters": sum(p.numel() for p in model.parameters()), **r}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def ablation(args) -> list[dict]:
    rows = []
    for label, overrides in ABLATIONS.items():
        with tempfile.TemporaryDirectory() as d:
            cfg = load_config(None, [f"epochs={args.ablation_epochs}", "progress=false",
                                     f"threads={args.threads}", *overrides])
            m = Trainer(cfg, os.path.join(d, "run")).fit()
        row = {"run": label, "overrides": overrides, "epochs": args.ablation_epochs,
               "test_accuracy": m["test_accuracy"], "best_test_accuracy": m["best_test_accuracy"],
               "test_accuracy_per_epoch": m["test_accuracy_per_epoch"], "seconds": m["seconds"]}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", default="zoo,ablation")
    p.add_argument("--models", default="")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--ablation-epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks/results/zoo_digits_cpu.json"))
    args = p.parse_args()
    result = {"benchmark": "zoo_digits", "command": "python " + " ".join(sys.argv),
              "torch": torch.__version__, "processor": platform.processor(),
              "load_average_start": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M")}
    parts = args.part.split(",")
    if "zoo" in parts:
        result["zoo"] = zoo(args)
    if "ablation" in parts:
        result["ablation"] = ablation(args)
    result["load_average_end"] = os.getloadavg()
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
