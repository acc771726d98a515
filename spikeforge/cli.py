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

    _nir_parsers(sub)
    sub.add_parser(
        "datasets",
        help="list the registered datasets",
        description="List every dataset name usable as data.name / --dataset.",
    )
    return p


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


def _nir_parsers(sub) -> None:
    x = sub.add_parser(
        "export",
        help="write a trained run's network to a NIR file",
        description="Export the model of RUN_DIR to NIR (docs/nir.md): --target picks the "
        "parametrisation that reader loads with the same spikes; dt is written into the file.",
    )
    x.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by spikeforge train")
    x.add_argument("--nir", required=True, metavar="FILE", help="NIR file to write")
    x.add_argument("--dt", type=float, help="seconds per step (default: the target's)")
    x.add_argument("--target", default="nir", choices=("nir", "snntorch", "norse"))
    i = sub.add_parser(
        "import-nir",
        help="make a run directory from a NIR file (then: spikeforge eval RUN_DIR)",
        usage="spikeforge import-nir FILE [KEY=VALUE ...] --out RUN_DIR [options]",
        description="Read a NIR file with the exporter's conventions into a run directory "
        "that spikeforge eval runs on the dataset of the config/overrides.",
    )
    i.add_argument("file", metavar="FILE", help="NIR file to read")
    i.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write")
    i.add_argument("--convention", default="nir", choices=("nir", "snntorch", "norse"))
    i.add_argument("--dt", type=float,
                   help="seconds per step (default: the file's, else the convention's)")
    i.add_argument("--reset", choices=("hard", "zero", "subtract"),
                   help="reset rule the file cannot state (default: the convention's)")
    i.add_argument("--config", metavar="FILE", help="YAML config naming the dataset to evaluate on")
    i.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDE_HELP)


def _export(args) -> int:
    from spikeforge.deploy import export_run

    print(json.dumps(export_run(args.run_dir, args.nir, args.dt, args.target), indent=1))
    return 0


def _import_nir(args) -> int:
    from spikeforge.deploy import import_run

    print(json.dumps(import_run(args.file, args.out, args.convention, args.dt, args.reset,
                                args.config, args.overrides)))
    return 0


def _eval(args) -> int:
    import spikeforge.deploy  # noqa: F401  (registers model "nir": runs of import-nir)
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


def _nir_error():
    from spikeforge.deploy.graph import NIRGraphError

    return NIRGraphError


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``spikeforge`` console script."""
    from spikeforge.train.config import ConfigError

    args = _parser().parse_args(argv)
    handler = {"train": _train, "eval": _eval, "config": _config, "datasets": _datasets,
               "export": _export, "import-nir": _import_nir}
    try:
        return handler[args.command](args)
    except (ConfigError, FileNotFoundError, _nir_error()) as e:
        print(f"spikeforge {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
