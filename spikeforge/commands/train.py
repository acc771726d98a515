"""``spikeforge train``: train from a YAML config, resume a stopped run, or run
data-parallel under torchrun (``--nproc``)."""

from __future__ import annotations

import json
import os
import sys
import time

from spikeforge.commands import OVERRIDE_HELP

#: The run directory of the ``train`` command in progress, for the Ctrl-C message.
STOPPED_RUN: list[str | None] = [None]


def add_parser(sub, debug) -> None:
    """Add ``train`` to the subparsers ``sub`` (``debug``: the shared ``--debug`` parent)."""
    t = sub.add_parser(
        "train",
        parents=[debug],
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
        help="continue a stopped run from its last checkpoint, or start one that stopped "
        "before its first checkpoint over from epoch 0 (takes no other config)",
    )
    t.add_argument(
        "--force",
        action="store_true",
        help="let --out replace a run of another config (only files a run wrote are "
        "deleted) or write beside files that no run wrote",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar or log on the terminal")
    t.add_argument(
        "--ann",
        action="store_true",
        help="train a ReLU network for conversion (model.name ann_cnn unless set to "
        "ann_mlp; model.activation=qcfs for QCFS; one time step); see spikeforge convert",
    )
    t.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="data-parallel over N processes: execs torchrun --nproc-per-node N -m spikeforge "
        "train with the other arguments (DDP; NCCL on GPUs, Gloo on the CPU)",
    )
    t.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDE_HELP)


def cmd_train(args) -> int:
    """``spikeforge train``: train (or resume) one run and print its summary as JSON."""
    from rich.console import Console

    import spikeforge.analysis  # noqa: F401  (adds spike / SOP / energy figures to metrics.json)
    from spikeforge.errors import RunDirError
    from spikeforge.train import Trainer, load_config
    from spikeforge.train.rundir import plan_new_run

    if args.nproc is not None:
        return _exec_torchrun(args)
    from spikeforge.train import distributed

    ctx = distributed.setup(_device_key(args))
    console = None if args.quiet or not ctx.is_main else Console(stderr=True)
    if args.resume is not None:
        if args.config or args.overrides or args.dataset or args.out is not None or args.force:
            raise RunDirError(
                "spikeforge train --resume RUN_DIR continues the run with its own config.yaml; "
                "do not pass --config, --dataset, --out, --force or overrides with it"
            )
        STOPPED_RUN[0] = args.resume
        trainer = Trainer.resume(args.resume, console)
    else:
        overrides = list(args.overrides)
        if args.dataset:
            overrides.append(f"data.name={args.dataset}")
        cfg = load_config(args.config, overrides)
        if args.ann:
            from spikeforge.convert.run import ann_training_config

            cfg = ann_training_config(cfg)
        out = args.out
        if out is None:
            out = os.path.join("runs", f"{cfg.data.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        out = ctx.broadcast(out)  # under torchrun every rank uses rank 0's clock
        if ctx.is_main:
            plan_new_run(out, cfg, args.force)  # refuse now, before the data are loaded
        STOPPED_RUN[0] = out
        trainer = Trainer(cfg, out, console, force=args.force)
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


def interrupted() -> str:
    """The Ctrl-C message: what the stopped ``train`` left and how to resume it."""
    run = STOPPED_RUN[0]
    if run is None or not os.path.exists(os.path.join(run, "config.yaml")):
        return "interrupted (Ctrl-C) before the run started; nothing was written"
    if not os.path.exists(os.path.join(run, "checkpoint.json")):
        return (
            f"interrupted (Ctrl-C) in the first epoch; {run} holds no checkpoint yet; "
            f"resume with `spikeforge train --resume {run}` (it starts over from epoch 0)"
        )
    return (
        f"interrupted (Ctrl-C); {run} keeps its last checkpoint; "
        f"resume with `spikeforge train --resume {run}`"
    )
