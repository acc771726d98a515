"""DDP through torchrun: 2 Gloo processes on the CPU against one process with the same
global batch, and resume under torchrun."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from spikeforge.train import Trainer, load_config
from spikeforge.train.distributed import DistContext, torchrun_argv

# A spiking MLP without BatchNorm (per-rank BN statistics would differ by design), no
# LR schedule, one thread per process.
ARGS = [
    "data.name=digits8x8", "model.name=mlp", "model.hidden=32", "epochs=2",
    "optim.scheduler=none", "threads=1", "progress=false",
]
# The all-reduce sums the two halves' gradients in another order than one process's
# sum over the whole batch; after 90 Adam steps the weights agree to ~1e-6.
ATOL = 2e-5

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _torchrun(args: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("WORLD_SIZE", None)
    cmd = torchrun_argv(2, ["--quiet", *args])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _assert_close(a, b) -> None:
    wa, wb = load_file(a), load_file(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=ATOL, rtol=0, msg=k)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "single"
    threads = torch.get_num_threads()
    Trainer(load_config(None, ARGS), str(out)).fit()
    torch.set_num_threads(threads)  # the config's threads=1 is global
    return out


def test_two_gloo_processes_match_one_process(single, tmp_path):
    out = tmp_path / "ddp"
    _torchrun(["--out", str(out), *ARGS])
    _assert_close(out / "model.safetensors", single / "model.safetensors")
    m, s = (json.loads((d / "metrics.json").read_text()) for d in (out, single))
    assert m["world_size"] == 2 and m["epochs"] == 2
    assert abs(m["test_accuracy"] - s["test_accuracy"]) <= 2 / 360  # a digit or two
    assert sorted(os.listdir(out)) == sorted(os.listdir(single))  # rank 0 alone wrote


def test_resume_under_torchrun(single, tmp_path, monkeypatch):
    out = tmp_path / "crash"
    trainer = Trainer(load_config(None, ARGS), str(out))
    calls = {"n": 0}
    real = trainer.loss_fn

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == trainer.steps_per_epoch + 5:  # in epoch 2
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(trainer, "loss_fn", failing)
    threads = torch.get_num_threads()
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    torch.set_num_threads(threads)
    assert json.loads((out / "checkpoint.json").read_text())["epoch"] == 1
    _torchrun(["--resume", str(out)])  # both ranks load epoch 1 and train epoch 2
    _assert_close(out / "model.safetensors", single / "model.safetensors")


def test_shards_cover_a_batch_and_reweight_the_loss():
    n = 11
    parts = [DistContext(r, 3).shard(n) for r in range(3)]
    covered = [i for sl, _ in parts for i in range(n)[sl]]
    assert covered == list(range(n))
    # sum over ranks of scale * local mean / world = global mean (DDP averages gradients)
    x = torch.arange(n, dtype=torch.float64)
    total = sum(scale * x[sl].mean() for sl, scale in parts) / 3
    assert torch.isclose(total, x.mean())
    with pytest.raises(ValueError, match="cannot be split over 3 processes"):
        DistContext(0, 3).shard(2)
    assert torchrun_argv(2, ["--out", "r"])[1:6] == [
        "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m",
    ]
    assert sys.executable == torchrun_argv(1, [])[0]


def test_nproc_execs_torchrun_with_the_other_arguments(monkeypatch):
    from spikeforge import cli

    seen = {}

    class Exec(BaseException):  # not an Exception: main() reports those
        pass

    def fake_execv(path, cmd):
        seen["cmd"] = cmd
        raise Exec

    monkeypatch.setattr(os, "execv", fake_execv)
    with pytest.raises(Exec):
        cli.main(["train", "--nproc", "3", "--quiet", "--out", "runs/x", "epochs=2"])
    assert seen["cmd"][:2] == [sys.executable, "-m"]
    assert seen["cmd"][2:] == [
        "torch.distributed.run", "--standalone", "--nproc-per-node=3", "-m", "spikeforge",
        "train", "--quiet", "--out", "runs/x", "epochs=2",
    ]
