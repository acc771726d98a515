"""The ``spikeforge`` command line: a thin shell over the packages.

``spikeforge train`` trains from a YAML config (none: the default spiking CNN on
the embedded MNIST digits, offline, on the CPU); ``spikeforge eval`` reloads a
run and reports its test accuracy; ``spikeforge report`` writes a run's HTML
report (spikes, SOPs, energy, plots); ``spikeforge config`` prints the resolved
config; ``spikeforge datasets`` lists the registered datasets. This module
assembles the parser and reports errors; the commands themselves live in
:mod:`spikeforge.commands`, one module per group.

Errors: a user's mistake (a bad argument or config value, a run directory in the
way, a damaged run file, a diverged run, Ctrl-C) is one line ``error: ...`` on
stderr and exit status 2; any other exception is a bug, reported the same way in
one line with exit status 1. ``--debug`` (or ``SPIKEFORGE_DEBUG=1``) shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys

from spikeforge import __version__
from spikeforge.commands import OVERRIDE_HELP, convert, info, runs, train
from spikeforge.commands import one_line as _one_line

# The handlers, looked up here at each call (so a test may replace one).
from spikeforge.commands.convert import cmd_convert as _convert
from spikeforge.commands.convert import cmd_export as _export
from spikeforge.commands.convert import cmd_import_nir as _import_nir
from spikeforge.commands.info import cmd_config as _config
from spikeforge.commands.info import cmd_datasets as _datasets
from spikeforge.commands.info import cmd_models as _models
from spikeforge.commands.runs import cmd_eval as _eval
from spikeforge.commands.runs import cmd_report as _report
from spikeforge.commands.runs import cmd_simulate as _simulate
from spikeforge.commands.train import cmd_train as _train

__all__ = ["OVERRIDE_HELP", "main"]


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
    # in the order `spikeforge --help` lists them
    train.add_parser(sub, debug)
    runs.add_eval_parser(sub, debug)
    runs.add_simulate_parser(sub, debug)
    info.add_config_parser(sub, debug)
    convert.add_convert_parser(sub, debug)
    runs.add_report_parser(sub, debug)
    convert.add_nir_parsers(sub, debug)
    info.add_registry_parsers(sub, debug)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``spikeforge`` console script: returns the exit status
    (0 done, 2 a user's mistake or Ctrl-C, 1 a bug), errors as one line on stderr."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = _debug_requested(argv)
    train.STOPPED_RUN[0] = None
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
        print(f"error: {train.interrupted()}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (`spikeforge models | head`): not an error of ours. Point
        # stdout at /dev/null so that the interpreter's final flush does not raise again
        # (the recipe of Python's signal module documentation).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a process killed by it
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
