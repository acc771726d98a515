"""Every user mistake is one line ``error: ...`` on stderr, exit status 2, naming the
key, file or value, and changes no existing file (issue 19)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from cli_helpers import TINY, assert_one_error_line, cli, snapshot

from spikeforge import __version__
from spikeforge.functional import loss as loss_module
from spikeforge.ops.dispatch import unavailable_reason
from spikeforge.train import Trainer


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished one-epoch run of the tiny config, and the directory that holds it."""
    root = tmp_path_factory.mktemp("cli")
    out = root / "done"
    from spikeforge.cli import main

    assert main(["train", "--quiet", "--out", str(out), "epochs=1", *TINY]) == 0
    return root, out


CONFIG_MISTAKES = [
    (["--dataset", "bogus"], ["data.name", "'bogus'", "mnist5k"]),
    (["model.name=resnet"], ["model.name", "'resnet'", "default_cnn"]),
    (["model.neuron=hh"], ["model.neuron", "'hh'", "lif"]),
    (["loss.name=hinge"], ["loss.name", "'hinge'", "tet"]),
    (["data.augment=[rotate:3]"], ["data.augment[0]", "'rotate:3'", "translate:N"]),
    (["data.augment=[cutout]"], ["data.augment[0]", "cutout:N"]),
    (["optim.weight_decay=-0.1"], ["optim.weight_decay", ">= 0", "-0.1"]),
    (["model.hidden=0"], ["model.hidden", ">= 1", "0"]),
    (["optim.lr=.inf"], ["optim.lr", "> 0", "finite", "inf"]),
    (["optim.lr=.nan"], ["optim.lr", "nan"]),
    (["model.tau=0.5"], ["model.tau", ">= 1"]),
    (["seed=-3"], ["seed", "-3"]),
    (["data.bogus=1"], ["unknown config key 'data.bogus'", "time_steps"]),
    (["epochs"], ["epochs", "key.sub=value"]),
    (["--config", "/nonexistent/c.yaml"], ["config file not found", "/nonexistent/c.yaml"]),
    (["--config", "/"], ["cannot read config file /"]),
    (["model.v_reset=1.5"], ["model.v_reset", "< 1"]),
    (["optim.momentum=1"], ["optim.momentum", "< 1"]),
    (["model.alpha=-2"], ["model.alpha", "> 0"]),
    (["data.denoise_time=.inf"], ["data.denoise_time", "finite"]),
]
if torch.cuda.is_available():  # pragma: no cover  (CPU-only CI)
    NO_DEVICE = []
else:
    NO_DEVICE = [(["device=cuda"], ["device", "'cuda'", "device=cpu"])]
if unavailable_reason("triton", torch.device("cpu")) is not None:
    NO_DEVICE.append((["model.backend=triton"], ["model.backend=triton", "reference"]))


