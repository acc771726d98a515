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
        "--nproc",
        type=int,
        metavar="N",
        help="data-parallel over N processes: execs torchrun --nproc-per-node N -m spikeforge "
        "train with the other arguments (DDP; NCCL on GPUs, Gloo on the CPU)",
    )
    t.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDE_HELP)

    e = sub.add_parser(
        "eval",
        help="reload a finished run and print its test accuracy",
        description="Rebuild the model of RUN_DIR from config.yaml and model.safetensors "
        "and evaluate it on the test split; prints accuracy and firing rates as JSON.",
    )
    e.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by spikeforge train")
    e.add_argument(
        "--time-steps",
        metavar="T1,T2,...",
        help="evaluate at each of these numbers of time steps (event data re-binned from its "
        "events at each T); prints accuracy and mean firing rate per T",
    )

    s = sub.add_parser(
        "simulate",
        help="run a trained run's test split through the event-driven simulator",
        description="Lower the model of RUN_DIR to event-driven stages and run the test "
        "split's raw events through it (spikeforge.deploy); prints accuracy, synaptic "
        "operations and events per sample, events per second and latency to decision.",
    )
    s.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by spikeforge train")
    s.add_argument(
        "--event-driven",
        action="store_true",
        help="no clock: each event updates only the neurons it reaches (the default mode)",
    )
    s.add_argument(
        "--grid",
        action="store_true",
        help="events batched on the trained time grid instead (reproduces the clock-driven "
        "network exactly)",
    )
    s.add_argument("--dataset", metavar="NAME", help="event dataset (default: the run's)")
    s.add_argument("--limit", type=int, metavar="N", help="only the first N test samples")
    s.add_argument(
        "--delay",
        type=float,
        default=0.0,
        help="synaptic delay in the events' time unit (default 0: depth-first delivery)",
    )

    c = sub.add_parser(
        "config",
        help="print the resolved config (defaults <- FILE <- overrides) as YAML",
        description="Print the full config that spikeforge train would use.",
    )
    c.add_argument("--config", metavar="FILE", help="YAML config file to merge over the defaults")
    c.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDE_HELP)

    sub.add_parser(
        "models",
        help="list the registered models with parameter counts and input shapes",
        description="List every model name usable as model.name, its parameter count "
        "(built for 10 classes at its example input shape) and the inputs it takes.",
    )
    sub.add_parser(
        "datasets",
        help="list the registered datasets",
        description="List every dataset name usable as data.name / --dataset.",
    )
    return p


def _train(args) -> int:
    from rich.console import Console

    from spikeforge.train import Trainer, load_config

    if args.nproc is not None:
        return _exec_torchrun(args)
    from spikeforge.train import distributed

    ctx = distributed.setup(_device_key(args))
    console = None if args.quiet or not ctx.is_main else Console(stderr=True)
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
        out = ctx.broadcast(out)  # under torchrun every rank uses rank 0's clock
        if os.path.exists(os.path.join(out, "checkpoint.json")):
            raise SystemExit(
                f"{out} already holds a run; continue it with --resume {out} or pick another --out"
            )
        trainer = Trainer(cfg, out, console)
    metrics = trainer.fit()
    if not ctx.is_main:
        return 0
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


def _device_key(args) -> str:
    """The run's ``device`` key, read before the Trainer exists (to pick NCCL or Gloo)."""
    from spikeforge.train import load_config
    from spikeforge.train.engine import load_run_config

    if args.resume:
        return load_run_config(args.resume).device
    return load_config(args.config, list(args.overrides)).device


def _exec_torchrun(args) -> int:
    """``spikeforge train --nproc N ...``: replace this process by torchrun running
    ``-m spikeforge train ...`` in N processes (the rest of the arguments unchanged)."""
    from spikeforge.train.distributed import torchrun_argv

    argv = list(sys.argv[1:]) if args.argv is None else list(args.argv)
    # drop "--nproc N" / "--nproc=N" and the leading "train"
    rest, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc=") or (i == 0 and a == "train"):
            continue
        rest.append(a)
    if args.out is None and not args.resume:
        # one run directory for all ranks, named here rather than by N clocks
        rest += ["--out", os.path.join("runs", f"run-{time.strftime('%Y%m%d-%H%M%S')}")]
    cmd = torchrun_argv(args.nproc, rest)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(cmd[0], cmd)
    return 0  # pragma: no cover - execv does not return


def _models(args) -> int:
    from spikeforge.models import MODEL_INFO, MODELS, build_model
    from spikeforge.train.config import ModelConfig

    cfg = ModelConfig()
    print(f"{'name':18s} {'parameters':>11s}  example input  takes")
    for name in MODELS:
        info = MODEL_INFO[name]
        model = build_model(name, info.example_shape, 10, cfg, time_steps=4)
        n = sum(p.numel() for p in model.parameters())
        shape = "x".join(str(d) for d in info.example_shape)
        print(f"{name:18s} {n:11,d}  {shape:13s}  {info.input}")
    return 0


def _eval(args) -> int:
    from spikeforge.train import load_trained

    if args.time_steps:
        from spikeforge.train.evaluate import evaluate_time_steps

        try:
            steps = [int(t) for t in args.time_steps.split(",")]
        except ValueError:
            raise SystemExit(
                f"spikeforge eval: error: --time-steps takes integers like 1,2,4,8; "
                f"got {args.time_steps!r}"
            ) from None
        rows = evaluate_time_steps(args.run_dir, steps)
        print(json.dumps({"run_dir": args.run_dir, "time_steps": rows}, indent=1))
        return 0
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


def _simulate(args) -> int:
    from spikeforge.deploy.simulate import simulate_run

    if args.grid and args.event_driven:
        raise SystemExit("spikeforge simulate: error: choose --event-driven or --grid, not both")
    mode = "grid" if args.grid else "events"
    print(json.dumps(simulate_run(args.run_dir, mode, args.dataset, args.limit, args.delay),
                     indent=1))
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
    from spikeforge.models import ModelInputError
    from spikeforge.train.config import ConfigError

    args = _parser().parse_args(argv)
    args.argv = argv
    handler = {
        "train": _train,
        "eval": _eval,
        "config": _config,
        "datasets": _datasets,
        "models": _models,
        "simulate": _simulate,
    }
    try:
        return handler[args.command](args)
    except (ConfigError, FileNotFoundError, ModelInputError) as e:
        print(f"spikeforge {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
