"""Commands that make a run from, or into, another form: ``spikeforge convert`` (the
ANN of a ``train --ann`` run into an SNN run), ``spikeforge export`` (a run to a NIR
file) and ``spikeforge import-nir`` (a NIR file to a run)."""

from __future__ import annotations

import json

from spikeforge.commands import OVERRIDE_HELP
from spikeforge.commands.runs import RUN_DIR_HELP


def add_convert_parser(sub, debug) -> None:
    """Add ``convert`` to the subparsers ``sub`` (``debug``: the shared ``--debug`` parent)."""
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


def add_nir_parsers(sub, debug) -> None:
    """Add ``export`` and ``import-nir`` to the subparsers ``sub`` (``debug``: the shared
    ``--debug`` parent)."""
    x = sub.add_parser(
        "export",
        parents=[debug],
        help="write a trained run's network to a NIR file",
        description="Export the model of RUN_DIR to NIR (docs/nir.md): --target picks the "
        "parametrisation that reader loads with the same spikes; dt is written into the file.",
    )
    x.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
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


def cmd_convert(args) -> int:
    """``spikeforge convert``: write the SNN run of an ANN run and print its summary."""
    import spikeforge.analysis  # noqa: F401  (adds spike / SOP / energy figures to metrics.json)
    from spikeforge.convert import convert_run

    out = args.out or f"{args.run_dir.rstrip('/')}-snn-T{args.time_steps}"
    m = convert_run(args.run_dir, out, args.time_steps, args.calibration, args.calib_samples,
                    args.threshold, args.percentile)
    keys = ("test_accuracy", "ann_test_accuracy", "calibration", "mean_firing_rate")
    print(json.dumps({"run_dir": out, "time_steps": args.time_steps, **{k: m[k] for k in keys}}))
    return 0


def cmd_export(args) -> int:
    """``spikeforge export``: write a run's network to a NIR file."""
    from spikeforge.deploy import export_run

    print(json.dumps(export_run(args.run_dir, args.nir, args.dt, args.target), indent=1))
    return 0


def cmd_import_nir(args) -> int:
    """``spikeforge import-nir``: make a run directory from a NIR file."""
    from spikeforge.deploy import import_run

    path, *overrides = args.file_and_overrides
    print(json.dumps(import_run(path, args.out, args.convention, args.dt, args.reset,
                                args.config, overrides)))
    return 0
