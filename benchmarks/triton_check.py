"""The Triton kernels against the reference on a GPU, every kernel kind, before timing.

For each kind (``if``, ``lif``, ``alif``, ``cubalif``): every reset x detach_reset x
decay_input combination in float32 with the surrogate rotating, a rotation of them in
bfloat16, float16 and float64, with a random initial state (and PLIF's tensor ``k`` for
``lif``), shape ``[7, 3, 1031]`` (several programs); every surrogate once more at T = 40
(the smallest backward block). Spikes and final states must be equal, gradients (input,
initial state, ``k``) within float tolerance; every other half-precision LIF case asks
for no float32 gradient, which runs the float16 scratch of the backward. Raises on the
first mismatch; writes ``{"cases": n, "seconds": s}`` as JSON.

    python benchmarks/triton_check.py --device cuda --out benchmarks/results/triton_check.json
    TRITON_INTERPRET=1 python benchmarks/triton_check.py --device cpu --quick   # no GPU
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import spikeforge.neurons  # noqa: E402,F401  (registers the reference of every kind)
from spikeforge.functional.neuron import multistep_reference  # noqa: E402
from spikeforge.ops import dispatch  # noqa: E402
from spikeforge.ops.spec import (  # noqa: E402
    RESET_KINDS,
    STATE_NAMES,
    SURROGATE_NAMES,
    NeuronSpec,
)

KINDS = ("if", "lif", "alif", "cubalif")
PARAMS = {"if": (), "lif": (0.4,), "alif": (0.4, 0.8, 0.3), "cubalif": (0.3, 0.5)}
HALF = (torch.float16, torch.bfloat16)


def cases(quick: bool) -> list:
    """``(kind, dtype, (reset, detach, decay), surrogate, T)`` for every case."""
    grid = list(itertools.product(RESET_KINDS, (False, True), (True, False)))
    out = []
    for kind in KINDS:
        for d, dtype in enumerate((torch.float32, torch.bfloat16, torch.float16, torch.float64)):
            for i, combo in enumerate(grid):
                if dtype != torch.float32 and (i + d) % 3:  # a rotation in the other dtypes
                    continue
                out.append((kind, dtype, combo, SURROGATE_NAMES[(i + d) % 5], 7))
        for surrogate in SURROGATE_NAMES:
            out.append((kind, torch.float32, ("hard", False, True), surrogate, 40))
    return out[::7] if quick else out


def check_case(n: int, kind, dtype, combo, surrogate, T, dev, width: int) -> None:
    """One case against the reference (see the module docstring); raises on a mismatch."""
    reset, detach, decay = combo
    spec = NeuronSpec(kind=kind, reset=reset, detach_reset=detach, decay_input=decay,
                      surrogate=surrogate, v_threshold=0.7,
                      v_reset=-0.1 if reset == "hard" else 0.0, alpha=1.5)
    g = torch.Generator(device=dev).manual_seed(n)
    x = (torch.randn((T, 3, width), generator=g, device=dev) * 0.8 + 0.3).to(dtype)
    n_state = len(STATE_NAMES[kind])
    s0 = [torch.randn((3, width), generator=g, device=dev) * 0.3 for _ in range(n_state)]
    gs = torch.randn(x.shape, generator=g, device=dev).to(dtype)
    # every other half-precision LIF case asks for no float32 gradient (fixed leak, state
    # without grad): the float16 Z scratch (H16) of the backward
    h16 = kind in ("if", "lif") and dtype in HALF and n % 2 == 0
    outs = []
    for backend in ("reference", "triton"):
        xx = x.clone().requires_grad_(True)
        ss = tuple(s.clone().requires_grad_(not h16) for s in s0)
        w = torch.tensor(0.3, device=dev, requires_grad=True)
        params = (torch.sigmoid(w),) if kind == "lif" and not h16 else PARAMS[kind]
        if backend == "reference":
            s, st, _ = multistep_reference(xx, ss, params, spec)
        else:
            s, st = dispatch.multistep("triton", xx, ss, params, spec)
        ((s.to(st[0].dtype) * gs.to(st[0].dtype)).sum() + sum(f.sum() for f in st)).backward()
        outs.append((s, tuple(st), xx.grad, [t.grad for t in ss], w.grad))
    (rs, rst, rgx, rg0, rgw), (ts, tst, tgx, tg0, tgw) = outs
    where = f"{spec} {dtype} T={T}"
    if not (torch.equal(rs, ts) and all(torch.equal(a, b) for a, b in zip(rst, tst))):
        bad = (rs != ts).sum().item()
        raise AssertionError(f"Triton spikes/state differ from the reference ({bad} spikes): "
                             f"{where}")
    tol = dict(rtol=1.6e-2, atol=1e-3) if dtype in HALF else dict(rtol=2e-4, atol=1e-5)
    torch.testing.assert_close(tgx, rgx, **tol, msg=f"grad x: {where}")
    if h16:
        return
    for a, b in zip(tg0, rg0):
        torch.testing.assert_close(a, b, rtol=2e-4, atol=1e-5, msg=f"grad state0: {where}")
    if kind == "lif":
        torch.testing.assert_close(tgw, rgw, rtol=2e-4, atol=1e-5, msg=f"grad k: {where}")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="every 7th case, narrow tensors")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    reason = dispatch.unavailable_reason("triton", dev)
    if reason:
        raise SystemExit(reason)
    todo = cases(args.quick)
    t0 = time.perf_counter()
    for n, case in enumerate(todo):
        check_case(n, *case, dev, width=37 if args.quick else 1031)
        if n % 25 == 0:
            print(f"  Triton check {n + 1}/{len(todo)} ok", flush=True)
    result = {"cases": len(todo), "seconds": time.perf_counter() - t0, "device": str(dev),
              "kinds": list(KINDS), "quick": args.quick}
    print(f"Triton kernels match the reference ({result['cases']} cases, "
          f"{result['seconds']:.1f} s)")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
