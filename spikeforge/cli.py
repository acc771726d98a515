"""The ``spikeforge`` command line: a thin shell over the packages.

``spikeforge train`` trains from a YAML config (none: the default spiking CNN on
the embedded MNIST digits, offline, on the CPU); ``spikeforge eval`` reloads a
run and reports its test accuracy; ``spikeforge config`` prints the resolved
config; ``spikeforge datasets`` lists the registered datasets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

OVERRIDE_HELP = (
    "config overrides as dotted key=value pairs, e.g. epochs=3 data.time_steps=8 "
    "model.neuron=plif optim.lr=0.001 (values are parsed as YAML)"
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spikeforge",
        description="Spiking neural networks on PyTorch: train, evaluate, inspect.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    t = sub.add_parser(
        "train",
        help="train an SNN from a YAML config (default: spiking CNN on embedded MNIST digits)",
        description=(
            "Train a spiking network. With no arguments: the default convolutional LIF "
            "network on the 5,000 embedded MNIST digits, on the CPU, offline. Writes "
            "config.yaml, model.safetensors, metrics.json, train.log and a checkpoint "
            "every epoch to the run directory."
        ),
    )
    t.add_argument("--config", metavar="FILE", help="YAML config file (keys: spikeforge config)")
    t.add_argument(
        "--out",
        metavar="DIR",
        help="run directory to write (default: runs/<dataset>-<date>-<time>)",
    )
    t.add_argument("--dataset", metavar="NAME", help="dataset name, same as data.name=NAME")
    t.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a stopped run from its last checkpoint (takes no other config)",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar or log on the terminal")
    t.add_argument(
        "--ann",
        action="store_true",
        help="train a ReLU network for conversion (model.name ann_cnn unless set to "
        "ann_mlp; model.activation=qcfs for QCFS; one time step); see spikeforge convert",
    )
    t.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDE_HELP)

    e = sub.add_parser(
        "eval",
        help="reload a finished run and print its test accuracy",
        description="Rebuild the model of RUN_DIR from config.yaml and model.safetensors "
        "and evaluate it on the test split; prints accuracy and firing rates as JSON.",
    )
    e.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by spikeforge train")

    c = sub.add_parser(
        "config",
        help="print the resolved config (defaults <- FILE <- overrides) as YAML",
        description="Print the full config that spikeforge train would use.",
    )
    c.add_argument("--config", metavar="FILE", help="YAML config file to merge over the defaults")
    c.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDE_HELP)

    _convert_parser(sub)

    sub.add_parser(
        "datasets",
        help="list the registered datasets",
        description="List every dataset name usable as data.name / --dataset.",
    )
    return p


def _convert_parser(sub) -> None:
    v = sub.add_parser(
        "convert",
        help="convert the ANN of a run (spikeforge train --ann) into an SNN run directory",
        description="ANN -> SNN of IF neurons (reset by subtraction): BatchNorm folded, "
        "thresholds from activation statistics, optional layer-wise calibration (Li et al. "
        "ICML 2021, arXiv 2205.10121). Writes a run directory spikeforge eval accepts.",
    )
    v.add_argument("run_dir", metavar="RUN_DIR", help="a finished run of spikeforge train --ann")
    v.add_argument("--out", metavar="DIR",
                   help="run directory to write (default: RUN_DIR-snn-T<T>)")
    v.add_argument("--time-steps", type=int, default=32, metavar="T", help="time steps (32)")
    v.add_argument("--calib-samples", type=int, default=256, metavar="N",
                   help="training samples for thresholds and calibration (256)")
    v.add_argument("--calibration", default="none",
                   choices=("none", "light", "advanced", "advanced_bn"),
                   help="layer-wise calibration: none, light (bias), advanced (weights and "
                   "initial potential), advanced_bn (BN-aware weights, potential)")
    v.add_argument("--threshold", default="percentile", choices=("percentile", "max"),
                   help="threshold from the activations' percentile (default) or max")
    v.add_argument("--percentile", type=float, default=99.9, help="percentile (99.9)")


def _convert(args) -> int:
    from spikeforge.convert import convert_run

    out = args.out or f"{args.run_dir.rstrip('/')}-snn-T{args.time_steps}"
    m = convert_run(args.run_dir, out, args.time_steps, args.calibration, args.calib_samples,
                    args.threshold, args.percentile)
    keys = ("test_accuracy", "ann_test_accuracy", "calibration", "mean_firing_rate")
    print(json.dumps({"run_dir": out, "time_steps": args.time_steps, **{k: m[k] for k in keys}}))
    return 0


def _train(args) -> int:
    from rich.console import Console

    from spikeforge.train import Trainer, load_config

    console = None if args.quiet else Console(stderr=True)
    if args.resume:
        if args.config or args.overrides or args.dataset or args.out:
            raise SystemExit(
                "spikeforge train --resume RUN_DIR continues the run with its own config.yaml; "
                "do not pass --config, --dataset, --out or overrides with it"
            )
        trainer = Trainer.resume(args.resume, console)
    else:
        overrides = list(args.overrides)
        if args.dataset:
            overrides.append(f"data.name={args.dataset}")
        cfg = load_config(args.config, overrides)
        if args.ann:
            from spikeforge.convert.run import ann_training_config

            cfg = ann_training_config(cfg)
        out = args.out or os.path.join(
            "runs", f"{cfg.data.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        if os.path.exists(os.path.join(out, "checkpoint.json")):
            raise SystemExit(
                f"{out} already holds a run; continue it with --resume {out} or pick another --out"
            )
        trainer = Trainer(cfg, out, console)
    metrics = trainer.fit()
    print(
        json.dumps(
            {
                "run_dir": trainer.run_dir,
                "test_accuracy": metrics["test_accuracy"],
                "epochs": metrics["epochs"],
                "seconds": round(metrics["seconds"], 2),
                "mean_firing_rate": metrics["mean_firing_rate"],
            }
        )
    )
    return 0


def _eval(args) -> int:
    from spikeforge.train import load_trained

    trainer = load_trained(args.run_dir)
    result = trainer.evaluate()
    print(
        json.dumps(
            {
                "run_dir": args.run_dir,
                "test_accuracy": result.accuracy,
                "test_loss": result.loss,
                "firing_rate": result.firing_rate,
            },
            indent=1,
        )
    )
    return 0


def _config(args) -> int:
    import yaml

    from spikeforge.train.config import config_to_dict, load_config

    print(yaml.safe_dump(config_to_dict(load_config(args.config, args.overrides)), sort_keys=False))
    return 0


def _datasets(args) -> int:
    from spikeforge.data.registry import DESCRIPTIONS

    for name in sorted(DESCRIPTIONS):
        print(f"{name:14s} {DESCRIPTIONS[name]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``spikeforge`` console script."""
    from spikeforge.train.config import ConfigError

    args = _parser().parse_args(argv)
    handler = {"train": _train, "eval": _eval, "config": _config, "datasets": _datasets,
               "convert": _convert}
    try:
        return handler[args.command](args)
    except (ConfigError, FileNotFoundError) as e:
        print(f"spikeforge {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
