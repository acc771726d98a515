"""Commands that use a trained run directory: ``spikeforge eval`` (test accuracy, also
over several ``T``), ``spikeforge simulate`` (the event-driven simulator) and
``spikeforge report`` (the HTML report of spikes, SOPs and energy)."""

from __future__ import annotations

import json
import sys

from spikeforge.commands import one_line

RUN_DIR_HELP = "a run directory written by spikeforge train"


def add_eval_parser(sub, debug) -> None:
    """Add ``eval`` to the subparsers ``sub`` (``debug``: the shared ``--debug`` parent)."""
    e = sub.add_parser(
        "eval",
        parents=[debug],
        help="reload a finished run and print its test accuracy",
        description="Rebuild the model of RUN_DIR from config.yaml and model.safetensors "
        "and evaluate it on the test split; prints accuracy and firing rates as JSON.",
    )
    e.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    e.add_argument(
        "--time-steps",
        metavar="T1,T2,...",
        help="evaluate at each of these numbers of time steps (event data re-binned from its "
        "events at each T); prints accuracy and mean firing rate per T",
    )


def add_simulate_parser(sub, debug) -> None:
    """Add ``simulate`` to the subparsers ``sub`` (``debug``: the shared ``--debug`` parent)."""
    s = sub.add_parser(
        "simulate",
        parents=[debug],
        help="run a trained run's test split through the event-driven simulator",
        description="Lower the model of RUN_DIR to event-driven stages and run the test "
        "split's raw events through it (spikeforge.deploy); prints accuracy, synaptic "
        "operations and events per sample, events per second and latency to decision.",
    )
    s.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
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


def add_report_parser(sub, debug) -> None:
    """Add ``report`` to the subparsers ``sub`` (``debug``: the shared ``--debug`` parent)."""
    r = sub.add_parser(
        "report",
        parents=[debug],
        help="write an HTML report of a run (spikes, SOPs, energy per layer, plots)",
        description="Reload the trained model of RUN_DIR, profile it on test samples and write "
        "RUN_DIR/report.html (one self-contained page: metrics, per-layer spikes / SOPs / "
        "energy, plots embedded) and the plots under RUN_DIR/report/; prints the summary.",
    )
    r.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    r.add_argument("--out", metavar="FILE", help="HTML file to write (default RUN_DIR/report.html)")
    r.add_argument("--format", choices=("png", "svg"), default="png", help="plot format")
    r.add_argument("--samples", type=int, default=256, help="test samples to profile (256)")
    r.add_argument("--e-ac", type=float, default=0.9, help="energy per accumulate, pJ (0.9)")
    r.add_argument("--e-mac", type=float, default=4.6, help="energy per MAC, pJ (4.6)")


def cmd_eval(args) -> int:
    """``spikeforge eval``: the test accuracy, loss and firing rates of a finished run (or
    accuracy and firing rate per ``--time-steps`` entry) as JSON."""
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


def cmd_simulate(args) -> int:
    """``spikeforge simulate``: a run's test split through the event-driven simulator."""
    from spikeforge.deploy.simulate import simulate_run

    if args.grid and args.event_driven:
        raise SystemExit("spikeforge simulate: error: choose --event-driven or --grid, not both")
    mode = "grid" if args.grid else "events"
    print(json.dumps(simulate_run(args.run_dir, mode, args.dataset, args.limit, args.delay),
                     indent=1))
    return 0


def cmd_report(args) -> int:
    """``spikeforge report``: write a run's HTML report and print its summary."""
    from rich.console import Console

    from spikeforge.analysis import EnergyModel, NoSpikingLayerError
    from spikeforge.analysis.report import make_report, print_summary

    try:
        report = make_report(
            args.run_dir, args.out, args.format, args.samples, EnergyModel(args.e_ac, args.e_mac)
        )
    except (NoSpikingLayerError, ValueError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    print_summary(report, Console())
    return 0
