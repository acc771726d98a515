"""Helpers shared by the CLI error tests: a tiny run, the CLI in-process, file snapshots."""

from __future__ import annotations

import os

from spikeforge.cli import main

#: The smallest run that trains for real: the 8x8 digits, a 32-unit spiking MLP,
#: the reference neuron loop (no kernel to compile), one thread.
TINY = [
    "data.name=digits8x8",
    "data.augment=[]",
    "model.name=mlp",
    "model.hidden=32",
    "model.backend=reference",
    "threads=1",
    "progress=false",
]


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``spikeforge argv`` in this process; ``(exit status, stdout, stderr)``."""
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def snapshot(root) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root``: relative path -> (bytes, mtime in ns)."""
    files = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                files[os.path.relpath(p, root)] = (f.read(), os.stat(p).st_mtime_ns)
    return files


def assert_one_error_line(rc: int, err: str, *needles: str) -> str:
    """Exit status 2, stderr exactly one line starting ``error:`` that holds every
    needle, and no traceback; returns the line."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, (rc, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]
