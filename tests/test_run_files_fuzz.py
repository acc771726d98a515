"""Damaged run files: random and truncated bytes in ``config.yaml``,
``checkpoint.json``, the checkpoint tensors and ``model.safetensors`` give ``eval`` and
``train --resume`` a one-line error naming the file (or, where the damage changes
nothing they read, the right answer), never a traceback, never a changed file."""

from __future__ import annotations

import json
import random
import shutil

import pytest
from cli_helpers import TINY, assert_one_error_line, cli, snapshot

FILES = ["config.yaml", "checkpoint.json", "ckpt-epoch1.safetensors", "model.safetensors"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A finished one-epoch tiny run, and what ``eval`` said about it."""
    from spikeforge.cli import main

    out = tmp_path_factory.mktemp("fuzz") / "run"
    assert main(["train", "--quiet", "--out", str(out), "epochs=1", *TINY]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    return out, metrics["test_accuracy"]


def damages(data: bytes, seed: int) -> list[tuple[str, bytes]]:
    """Ways to damage ``data``: a digit changed (the file still parses), truncations,
    random bytes over a random stretch (in the first 200 bytes, where headers live,
    and anywhere), all bytes random, bytes appended."""
    rng = random.Random(seed)
    n = len(data)

    def overwrite(lo: int, hi: int) -> bytes:
        at = rng.randrange(lo, max(lo + 1, hi))
        k = rng.randint(1, 24)
        return data[:at] + bytes(rng.randrange(256) for _ in range(k)) + data[at + k :]

    def digit_changed() -> bytes:  # still valid YAML / JSON / header, another value
        at = rng.choice([i for i, c in enumerate(data) if 0x30 <= c <= 0x39])
        new = rng.choice([c for c in b"0123456789" if c != data[at]])
        return data[:at] + bytes([new]) + data[at + 1 :]

    return [
        ("one digit changed", digit_changed()),
        ("another digit changed", digit_changed()),
        ("empty", b""),
        ("first 7 bytes", data[:7]),
        ("cut in half", data[: n // 2]),
        ("last byte cut", data[:-1]),
        ("header bytes", overwrite(0, min(n, 200))),
        ("random stretch", overwrite(0, n)),
        ("random stretch in the second half", overwrite(n // 2, n)),
        ("all random", bytes(rng.randrange(256) for _ in range(n))),
        ("garbage appended", data + b"\x00\xff{]"),
    ]


def _check(capsys, argv, run, what, names, accuracy=None, must_fail=False):
    """Run the command; it must fail with one line holding one of ``names`` and leave
    every file as it was, or (unless ``must_fail``) succeed with the right accuracy."""
    before = snapshot(run)
    rc, out, err = cli(capsys, *argv)
    if rc == 0 and not must_fail:  # the damage changed nothing the command reads
        if accuracy is not None:
            assert json.loads(out)["test_accuracy"] == accuracy, (what, argv)
        return
    line = assert_one_error_line(rc, err)
    assert any(n in line for n in names), (what, line)
    assert snapshot(run) == before, (what, argv)


@pytest.mark.parametrize("damaged", FILES)
def test_damaged_files_are_named(base, tmp_path, capsys, damaged):
    run, accuracy = base
    original = (run / damaged).read_bytes()
    for i, (what, data) in enumerate(damages(original, seed=FILES.index(damaged))):
        if data == original:
            continue
        what = f"{damaged}, {what}"
        # A finished run: eval reads config.yaml and model.safetensors (weights are
        # checksummed, so any change there fails); --resume finds nothing to resume.
        done = tmp_path / f"done{i}"
        shutil.copytree(run, done)
        (done / damaged).write_bytes(data)
        _check(capsys, ["eval", str(done)], done, what, [damaged], accuracy,
               must_fail=damaged == "model.safetensors")
        _check(capsys, ["train", "--quiet", "--resume", str(done)], done, what,
               [damaged, "nothing to resume"], must_fail=True)
        if damaged == "model.safetensors":
            continue
        # A run stopped after its last checkpoint, before writing its weights:
        # --resume reads config.yaml, checkpoint.json and the checkpoint tensors, and
        # may succeed only where config.yaml kept its meaning.
        stopped = tmp_path / f"stopped{i}"
        shutil.copytree(run, stopped)
        (stopped / "model.safetensors").unlink()
        (stopped / "metrics.json").unlink()
        (stopped / damaged).write_bytes(data)
        _check(capsys, ["train", "--quiet", "--resume", str(stopped)], stopped, what,
               [damaged], must_fail=damaged != "config.yaml")
        if (stopped / "metrics.json").exists():
            metrics = json.loads((stopped / "metrics.json").read_text())
            assert metrics["test_accuracy"] == accuracy, what
