"""The ``spikeforge`` command line: a thin shell over the packages.

``spikeforge train`` trains from a YAML config (none: the default spiking CNN on
the embedded MNIST digits, offline, on the CPU); ``spikeforge eval`` reloads a
run and reports its test accuracy; ``spikeforge report`` writes a run's HTML
report (spikes, SOPs, energy, plots); ``spikeforge config`` prints the resolved
config; ``spikeforge datasets`` lists the registered datasets.

Errors: a user's mistake (a bad argument or config value, a run directory in the
way, a damaged run file, a diverged run, Ctrl-C) is one line ``error: ...`` on
stderr and exit status 2; any other exception is a bug, reported the same way in
one line with exit status 1. ``--debug`` (or ``SPIKEFORGE_DEBUG=1``) shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from spikeforge import __version__

OVERRIDE_HELP = (
    "config overrides as dotted key=value pairs, e.g. epochs=3 data.time_steps=8 "
    "model.neuron=plif optim.lr=0.001 (values are parsed as YAML)"
)


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line ``error: ...`` (exit 2), not usage + error."""

    def error(self, message: str):  # noqa: D401  (argparse's hook)
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _debug_requested(argv: list[str]) -> bool:
    env = os.environ.get("SPIKEFORGE_DEBUG", "").strip().lower()
    return "--debug" in argv or env not in ("", "0", "false", "no", "off")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="spikeforge",
        description="Spiking neural networks on PyTorch: train, evaluate, inspect.",
    )
    p.add_argument("--version", action="version", version=f"spikeforge {__version__}")
    debug_help = "show the Python traceback of an error (also: SPIKEFORGE_DEBUG=1)"
    p.add_argument("--debug", action="store_true", help=debug_help)
    # the same switch after the command name (spikeforge train --debug)
    debug = _Parser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

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

    e = sub.add_parser(
        "eval",
        parents=[debug],
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
        parents=[debug],
        help="print the resolved config (defaults <- FILE <- overrides) as YAML",
        description="Print the full config that spikeforge train would use.",
    )
    c.add_argument("--config", metavar="FILE", help="YAML config file to merge over the defaults")
    c.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDE_HELP)

    _convert_parser(sub, debug)
    _report_parser(sub, debug)
    _nir_parsers(sub, debug)
    sub.add_parser(
        "models",
        help="list the registered models with parameter counts and input shapes",
        description="List every model name usable as model.name, its parameter count "
        "(built for 10 classes at its example input shape) and the inputs it takes.",
    )
    sub.add_parser(
        "datasets",
        parents=[debug],
        help="list the registered datasets",
        description="List every dataset name usable as data.name / --dataset.",
    )
    return p