@pytest.fixture(autouse=True)
def _no_triton_interpreter(monkeypatch):
    """The Triton tests set TRITON_INTERPRET=1 when they are collected; here it would make
    backend=triton available on the CPU (and train through the interpreter)."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)


@pytest.mark.parametrize("command", ["train", "config"])
@pytest.mark.parametrize("args, needles", CONFIG_MISTAKES + NO_DEVICE)
def test_config_mistakes_are_one_line_errors(finished, capsys, command, args, needles):
    """``spikeforge config`` rejects what ``train`` would, before anything is written."""
    root, _ = finished
    before = snapshot(root)
    if command == "config" and args[0] == "--dataset":
        args = ["data.name=bogus"]
    extra = ["--quiet", "--out", str(root / "new")] if command == "train" else []
    rc, out, err = cli(capsys, command, *extra, *args)
    assert_one_error_line(rc, err, *needles)
    assert out == ""
    assert snapshot(root) == before and not (root / "new").exists()


def test_run_directory_mistakes(finished, tmp_path, capsys):
    root, run = finished
    before = snapshot(root)
    (tmp_path / "file").write_text("x")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    (tmp_path / "notes" / "metrics.json").write_text("{}")
    cases = [
        # the same config finished there; another config there
        (["train", "--out", str(run), "epochs=1", *TINY], ["finished run", "spikeforge eval"]),
        (["train", "--out", str(run), "epochs=2", *TINY],
         ["another config", "epochs: 1 there, 2 here", "--force"]),
        # --out is a file, lies under a file, or is no name at all
        (["train", "--out", str(tmp_path / "file"), *TINY], ["is a file"]),
        (["train", "--out", str(tmp_path / "file" / "run"), *TINY], ["is a file"]),
        (["train", "--out", "a\0b", *TINY], ["not a usable directory name"]),
        (["train", "--out", "", *TINY], ["not a usable directory name"]),
        # files no run wrote: refused, and --force never writes over one of them
        (["train", "--out", str(tmp_path / "notes"), *TINY],
         ["holds no spikeforge run", "todo.txt", "--force"]),
        (["train", "--force", "--out", str(tmp_path / "notes"), *TINY],
         ["metrics.json", "no spikeforge run wrote"]),
        # --resume takes no other config, a run that finished has nothing to resume
        (["train", "--resume", str(run), "epochs=3"], ["own config.yaml", "overrides"]),
        (["train", "--resume", str(run)], ["finished", "spikeforge eval"]),
        (["train", "--resume", str(tmp_path / "notes")], ["not a spikeforge run directory"]),
        (["eval", str(tmp_path / "nowhere")], ["not a spikeforge run directory"]),
        (["eval", str(tmp_path / "notes")], ["no config.yaml"]),
        (["train", "--bogus"], ["unrecognized arguments: --bogus"]),
        (["bogus"], ["invalid choice: 'bogus'"]),
    ]
    mine = snapshot(tmp_path)
    for argv, needles in cases:
        rc, out, err = cli(capsys, *argv)
        assert_one_error_line(rc, err, *needles)
        assert snapshot(root) == before and snapshot(tmp_path) == mine, argv


def test_read_only_out(tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root may write anyway: make the check see what a user would
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: str(p) != str(ro) and real_access(
            p, mode))
    try:
        for out in (ro, ro / "run"):
            rc, _, err = cli(capsys, "train", "--out", str(out), *TINY)
            assert_one_error_line(rc, err, "not writable", str(ro))
        assert os.listdir(ro) == []
    finally:
        ro.chmod(0o755)


def test_incomplete_run_of_another_config_is_offered_resume_or_force(tmp_path, capsys,
                                                                     monkeypatch):
    """A first run that stops in epoch 1 (NaN loss) leaves its config and no checkpoint:
    a second run of another model to the same --out is refused and told about
    --resume and --force; --resume starts the first run over with its own config."""
    out = tmp_path / "run"
    real = loss_module.LOSSES["ce"]
    calls = []

    def nan_at_third_step(outputs, target, **params):
        calls.append(1)
        value = real(outputs, target, **params)
        return value * float("nan") if len(calls) == 3 else value

    monkeypatch.setitem(loss_module.LOSSES, "ce", nan_at_third_step)
    rc, _, err = cli(capsys, "train", "--quiet", "--out", str(out), "epochs=2", "loss.name=ce",
                     *TINY)
    assert_one_error_line(rc, err, "nan", "epoch 1, step 3 of 45", "no checkpoint", "optim.lr")
    assert sorted(os.listdir(out)) == ["config.yaml", "train.log"]
    monkeypatch.setitem(loss_module.LOSSES, "ce", real)
    before = snapshot(out)
    rc, _, err = cli(capsys, "train", "--quiet", "--out", str(out), "epochs=2", *TINY[:2],
                     "model.name=default_cnn", "model.channels=[4]", *TINY[3:])
    assert_one_error_line(rc, err, "incomplete run", "model.name: 'mlp' there, 'default_cnn'",
                          f"--resume {out}", "--force")
    assert snapshot(out) == before
    rc, out_json, err = cli(capsys, "train", "--quiet", "--resume", str(out))
    assert rc == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "mlp" and metrics["epochs"] == 2
    assert cli(capsys, "eval", str(out))[0] == 0


def test_nan_loss_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    real = loss_module.LOSSES["ce"]
    calls = []

    def nan_in_epoch_two(outputs, target, **params):
        calls.extend([1] if outputs.requires_grad else [])  # training steps only
        value = real(outputs, target, **params)
        return value + float("inf") if len(calls) == 45 + 4 else value

    monkeypatch.setitem(loss_module.LOSSES, "ce", nan_in_epoch_two)
    rc, _, err = cli(capsys, "train", "--quiet", "--out", str(out), "epochs=3", "loss.name=ce",
                     *TINY)
    assert_one_error_line(rc, err, "inf", "epoch 2, step 4 of 45",
                          "checkpoint of epoch 1", str(out))
    pointer = json.loads((out / "checkpoint.json").read_text())
    assert pointer["epoch"] == 1 and not (out / "model.safetensors").exists()


def test_version_and_debug(capsys, monkeypatch):
    with pytest.raises(SystemExit) as e:
        from spikeforge.cli import main

        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"spikeforge {__version__}"
    from spikeforge.train.config import ConfigError

    with pytest.raises(ConfigError, match="data.name"):
        main(["--debug", "config", "data.name=bogus"])
    with pytest.raises(ConfigError, match="model.hidden"):
        main(["config", "--debug", "model.hidden=0"])
    monkeypatch.setenv("SPIKEFORGE_DEBUG", "1")
    with pytest.raises(ConfigError, match="optim.lr"):
        main(["config", "optim.lr=-1"])


def test_a_bug_is_one_line_with_status_1(capsys, monkeypatch):
    from spikeforge import cli as cli_module

    def broken(args):
        raise RuntimeError("something inside\nbroke")

    monkeypatch.setattr(cli_module, "_datasets", broken)
    rc, _, err = cli(capsys, "datasets")
    assert rc == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: internal error, RuntimeError: something inside broke")
    assert "--debug" in err


def _spawn(out, *overrides):
    cmd = [sys.executable, "-m", "spikeforge.cli", "train", "--quiet", "--out", str(out),
           *TINY, *overrides]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(proc, path, timeout=120.0):
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.002)


def test_sigkill_in_epoch_1_then_another_model_and_ctrl_c(tmp_path, capsys):
    """Two processes at once: one killed with SIGKILL in epoch 1, then a run of another
    model into its directory (refused; --force gives one consistent run that eval
    accepts); one stopped with Ctrl-C after its first checkpoint (one line naming the
    resume command, exit 2, the checkpoint kept)."""
    killed, stopped = tmp_path / "killed", tmp_path / "stopped"
    pk = _spawn(killed, "epochs=3", "model.hidden=512")  # a slower first epoch
    ps = _spawn(stopped, "epochs=30")
    _wait_for(pk, killed / "train.log")
    pk.send_signal(signal.SIGKILL)
    pk.wait()
    _wait_for(ps, stopped / "checkpoint.json")
    ps.send_signal(signal.SIGINT)
    err = ps.communicate(timeout=60)[1].decode()
    assert_one_error_line(ps.returncode, err, "interrupted", f"--resume {stopped}")
    assert not (stopped / "model.safetensors").exists()

    assert not (killed / "checkpoint.json").exists(), "the first epoch ended before the kill"
    other = ["model.name=default_cnn", "model.channels=[4]"]
    before = snapshot(killed)
    rc, _, err = cli(capsys, "train", "--quiet", "--out", str(killed), "epochs=1", *TINY,
                     *other)
    assert_one_error_line(rc, err, "incomplete run", "another config", "--resume", "--force")
    assert snapshot(killed) == before
    (killed / "mine.txt").write_text("not the run's")
    rc, _, err = cli(capsys, "train", "--quiet", "--force", "--out", str(killed), "epochs=1",
                     *TINY, *other)
    assert rc == 0, err
    assert (killed / "mine.txt").read_text() == "not the run's"
    rc, out, _ = cli(capsys, "eval", str(killed))
    metrics = json.loads((killed / "metrics.json").read_text())
    assert rc == 0 and json.loads(out)["test_accuracy"] == metrics["test_accuracy"]
    assert metrics["model"] == "default_cnn"
    assert "name: default_cnn" in (killed / "config.yaml").read_text()

    # the interrupted run resumes from its checkpoint (tests/test_train.py runs one to the end)
    resumed = Trainer.resume(str(stopped))
    assert resumed.plan == "resume" and resumed.start_epoch >= 1


def test_eval_refuses_weights_of_another_run(finished, tmp_path, capsys):
    """Weights copied in from a run of another config: named, never evaluated."""
    _, run = finished
    mixed = tmp_path / "mixed"
    shutil.copytree(run, mixed)
    rc, _, err = cli(capsys, "train", "--quiet", "--out", str(tmp_path / "wide"), "epochs=1",
                     *TINY, "model.hidden=48")
    assert rc == 0, err
    shutil.copy(tmp_path / "wide" / "model.safetensors", mixed / "model.safetensors")
    before = snapshot(mixed)
    rc, _, err = cli(capsys, "eval", str(mixed))
    assert_one_error_line(rc, err, "model.safetensors", "another run", "config.yaml")
    assert snapshot(mixed) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_cuda_run_on_a_cpu_machine_is_named_not_called_damaged(finished, tmp_path, capsys):
    _, run = finished
    moved = tmp_path / "moved"
    shutil.copytree(run, moved)
    text = (moved / "config.yaml").read_text()
    (moved / "config.yaml").write_text(text.replace("device: cpu", "device: cuda"))
    before = snapshot(moved)
    for argv in (["eval", str(moved)], ["train", "--quiet", "--resume", str(moved)]):
        rc, _, err = cli(capsys, *argv)
        line = assert_one_error_line(rc, err, "config.yaml", "cannot run here", "device")
        assert "damaged" not in line
    assert snapshot(moved) == before


def test_simulate_a_run_without_raw_events_is_named(finished, capsys):
    """The event-driven simulator reads raw events: a run on frame-only digits, or such a
    --dataset, is one error line that lists the event datasets."""
    _, run = finished
    before = snapshot(run)
    rc, _, err = cli(capsys, "simulate", str(run))
    assert_one_error_line(rc, err, "'digits8x8'", "raw events", "nmnist-sim", "--dataset")
    rc, _, err = cli(capsys, "simulate", str(run), "--dataset", "mnist5k", "--grid")
    assert_one_error_line(rc, err, "'mnist5k'", "raw events")
    assert snapshot(run) == before


def test_reader_closing_the_pipe_is_not_an_internal_error():
    """`spikeforge models | head -1`: the pipe closes before the listing is written; the
    command stops quietly with the shell's SIGPIPE status instead of an internal error."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "spikeforge.cli", "models"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first write
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "error" not in err, err


def test_every_command_takes_debug_after_its_name():
    """The internal-error line tells the user to run again with --debug: every command
    must accept it after its name (`spikeforge simulate RUN --debug`)."""
    import argparse

    from spikeforge.cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [name for name, parser in sub.choices.items()
               if not any("--debug" in a.option_strings for a in parser._actions)]
    assert not missing, f"commands without --debug: {missing}"
