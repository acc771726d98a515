"""The docs/anchors.md peer training runs, on this machine, with spikeforge on the same network
and recipe, so that engines are compared on one processor and one workload.

``docs/anchors.md`` ("Default training on the embedded digits") trained SpikingJelly
2.0 and snnTorch 1.0 on the 5,000 embedded MNIST digits (400 train / 100 test per class)
with one conv shape for all: Conv 1->12 5x5, max-pool 2, spiking neuron, Conv 12->64 5x5,
max-pool 2, spiking neuron, Linear 1024->10, spiking neuron; T = 4, direct input (the
image at every step), Adam, batch 64, 2 threads. This script runs that recipe with the
split spikeforge uses (``spikeforge.data.embedded.stratified_split``), the peers' own
documented defaults where docs/anchors.md names none, and no augmentation:

- ``SpikingJelly``: ``LIFNode(tau=2)`` (its default sigmoid surrogate, hard reset to 0),
  multi-step mode, MSE between the firing rate of the output layer and the one-hot label,
  Adam lr 1e-3 (its examples' rate); ``functional.reset_net`` after each batch.
- ``spikeforge``: SpikingJelly's recipe exactly (LIF tau = 2, hard reset to 0, sigmoid
  surrogate with alpha = 4, no detach_reset, MSE on the rate, Adam lr 1e-3) through
  spikeforge's modules: ``TimeDistributed`` layers and the fused CPU neuron kernel
  (``spikeforge-reference``: the same with the plain reference loop). Its direct input is a
  stride-0 view over time, so the first conv runs once per batch, not T times.
- ``snnTorch``: ``Leaky(beta=0.5)`` (tau = 2) with ``fast_sigmoid(slope=25)`` (its
  tutorial's), a loop over the steps, ``SF.mse_count_loss(0.8, 0.2)``, Adam lr 1e-3 (its
  tutorial's 1e-2 made the test accuracy swing between 59% and 90% here).

Per run: best test accuracy, training seconds until the test accuracy first reached 97%
(evaluated after every epoch, evaluation not timed) and the median seconds per epoch.
Writes ``benchmarks/results/train_peers_cpu.json``.

    python benchmarks/train_peers.py                     # all four, 10 epochs each
    python benchmarks/train_peers.py --peers SpikingJelly --epochs 5
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn as nn
from train_default import epoch_figures, print_table, write_result  # beside this script

from spikeforge.data.embedded import mnist5k

T = 4


def digits():
    """``(x_train, y_train, x_test, y_test)`` of spikeforge's ``mnist5k`` dataset (images in
    [0, 1], ``[n, 1, 28, 28]``; its augmentation is not applied here)."""
    bundle = mnist5k()
    return (*bundle.train.tensors, *bundle.test.tensors)


def rate_mse(rate, y):
    """MSE between the output firing rate ``[B, 10]`` and the one-hot label (SpikingJelly's
    examples' loss, used for spikeforge too)."""
    return nn.functional.mse_loss(rate, nn.functional.one_hot(y, 10).float())


def spikingjelly_model():
    """``(net, forward, loss, lr)``: ``forward(x [B,1,28,28])`` gives the output firing rate
    ``[B, 10]``."""
    from spikingjelly.activation_based import functional, layer, neuron

    net = nn.Sequential(
        layer.Conv2d(1, 12, 5), layer.MaxPool2d(2), neuron.LIFNode(tau=2.0),
        layer.Conv2d(12, 64, 5), layer.MaxPool2d(2), neuron.LIFNode(tau=2.0),
        layer.Flatten(), layer.Linear(1024, 10), neuron.LIFNode(tau=2.0),
    )
    functional.set_step_mode(net, "m")

    def forward(x):
        rate = net(x.unsqueeze(0).repeat(T, 1, 1, 1, 1)).mean(0)
        functional.reset_net(net)
        return rate

    return net, forward, rate_mse, 1e-3


def snntorch_model():
    """As :func:`spikingjelly_model` for snnTorch (output: spike counts ``[T, B, 10]``)."""
    import snntorch as snn
    from snntorch import functional as SF
    from snntorch import surrogate, utils

    grad = surrogate.fast_sigmoid(slope=25)
    net = nn.Sequential(
        nn.Conv2d(1, 12, 5), nn.MaxPool2d(2), snn.Leaky(beta=0.5, spike_grad=grad,
                                                        init_hidden=True),
        nn.Conv2d(12, 64, 5), nn.MaxPool2d(2), snn.Leaky(beta=0.5, spike_grad=grad,
                                                         init_hidden=True),
        nn.Flatten(), nn.Linear(1024, 10), snn.Leaky(beta=0.5, spike_grad=grad,
                                                     init_hidden=True, output=True),
    )
    count_loss = SF.mse_count_loss(correct_rate=0.8, incorrect_rate=0.2)

    def forward(x):
        utils.reset(net)
        return torch.stack([net(x)[0] for _ in range(T)])  # [T, B, 10] spikes

    return net, forward, count_loss, 1e-3


def spikeforge_model(backend: str = "auto"):
    """As :func:`spikingjelly_model`, with spikeforge's layers and neuron."""
    from spikeforge.layers import TimeDistributed
    from spikeforge.layers.time import Flatten
    from spikeforge.neurons import LIF

    def lif():
        return LIF(tau=2.0, v_threshold=1.0, v_reset=0.0, detach_reset=False,
                   surrogate="sigmoid", backend=backend)

    net = nn.Sequential(
        TimeDistributed(nn.Conv2d(1, 12, 5)), TimeDistributed(nn.MaxPool2d(2)), lif(),
        TimeDistributed(nn.Conv2d(12, 64, 5)), TimeDistributed(nn.MaxPool2d(2)), lif(),
        Flatten(), TimeDistributed(nn.Linear(1024, 10)), lif(),
    )

    def forward(x):
        return net(x.unsqueeze(0).expand(T, *x.shape)).mean(0)

    return net, forward, rate_mse, 1e-3


PEERS = {"spikeforge": spikeforge_model,
         "spikeforge-reference": lambda: spikeforge_model("reference"),
         "SpikingJelly": spikingjelly_model, "snnTorch": snntorch_model}


def run(name: str, data, epochs: int, max_seconds: float, seed: int) -> dict:
    """Train one peer; per-epoch test accuracy and cumulative training seconds."""
    torch.manual_seed(seed)
    net, forward, loss_fn, lr = PEERS[name]()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    xtr, ytr, xte, yte = data
    gen = torch.Generator().manual_seed(seed)
    cum, accs, spent = [], [], 0.0
    for _ in range(epochs):
        net.train()
        t0 = time.perf_counter()
        for idx in torch.randperm(len(xtr), generator=gen).split(64):
            out = forward(xtr[idx])
            loss = loss_fn(out, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        spent += time.perf_counter() - t0
        net.eval()
        with torch.no_grad():
            correct = 0
            for i in range(0, len(xte), 500):
                out = forward(xte[i:i + 500])
                scores = out if out.dim() == 2 else out.sum(0)
                correct += int((scores.argmax(1) == yte[i:i + 500]).sum())
        cum.append(spent)
        accs.append(correct / len(xte))
        print(f"  {name:20s} epoch {len(accs):2d}  test {accs[-1]:.4f}  train {spent:6.1f} s",
              flush=True)
        if spent >= max_seconds:
            break
    per_epoch = [b - a for a, b in zip([0.0, *cum[:-1]], cum)]
    return {
        "peer": name,
        "best_test_accuracy": max(accs),
        "final_test_accuracy": accs[-1],
        "test_accuracy_per_epoch": accs,
        "train_seconds_per_epoch": per_epoch,
        **epoch_figures(per_epoch, accs),
        "learning_rate": lr,
    }


def main() -> None:
    """Command-line entry: run the peers, print a table, write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--peers", default=",".join(PEERS))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--max-seconds", type=float, default=300.0,
                   help="stop a peer after the epoch that passes this much training time")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = digits()
    rows = [run(n, data, args.epochs, args.max_seconds, args.seed)
            for n in args.peers.split(",")]
    print_table(rows, "peer")
    write_result({
        "benchmark": "train_peers",
        "command": f"python benchmarks/train_peers.py --peers {args.peers} --epochs "
                   f"{args.epochs} --max-seconds {args.max_seconds:g} --threads {args.threads}",
        "runs": rows,
    }, args.out, "train_peers_cpu.json")

if __name__ == "__main__":
    main()