def _convert_parser(sub, debug) -> None:
    v = sub.add_parser(
        "convert",
        parents=[debug],
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
    import spikeforge.analysis  # noqa: F401  (adds spike / SOP / energy figures to metrics.json)
    from spikeforge.convert import convert_run

    out = args.out or f"{args.run_dir.rstrip('/')}-snn-T{args.time_steps}"
    m = convert_run(args.run_dir, out, args.time_steps, args.calibration, args.calib_samples,
                    args.threshold, args.percentile)
    keys = ("test_accuracy", "ann_test_accuracy", "calibration", "mean_firing_rate")
    print(json.dumps({"run_dir": out, "time_steps": args.time_steps, **{k: m[k] for k in keys}}))
    return 0


def _report_parser(sub, debug) -> None:
    r = sub.add_parser(
        "report",
        parents=[debug],
        help="write an HTML report of a run (spikes, SOPs, energy per layer, plots)",
        description="Reload the trained model of RUN_DIR, profile it on test samples and write "
        "RUN_DIR/report.html (one self-contained page: metrics, per-layer spikes / SOPs / "
        "energy, plots embedded) and the plots under RUN_DIR/report/; prints the summary.",
    )
    r.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by spikeforge train")
    r.add_argument("--out", metavar="FILE", help="HTML file to write (default RUN_DIR/report.html)")
    r.add_argument("--format", choices=("png", "svg"), default="png", help="plot format")
    r.add_argument("--samples", type=int, default=256, help="test samples to profile (256)")
    r.add_argument("--e-ac", type=float, default=0.9, help="energy per accumulate, pJ (0.9)")
    r.add_argument("--e-mac", type=float, default=4.6, help="energy per MAC, pJ (4.6)")


def _report(args) -> int:
    from rich.console import Console

    from spikeforge.analysis import EnergyModel, NoSpikingLayerError
    from spikeforge.analysis.report import make_report, print_summary

    try:
        report = make_report(
            args.run_dir, args.out, args.format, args.samples, EnergyModel(args.e_ac, args.e_mac)
        )
    except (NoSpikingLayerError, ValueError) as e:
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    print_summary(report, Console())
    return 0


def _train(args) -> int:
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
        _STOPPED_RUN[0] = args.resume
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
        _STOPPED_RUN[0] = out
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


def _nir_parsers(sub, debug) -> None:
    x = sub.add_parser(
        "export",
        parents=[debug],
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
        parents=[debug],
        help="make a run directory from a NIR file (then: spikeforge eval RUN_DIR)",
        usage="spikeforge import-nir FILE [KEY=VALUE ...] --out RUN_DIR [options]",
        description="Read a NIR file with the exporter's conventions into a run directory "
        "that spikeforge eval runs on the dataset of the config/overrides.",
    )
    # FILE and the overrides are one positional list, so that overrides may also follow
    # the options (argparse would take FILE and an empty override list together)
    i.add_argument("file_and_overrides", nargs="+", metavar="FILE [KEY=VALUE ...]",
                   help="NIR file to read, then " + OVERRIDE_HELP)
    i.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write")
    i.add_argument("--convention", default="nir", choices=("nir", "snntorch", "norse"))
    i.add_argument("--dt", type=float,
                   help="seconds per step (default: the file's, else the convention's)")
    i.add_argument("--reset", choices=("hard", "zero", "subtract"),
                   help="reset rule the file cannot state (default: the convention's)")
    i.add_argument("--config", metavar="FILE", help="YAML config naming the dataset to evaluate on")


def _export(args) -> int:
    from spikeforge.deploy import export_run

    print(json.dumps(export_run(args.run_dir, args.nir, args.dt, args.target), indent=1))
    return 0


def _import_nir(args) -> int:
    from spikeforge.deploy import import_run

    path, *overrides = args.file_and_overrides
    print(json.dumps(import_run(path, args.out, args.convention, args.dt, args.reset,
                                args.config, overrides)))
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
    import spikeforge.deploy  # noqa: F401  (registers model "nir": runs of import-nir)
    from spikeforge.models import MODEL_INFO, MODELS, build_model
    from spikeforge.train.config import ModelConfig

    cfg = ModelConfig()
    print(f"{'name':18s} {'parameters':>11s}  example input  takes")
    for name in MODELS:
        info = MODEL_INFO[name]
        shape = "x".join(str(d) for d in info.example_shape)
        try:
            model = build_model(name, info.example_shape, 10, cfg, time_steps=4)
            n = f"{sum(p.numel() for p in model.parameters()):,d}"
        except Exception:  # built from a file (nir) or another run (converted)
            n, shape = "-", "-"
        print(f"{name:18s} {n:>11s}  {shape:13s}  {info.input}")
    return 0


def _eval(args) -> int:
    import spikeforge.deploy  # noqa: F401  (registers model "nir": runs of import-nir)
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


#: The run directory of the ``train`` command in progress, for the Ctrl-C message.
_STOPPED_RUN: list[str | None] = [None]


def _one_line(e: BaseException) -> str:
    """The message of ``e`` on one line (YAML and OS errors quote multi-line text)."""
    return " ".join(str(e).split()) or type(e).__name__


def _interrupted() -> str:
    run = _STOPPED_RUN[0]
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``spikeforge`` console script: returns the exit status
    (0 done, 2 a user's mistake or Ctrl-C, 1 a bug), errors as one line on stderr."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = _debug_requested(argv)
    _STOPPED_RUN[0] = None
    try:
        args = _parser().parse_args(argv)
        if args.command in ("train", "eval", "convert"):
            from spikeforge.runtime import prepare_process

            prepare_process()  # before torch is imported: it reads OMP_WAIT_POLICY once
        args.argv = argv
        handler = {
            "train": _train,
            "eval": _eval,
            "config": _config,
            "datasets": _datasets,
            "models": _models,
            "report": _report,
            "convert": _convert,
            "export": _export,
            "import-nir": _import_nir,
            "simulate": _simulate,
        }
        return handler[args.command](args)
    except SystemExit as e:
        if e.code in (0, None):  # --help, --version: argparse's own exit
            raise
        return e.code if isinstance(e.code, int) else 2  # its one-line errors
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"error: {_interrupted()}", file=sys.stderr)
        return 2
    except Exception as e:
        if debug:
            raise
        from spikeforge.data.neuromorphic import DatasetNotFoundError
        from spikeforge.errors import SpikeforgeError

        if isinstance(e, SpikeforgeError):
            print(f"error: {_one_line(e)}", file=sys.stderr)
            return 2
        if isinstance(e, DatasetNotFoundError):  # its lines list the missing files
            print(f"error: {e}", file=sys.stderr)
            return 2
        if isinstance(e, OSError) and e.filename is not None:  # disk full, no permission
            print(f"error: {e.strerror or e}: {e.filename}", file=sys.stderr)
            return 2
        print(
            f"error: internal error, {type(e).__name__}: {_one_line(e)} "
            "(run again with --debug for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
