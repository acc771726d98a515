"""Errors that are the user's to fix: a bad config, a run directory in the way, a
damaged file, a diverged run. The ``spikeforge`` command prints any of them as one
line ``error: ...`` and exits with status 2; anything else is a bug and keeps its
traceback under ``--debug``.

The module imports nothing, so every layer may raise these.
"""

from __future__ import annotations


class SpikeforgeError(Exception):
    """Base of the errors the user can act on; the message says what and how."""


class RunDirError(SpikeforgeError):
    """A run directory that cannot be used as asked (``--out``, ``--resume``, ``eval``):
    it holds another run, files spikeforge did not write, or cannot be written."""


class DamagedFileError(SpikeforgeError):
    """A run file (``config.yaml``, ``checkpoint.json``, a checkpoint or the weights)
    that cannot be read, fails its checksum, or belongs to another run.

    Args:
        path: the file.
        problem: what is wrong with it.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class TrainingDiverged(SpikeforgeError, FloatingPointError):
    """The training loss became NaN or infinite; the message names epoch and step."""


class ConfigError(SpikeforgeError, ValueError):
    """A bad configuration: the message names the key and what was wrong."""
