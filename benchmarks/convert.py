"""ANN -> SNN conversion on the embedded MNIST digits: accuracy against time steps T,
with and without layer-wise calibration.

Trains the zoo ANN (``spikeforge train --ann``'s config) on ``mnist5k`` (or reuses
``--ann-run``), converts it once per (T, calibration) with thresholds at the 99.9th
percentile of ``--calib-samples`` training activations, and evaluates each SNN on
the 1,000 test digits. Writes ``benchmarks/results/convert_mnist5k.json`` (with the
command), a PNG plot beside it, and prints a Markdown table.

    python benchmarks/convert.py                     # the recorded run
    python benchmarks/convert.py --epochs 1 --T 4 8 --methods none light   # smoke
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

from spikeforge.convert import calibrate, estimate_thresholds, snn_from_graph
from spikeforge.convert.run import ann_training_config, calibration_samples
from spikeforge.models.converted import ann_core, ann_graph
from spikeforge.train import Trainer, load_config, load_trained

HERE = os.path.dirname(os.path.abspath(__file__))


@torch.no_grad()
def snn_accuracy(snn, dataset, time_steps: int, batch_size: int = 250) -> float:
    """Test accuracy of a converted SNN on direct-encoded static inputs."""
    x_all, y_all = dataset.tensors[:2]
    correct = 0
    for i in range(0, len(x_all), batch_size):
        x = x_all[i : i + batch_size]
        out = snn(x.unsqueeze(0).expand(time_steps, *x.shape))
        correct += int((out.mean(0).argmax(1) == y_all[i : i + batch_size]).sum())
    return correct / len(x_all)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ann-run", help="reuse this finished ANN run instead of training one")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--channels", default="16,32", help="conv widths of ann_cnn")
    p.add_argument("--activation", default="relu", choices=("relu", "qcfs"))
    p.add_argument("--T", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128])
    p.add_argument("--methods", nargs="+",
                   default=["none_v0", "none", "light", "advanced", "advanced_bn"],
                   help="none_v0: plain conversion from a zero membrane (Diehl/Rueckauer); "
                   "none: with the initial membrane theta/2; the rest: calibration methods")
    p.add_argument("--calib-samples", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=os.path.join(HERE, "results", "convert_mnist5k.json"))
    p.add_argument("--combine", nargs="+", metavar="JSON",
                   help="only merge the rows of these partial runs (same --ann-run, other --T)")
    args = p.parse_args(argv)
    if args.combine:
        return combine(args.combine, args.out)
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    if args.ann_run:
        trainer = load_trained(args.ann_run)
    else:
        cfg = ann_training_config(load_config(None, [
            f"epochs={args.epochs}", f"model.channels=[{args.channels}]",
            f"model.activation={args.activation}", f"threads={args.threads}", "progress=false",
        ]))
        run_dir = tempfile.mkdtemp(prefix="convert-ann-")
        trainer = Trainer(cfg, run_dir)
        trainer.fit()
    train_s = time.perf_counter() - t0
    ann_acc = trainer.evaluate().accuracy
    print(f"ANN test accuracy {ann_acc:.4f} ({train_s:.0f} s)", flush=True)

    x_cal = calibration_samples(trainer, args.calib_samples)
    graph, folded = ann_graph(ann_core(trainer.model))
    thresholds = estimate_thresholds(graph, x_cal)
    results: dict[str, dict[str, float]] = {m: {} for m in args.methods}
    seconds: dict[str, dict[str, float]] = {m: {} for m in args.methods}
    record = {
        "command": "python benchmarks/convert.py " + " ".join(sys.argv[1:] if argv is None
                                                              else argv),
        "dataset": "mnist5k (4,000 train / 1,000 test, stratified)",
        "ann": {"model": "ann_cnn", "channels": args.channels, "activation": args.activation,
                "epochs": args.epochs if not args.ann_run else None,
                "run": args.ann_run, "test_accuracy": ann_acc, "train_seconds": round(train_s, 1)},
        "threshold": "99.9th percentile of calibration activations",
        "calib_samples": args.calib_samples,
        "accuracy": results,
        "calibration_seconds": seconds,
        "machine": f"{platform.machine()}, {args.threads} threads, torch {torch.__version__}",
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    for t in args.T:
        for method in args.methods:
            t1 = time.perf_counter()
            v0 = 0.0 if method == "none_v0" else 0.5
            snn = snn_from_graph(graph, x_cal.shape[1:], thresholds, v_init=v0)
            calibrate(snn, graph, x_cal, t, method.replace("none_v0", "none"), folded)
            t2 = time.perf_counter()
            acc = snn_accuracy(snn, trainer.bundle.test, t)
            results[method][str(t)] = acc
            seconds[method][str(t)] = round(t2 - t1, 2)
            print(f"T={t:4d} {method:12s} acc {acc:.4f}  calibration {t2 - t1:.1f} s", flush=True)
            with open(args.out, "w") as f:  # after every result: a partial run keeps its rows
                json.dump(record, f, indent=1)
    print(table(record))
    plot(record, os.path.splitext(args.out)[0] + ".png")
    return 0


def combine(paths: list[str], out: str) -> int:
    """Merge partial results of one ANN (runs with ``--ann-run`` and other ``--T``)."""
    records = [json.load(open(p)) for p in paths]
    base = records[0]
    for r in records[1:]:
        if r["ann"]["test_accuracy"] != base["ann"]["test_accuracy"]:
            raise SystemExit(f"{paths} hold different ANNs; combine runs of one --ann-run")
        for key in ("accuracy", "calibration_seconds"):
            for m, row in r[key].items():
                base[key].setdefault(m, {}).update(row)
    base["command"] = [r["command"] for r in records]
    with open(out, "w") as f:
        json.dump(base, f, indent=1)
    print(table(base))
    plot(base, os.path.splitext(out)[0] + ".png")
    return 0


def table(record: dict) -> str:
    """The accuracy table in Markdown (rows: calibration; columns: T)."""
    acc = record["accuracy"]
    ts = sorted({t for row in acc.values() for t in row}, key=int)
    lines = ["| calibration | " + " | ".join(f"T={t}" for t in ts) + " |",
             "| --- |" + " --- |" * len(ts)]
    for m, row in acc.items():
        cells = [f"{100 * row[t]:.1f}" if t in row else "-" for t in ts]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines.append(f"| ANN | {100 * record['ann']['test_accuracy']:.1f} (any T) |")
    return "\n".join(lines)


def plot(record: dict, path: str) -> None:
    """Accuracy against T (log axis), one line per calibration, the ANN dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for m, row in record["accuracy"].items():
        ts = sorted(row, key=int)
        ax.plot([int(t) for t in ts], [100 * row[t] for t in ts], marker="o", label=m)
    ax.axhline(100 * record["ann"]["test_accuracy"], color="k", ls="--", label="ANN")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("time steps T")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("ANN -> SNN on mnist5k: accuracy vs T")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
