"""Where the time of one CPU neuron call goes, from cold caches.

Times, interleaved round-robin with a 512 MB copy before every call (so that each
starts from the cold caches a layer meets in a network, as ``benchmarks/neurons.py``
does), a multi-step LIF (tau = 2, hard reset, atan, detach_reset) over ``[T, N]``:

- ``module``: ``LIF(...)(x).backward(g)``, what a model pays;
- ``function``: the autograd Function alone (no module, no dispatch checks);
- ``kernels``: the raw forward and backward kernels (no autograd);
- ``forward`` and ``backward``: each raw kernel alone.

Each time is printed over the floor of 5 passes over ``[T, N]`` at the copy bandwidth
timed in the same rounds. Run it on two commits (``PYTHONPATH=<checkout>``) to compare
host-side changes: the raw kernel API has been the same since the CPU backend landed.

    python benchmarks/neuron_breakdown.py --dtype bfloat16 --T 4
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from spikeforge.neurons import LIF
from spikeforge.ops import dispatch
from spikeforge.ops.cpu import entry
from spikeforge.ops.spec import NeuronSpec


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", default="bfloat16", choices=("float32", "bfloat16", "float16"))
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--N", type=int, default=1 << 20)
    ap.add_argument("--runs", type=int, default=25)
    args = ap.parse_args(argv)
    dtype, T, N = getattr(torch, args.dtype), args.T, args.N
    spec = NeuronSpec(kind="lif", reset="hard", detach_reset=True, surrogate="atan")
    lif = LIF(tau=2.0, v_threshold=1.0, v_reset=0.0, detach_reset=True, surrogate="atan",
              backend="cpu")
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn((T, N), generator=gen) * 1.5 + 0.5).to(dtype)
    g = torch.randn((T, N), generator=gen).to(dtype)
    xg = x.clone().requires_grad_(True)
    fn = dispatch._function("cpu")

    def module():
        lif(xg).backward(g)
        xg.grad = None

    def function():
        fn.apply(spec, False, 1, xg, None, 0.5)[0].backward(g)
        xg.grad = None

    def kernels():
        entry.forward(x, (None,), (0.5,), spec)
        entry.backward(x, (None,), (0.5,), spec, g, (None,), True, (False,), (False,))

    def forward():
        entry.forward(x, (None,), (0.5,), spec)

    def backward():
        entry.backward(x, (None,), (0.5,), spec, g, (None,), True, (False,), (False,))

    src = torch.ones(512 << 20, dtype=torch.uint8)
    dst = torch.empty_like(src)
    fns = dict(module=module, function=function, kernels=kernels, forward=forward,
               backward=backward)
    for f in fns.values():
        f()
        f()
    times = {name: [] for name in fns}
    copies = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        dst.copy_(src)
        copies.append(time.perf_counter() - t0)
        for name, f in fns.items():
            dst.copy_(src)
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    bw = 2 * src.numel() / statistics.median(copies)
    floor = 5 * T * N * x.element_size() / bw
    print(f"{args.dtype} T={T} N={N}: copy {bw / 1e9:.1f} GB/s, floor {floor * 1e3:.3f} ms "
          f"(5 passes over [T, N]); medians of {args.runs} cold calls:")
    out = {"copy_GBps": bw / 1e9, "floor_ms": floor * 1e3}
    for name, ts in times.items():
        t = statistics.median(ts)
        out[name + "_ms"] = t * 1e3
        print(f"  {name:<9} {t * 1e3:7.3f} ms  {t / floor:5.2f}x floor")
    return out


if __name__ == "__main__":
    main()
