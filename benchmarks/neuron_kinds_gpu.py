"""ALIF and CubaLIF (and LIF beside them) on the Triton backend: time against the memory
floor and the reference, in one process, on a GPU.

For each kind, T and input dtype it times the forward (under ``torch.no_grad``) and the
forward+backward (a dense spike gradient, the input's gradient) of the fused kernels
(``dispatch.multistep("triton", ...)``) and of the reference (the per-step PyTorch loop
of the neuron type), the median of ``--runs`` timed runs after a warm-up that also
covers Triton's autotuning. Each time is also given as a multiple of the floor: the
bytes that must move over the copy bandwidth (``dst.copy_(src)`` of 256 MB, bytes read
plus written): forward 2 passes over ``[T, N]`` in the input dtype (read x, write S);
forward+backward 5 for LIF and CubaLIF (also read x again, read the spike gradient,
write the input gradient) and 7 for ALIF (its backward also writes and reads back the
adaptation ``A[t-1]``, in float32: counted at the input's element size, a lower bound).

    python benchmarks/neuron_kinds_gpu.py --out benchmarks/results/neuron_kinds_cuda.json
    TRITON_INTERPRET=1 python benchmarks/neuron_kinds_gpu.py --device cpu --quick  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import spikeforge.neurons  # noqa: E402,F401  (registers the reference of every kind)
from spikeforge.functional.neuron import multistep_reference  # noqa: E402
from spikeforge.ops import dispatch  # noqa: E402
from spikeforge.ops.spec import NeuronSpec  # noqa: E402

KINDS = {  # kind -> (params, passes fwd+bwd)
    "lif": ((0.5,), 5),
    "alif": ((0.5, 0.9512, 0.2), 7),  # tau 2, tau_adapt 20, beta 0.2
    "cubalif": ((0.2, 0.5), 5),  # tau_syn 5, tau 2
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_median(fn, device, runs: int, warmup: int = 2) -> float:
    """Median seconds of ``fn()`` over ``runs`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def copy_bandwidth(device, nbytes: int, runs: int) -> float:
    """Bytes per second moved (read + written) by ``dst.copy_(src)``."""
    src = torch.empty(nbytes // 4, device=device).uniform_()
    dst = torch.empty_like(src)
    return 2 * nbytes / time_median(lambda: dst.copy_(src), device, runs)


def bench(kind, T, N, dtype_name, device, runs, bw) -> list[dict]:
    """The rows (fused and reference, fwd and fwd+bwd) of one configuration."""
    params, passes = KINDS[kind]
    spec = NeuronSpec(kind=kind, v_threshold=1.0, v_reset=0.0, reset="hard", detach_reset=True,
                      surrogate="atan", alpha=2.0)
    dtype = DTYPES[dtype_name]
    x = (torch.randn((T, N), device=device) * 0.8 + 0.6).to(dtype)
    gs = torch.randn((T, N), device=device).to(dtype)
    item = x.element_size()
    rows = []
    impls = {
        "spikeforge triton": lambda xx: dispatch.multistep("triton", xx, None, params, spec,
                                                           need_state=False)[0],
        "reference": lambda xx: multistep_reference(xx, None, params, spec).spikes,
    }
    for name, run in impls.items():
        def fwd(run=run):
            with torch.no_grad():
                run(x)

        def fwd_bwd(run=run):
            xx = x.detach().requires_grad_(True)
            run(xx).backward(gs)

        for mode, fn, p in (("fwd", fwd, 2), ("fwd+bwd", fwd_bwd, passes)):
            row = {"kind": kind, "impl": name, "mode": mode, "T": T, "N": N,
                   "dtype": dtype_name}
            try:
                t = time_median(fn, device, runs)
                row.update(time_ms=t * 1e3, x_floor=t / (p * T * N * item / bw))
            except Exception as e:  # noqa: BLE001 - a failing row is recorded, not fatal
                row["error"] = f"{type(e).__name__}: {e}"[:300]
            rows.append(row)
    fused = {r["mode"]: r.get("time_ms") for r in rows if r["impl"] == "spikeforge triton"}
    for r in rows:
        if r["impl"] == "reference" and r.get("time_ms") and fused.get(r["mode"]):
            r["fused_speedup"] = r["time_ms"] / fused[r["mode"]]
    return rows


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny shapes, 3 runs (a smoke run)")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    reason = dispatch.unavailable_reason("triton", device)
    if reason:
        raise SystemExit(reason)
    runs = 3 if args.quick else args.runs
    configs = [(4, 4096)] if args.quick else [(4, 8_400_000), (16, 2_100_000), (32, 1_050_000)]
    bw = copy_bandwidth(device, (1 << 20) if args.quick else (256 << 20), runs)
    result = {"benchmark": "ALIF / CubaLIF / LIF on the Triton backend (hard reset 0, "
                           "threshold 1, atan, detach_reset)",
              "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "copy_GBps": bw / 1e9, "runs": runs, "rows": []}
    for kind in args.kinds.split(","):
        for (T, N) in configs:
            for dtype_name in DTYPES:
                rows = bench(kind, T, N, dtype_name, device, runs, bw)
                result["rows"] += rows
                for r in rows:
                    what = (f"{r['time_ms']:9.3f} ms {r['x_floor']:6.2f}x floor"
                            if "time_ms" in r else r["error"][:80])
                    print(f"  {kind:<8} T={T:<3} N={N:<8} {dtype_name:<8} {r['mode']:<7} "
                          f"{r['impl']:<18} {what}", flush=True)
    from spikeforge.ops.triton import jit

    result["triton_autotune"] = jit.tuned_configs()
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print("wrote", args.out)
    return result


if __name__ == "__main__":
    main()
