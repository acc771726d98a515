"""End-to-end training: accuracy on real digits, files written, eval, resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from spikeforge.cli import main
from spikeforge.train import Trainer, load_config

SMALL = [
    "data.name=digits8x8",
    "data.augment=[]",
    "model.name=mlp",
    "model.hidden=128",
    "optim.lr=0.005",
    "threads=1",
    "progress=false",
]


def _same_weights(a: str, b: str) -> None:
    wa, wb = load_file(a), load_file(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "full"
    assert main(["train", "--quiet", "--out", str(out), "epochs=4", *SMALL]) == 0
    return out


def test_run_directory_and_accuracy_above_chance(finished_run):
    for name in ("config.yaml", "model.safetensors", "metrics.json", "train.log",
                 "checkpoint.json", "ckpt-epoch4.safetensors"):
        assert (finished_run / name).exists(), name
    m = json.loads((finished_run / "metrics.json").read_text())
    assert m["epochs"] == 4 and len(m["train_loss"]) == 4 and m["seconds"] > 0
    assert m["train_loss"][-1] < m["train_loss"][0]
    assert m["test_accuracy"] > 0.85  # chance is 0.10 on the 359 held-out 8x8 digits
    assert set(m["firing_rate"]) == {"net.2"}
    assert 0.0 < m["firing_rate"]["net.2"] < 1.0
    assert "test acc" in (finished_run / "train.log").read_text()


def test_eval_reproduces_test_accuracy(finished_run, capsys):
    assert main(["eval", str(finished_run)]) == 0
    out = json.loads(capsys.readouterr().out)
    m = json.loads((finished_run / "metrics.json").read_text())
    assert out["test_accuracy"] == m["test_accuracy"]
    assert out["firing_rate"] == pytest.approx(m["firing_rate"])


def test_resume_after_exception_mid_epoch(finished_run, tmp_path, monkeypatch):
    out = tmp_path / "crash"
    cfg = load_config(None, ["epochs=4", *SMALL])
    trainer = Trainer(cfg, str(out))
    calls = {"n": 0}
    real_loss = trainer.loss_fn

    def failing_loss(*a, **k):
        calls["n"] += 1
        if calls["n"] == trainer.steps_per_epoch + 7:  # in the middle of epoch 2
            raise KeyboardInterrupt
        return real_loss(*a, **k)

    monkeypatch.setattr(trainer, "loss_fn", failing_loss)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert json.loads((out / "checkpoint.json").read_text())["epoch"] == 1
    assert not (out / "model.safetensors").exists()
    # a torn temporary file from a kill during a checkpoint write is ignored
    (out / "ckpt-epoch2.safetensors.tmp.999").write_bytes(b"\x00" * 10)
    assert main(["train", "--quiet", "--resume", str(out)]) == 0
    _same_weights(out / "model.safetensors", finished_run / "model.safetensors")
    a = json.loads((out / "metrics.json").read_text())
    b = json.loads((finished_run / "metrics.json").read_text())
    assert a["train_loss"] == b["train_loss"] and a["test_accuracy"] == b["test_accuracy"]


def test_resume_after_sigkill(finished_run, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "spikeforge.cli", "train", "--quiet", "--out", str(out),
           "epochs=4", *SMALL]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (out / "checkpoint.json").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "model.safetensors").exists(), "the run finished before it was killed"
    env = dict(os.environ)
    done = subprocess.run([sys.executable, "-m", "spikeforge.cli", "train", "--quiet",
                           "--resume", str(out)], capture_output=True, env=env)
    assert done.returncode == 0, done.stderr.decode()
    _same_weights(out / "model.safetensors", finished_run / "model.safetensors")


def test_resume_refuses_new_config(finished_run, capsys):
    assert main(["train", "--resume", str(finished_run), "epochs=9"]) == 2
    assert "continues the run with its own config.yaml" in capsys.readouterr().err


def test_train_refuses_to_overwrite_a_run(finished_run, capsys):
    assert main(["train", "--quiet", "--out", str(finished_run), "epochs=4", *SMALL]) == 2
    assert "holds a finished run (4 epochs) of this config" in capsys.readouterr().err


def test_cli_config_errors_are_reported(capsys):
    assert main(["train", "--quiet", "data.bogus=1"]) == 2
    assert "unknown config key 'data.bogus'" in capsys.readouterr().err
    assert main(["eval", "/nonexistent/run"]) == 2
    assert "not a spikeforge run directory" in capsys.readouterr().err


@pytest.mark.parametrize("cmd", [[], ["train"], ["eval"], ["config"], ["datasets"]])
def test_help_describes_every_option(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([*cmd, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    parser_opts = {"train": ["--config", "--out", "--dataset", "--resume", "--quiet", "KEY=VALUE"],
                   "eval": ["RUN_DIR"], "config": ["--config", "KEY=VALUE"]}
    for opt in parser_opts.get(cmd[0] if cmd else "", []):
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(opt))
        assert len(line.split(maxsplit=2)) >= 2 or opt == "KEY=VALUE", line
    if not cmd:
        for sub in ("train", "eval", "config", "datasets"):
            assert sub in text


def test_config_and_datasets_commands(capsys):
    assert main(["config", "epochs=2"]) == 0
    assert "epochs: 2" in capsys.readouterr().out
    assert main(["datasets"]) == 0
    assert "mnist5k" in capsys.readouterr().out
