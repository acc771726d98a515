"""Multi-step LIF kernel speed against the memory floor and the peers, in one process.

The neuron of ANCHORS.md: LIF, tau = 2, hard reset to 0, threshold 1, arctan
surrogate, detach_reset, over ``x`` of shape ``[T, N]``. For each T, N and input
dtype it times the forward (under ``torch.no_grad``) and forward+backward
(``backward`` of a dense spike gradient; ``x.grad`` cleared between runs) of

- spikeforge's fused kernel (``LIF(backend="cpu" | "triton")``),
- a per-step PyTorch loop (the usual user code: a Python loop of tensor ops in the
  input dtype with the arctan surrogate),
- ``torch.compile`` of that loop (with ``--compile``: tens of seconds of compilation per shape),
- SpikingJelly 2.0 ``LIFNode(step_mode='m')`` (its automatic path for the device),
- snnTorch ``Leaky`` (reset_mechanism="zero") in a loop over time,

when installed; the median of ``--runs`` (>= 10) timed runs after warm-up. Each time
is printed as a multiple of the floor: the bytes that must move (forward: read x,
write spikes = 2 passes of ``[T, N]`` at the input dtype; forward+backward: also
read x again, read the spike gradient, write the input gradient = 5 passes) over the
copy bandwidth (bytes read + written by ``dst.copy_(src)`` of at least 256 MB into a
warm buffer), timed in the same round-robin as the implementations so that each
floor comes from the same minutes as its row (``x_floor``); ``x_floor_strict`` uses the
fastest copy of the whole run instead, which a neighbour taking memory bandwidth
cannot flatter. A copy measured once at the start
(on the CPU the faster of one thread and all threads) and a fresh ``clone`` (which
also page-faults its new buffer) are recorded beside them. Peak memory of one
forward+backward: ``torch.cuda.max_memory_allocated`` above the inputs on the GPU;
on the CPU the peak resident set (VmHWM, reset through
``/proc/self/clear_refs``) above the resident set before the call, after freeing
cached blocks (``malloc_trim`` and spikeforge's buffer pool), so that pooled
memory is counted.

On CUDA it first runs the Triton kernels against the reference on the GPU (every
option and surrogate, float32/bfloat16/float16/float64) and aborts on a mismatch,
and it also times the Open Neuromorphic shape (Linear 16k -> 16k + LIF, batch 16,
T = 500, forward+backward).

    python benchmarks/neurons.py --device cpu           # writes results/neurons_cpu.json
    python benchmarks/neurons.py --device cuda          # writes results/neurons_cuda.json
    python benchmarks/neurons.py --device cpu --quick   # small and fast smoke run
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib.util
import inspect
import itertools
import json
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from spikeforge.functional.neuron import multistep_reference  # noqa: E402
from spikeforge.functional.surrogate import ATan  # noqa: E402
from spikeforge.neurons import LIF  # noqa: E402
from spikeforge.ops import dispatch  # noqa: E402
from spikeforge.ops.spec import RESET_KINDS, SURROGATE_NAMES, NeuronSpec  # noqa: E402

TAU, V_TH, V_RESET = 2.0, 1.0, 0.0
SPEC = NeuronSpec(kind="lif", v_threshold=V_TH, v_reset=V_RESET, reset="hard",
                  detach_reset=True, decay_input=True, surrogate="atan", alpha=2.0)
CONFIGS = {
    "cpu": [(4, 1 << 20), (16, 1 << 20), (32, 1 << 20)],
    "cuda": [(4, 8_400_000), (16, 2_100_000), (32, 4_200_000)],
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
COPY = "__copy__"  # the floor's copy, timed among the implementations


# --------------------------------------------------------------------------- machine


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def copy_bandwidth(device: str, nbytes: int, runs: int = 15) -> dict:
    """Bytes read + written per second by ``dst.copy_(src)`` (warm ``dst``) and by ``clone``."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    dst.copy_(src)

    def med(fn):
        fn()
        ts = []
        for _ in range(runs):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    out = {"bytes": 2 * src.numel() * 4}
    t_copy = med(lambda: dst.copy_(src))
    out["copy_all_threads_GBps"] = out["bytes"] / t_copy / 1e9
    if device == "cpu":
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            out["copy_1_thread_GBps"] = out["bytes"] / med(lambda: dst.copy_(src)) / 1e9
        finally:
            torch.set_num_threads(n)
    out["clone_GBps"] = out["bytes"] / med(lambda: src.clone()) / 1e9
    out["copy_GBps"] = max(out["copy_all_threads_GBps"], out.get("copy_1_thread_GBps", 0.0))
    return out


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()})"


# --------------------------------------------------------------------------- implementations


def torch_loop(x: torch.Tensor) -> torch.Tensor:
    """The per-step PyTorch loop a user writes (input dtype, arctan surrogate, detached
    hard reset)."""
    surrogate = ATan(2.0)
    v = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        h = v + (x[t] - v) / TAU
        s = surrogate(h - V_TH)
        v = h * (1.0 - s.detach())
        out.append(s)
    return torch.stack(out)


def make_impls(device: str, with_compile: bool) -> dict:
    """name -> callable(x) returning spikes ``[T, N]``, for what is installed."""
    impls = {}
    backend = "triton" if device == "cuda" else "cpu"
    if dispatch.is_available(backend, torch.device(device)):
        ours = LIF(tau=TAU, v_threshold=V_TH, v_reset=V_RESET, detach_reset=True,
                   surrogate="atan", backend=backend)
        impls["spikeforge"] = ours
        if backend == "triton":  # the autotuner's gain over the fixed fallback blocks
            from spikeforge.ops import triton_neuron

            def fixed_blocks(x, ours=ours):
                triton_neuron.AUTOTUNE = False
                try:
                    return ours(x)
                finally:
                    triton_neuron.AUTOTUNE = True

            impls["spikeforge fixed blocks"] = fixed_blocks
    impls["torch loop"] = torch_loop
    if with_compile:
        # one graph per (shape, dtype, grad mode): 3 T x 3 dtypes x 2 modes
        torch._dynamo.config.recompile_limit = max(64, torch._dynamo.config.recompile_limit)
        impls["torch.compile loop"] = torch.compile(torch_loop, dynamic=False)
    if importlib.util.find_spec("spikingjelly") is not None:
        try:
            from spikingjelly.activation_based import neuron as sj_neuron
            from spikingjelly.activation_based import surrogate as sj_surrogate

            kwargs = dict(tau=TAU, v_threshold=V_TH, v_reset=V_RESET, detach_reset=True,
                          surrogate_function=sj_surrogate.ATan(), step_mode="m")
            if "backend" in inspect.signature(sj_neuron.LIFNode.__init__).parameters:
                kwargs["backend"] = "cupy" if device == "cuda" else "torch"  # SpikingJelly < 2
            node = sj_neuron.LIFNode(**kwargs)

            def spikingjelly(x, node=node):
                node.reset()
                return node(x)

            impls["SpikingJelly"] = spikingjelly
        except Exception as e:  # noqa: BLE001 - a broken peer install is reported, not fatal
            print(f"SpikingJelly unavailable: {e!r}")
    if importlib.util.find_spec("snntorch") is not None:
        try:
            import snntorch as snn
            from snntorch import surrogate as snn_surrogate

            leaky = snn.Leaky(beta=1 - 1 / TAU, threshold=V_TH, reset_mechanism="zero",
                              spike_grad=snn_surrogate.atan())

            def snntorch_loop(x, leaky=leaky):
                mem = leaky.init_leaky()
                out = []
                for t in range(x.shape[0]):
                    s, mem = leaky(x[t], mem)
                    out.append(s)
                return torch.stack(out)

            impls["snnTorch"] = snntorch_loop
        except Exception as e:  # noqa: BLE001
            print(f"snnTorch unavailable: {e!r}")
    return impls


# --------------------------------------------------------------------------- measuring


def _release_cpu_memory() -> None:
    gc.collect()
    try:
        from spikeforge.ops import _cpu_pool

        _cpu_pool.release_cached_buffers()
    except ImportError:
        pass
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def _proc_status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def peak_memory(fn, device: str) -> int | None:
    """Peak bytes above the starting point while ``fn()`` runs (see the module docstring)."""
    if device == "cuda":
        torch.cuda.synchronize()
        gc.collect()
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    try:
        _release_cpu_memory()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        base = _proc_status("VmRSS")
        fn()
        return _proc_status("VmHWM") - base
    except OSError:
        return None


def time_median(fn, device: str, runs: int, warmup: int = 2) -> float:
    """Median seconds of ``runs`` calls after ``warmup`` untimed ones."""
    return time_interleaved({"f": fn}, device, runs, warmup)["f"]


def time_interleaved(fns: dict, device: str, runs: int, warmup: int = 2) -> dict:
    """Median seconds per callable, timed round-robin (run r of every callable, then run
    r + 1, ...) so that a burst of load from other processes falls on all of them alike.
    A callable that raises is reported as the exception instead of a time."""
    live, out = dict(fns), {}
    for name, fn in list(live.items()):
        try:
            for _ in range(warmup):
                fn()
        except Exception as e:  # noqa: BLE001 - one failing peer must not stop the run
            out[name] = e
            del live[name]
    times = {name: [] for name in live}
    for _ in range(runs):
        for name, fn in live.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    out.update({name: statistics.median(ts) for name, ts in times.items()})
    return out


def bench_config(impls, T, N, dtype_name, device, runs, floor_bw, memory, copy_buffers=None,
                 fwdbwd_passes=5, baseline="SpikingJelly"):
    """Rows (impl x mode) for one ``[T, N]`` input of ``dtype_name``.

    With ``copy_buffers = (src, dst)`` the copy that defines the floor is timed in the
    same round-robin as the implementations (``dst.copy_(src)``), so the floor of each
    row is the bandwidth of the same minutes: on shared VMs the copy bandwidth drifts
    between runs (we saw 41-128 GB/s on one 2-core machine within an hour).
    ``fwdbwd_passes``: passes of ``[T, N]`` in the forward+backward floor (LIF 5);
    ``baseline``: the implementation the ``speedup_vs_...`` column divides by."""
    dtype = DTYPES[dtype_name]
    gen = torch.Generator(device=device).manual_seed(0)
    x = (torch.randn((T, N), generator=gen, device=device) * 1.5 + 0.5).to(dtype)
    g = torch.randn((T, N), generator=gen, device=device).to(dtype)
    xg = x.clone().requires_grad_(True)
    item = x.element_size()

    def fwd(impl):
        def run():
            with torch.no_grad():
                impl(x)

        return run

    def fwdbwd(impl):
        def run():
            impl(xg).backward(g)
            xg.grad = None

        return run

    rows = []
    for mode, wrap in (("fwd", fwd), ("fwd+bwd", fwdbwd)):
        fns = {name: wrap(impl) for name, impl in impls.items()}
        if copy_buffers is not None:
            src, dst = copy_buffers
            fns[COPY] = lambda src=src, dst=dst: dst.copy_(src)
        times = time_interleaved(fns, device, runs)
        bw = floor_bw
        if copy_buffers is not None:
            fns.pop(COPY)
            t_copy = times.pop(COPY)
            if not isinstance(t_copy, Exception):
                bw = 2 * src.numel() * src.element_size() / t_copy
        floors = {"fwd": 2 * T * N * item / bw, "fwd+bwd": fwdbwd_passes * T * N * item / bw}
        for name, fn in fns.items():
            row = {"impl": name, "T": T, "N": N, "dtype": dtype_name, "mode": mode,
                   "copy_GBps": bw / 1e9, "passes": 2 if mode == "fwd" else fwdbwd_passes}
            t = times[name]
            if isinstance(t, Exception):
                row["error"] = f"{type(t).__name__}: {t}"[:300]
            else:
                row.update(time_ms=t * 1e3, x_floor=t / floors[mode])
                if memory and mode == "fwd+bwd":
                    b = peak_memory(fn, device)
                    row["peak_mem_MiB"] = None if b is None else b / 2**20
            rows.append(row)
        gc.collect()
    base = {r["mode"]: r.get("time_ms") for r in rows if r["impl"] == baseline}
    key = "speedup_vs_spikingjelly" if baseline == "SpikingJelly" else "speedup_vs_reference"
    for r in rows:
        if base.get(r["mode"]) and r.get("time_ms"):
            r[key] = base[r["mode"]] / r["time_ms"]
    return rows


def open_neuromorphic(device: str, runs: int, T: int = 500, B: int = 16, H: int = 16384):
    """Linear(H -> H) + LIF over [T, B, H] (16k neurons, batch 16, T = 500 by default),
    forward+backward in seconds per implementation."""
    rows = []
    x = torch.randn(T, B, H, device=device).requires_grad_(True)
    impls = {k: v for k, v in make_impls(device, with_compile=False).items()
             if k in ("spikeforge", "SpikingJelly", "snnTorch", "torch loop")}
    for name, neuron in impls.items():
        lin = torch.nn.Linear(H, H, device=device)

        def step(neuron=neuron, lin=lin):
            y = lin(x)
            s = neuron(y)
            s.sum().backward()
            x.grad = None
            lin.zero_grad(set_to_none=True)

        row = {"impl": name, "shape": f"Linear {H} + LIF, batch {B}, T={T}", "mode": "fwd+bwd"}
        try:
            row["time_s"] = time_median(step, device, runs=max(3, runs // 2), warmup=1)
        except Exception as e:  # noqa: BLE001
            row["error"] = f"{type(e).__name__}: {e}"[:300]
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- GPU check


def check_triton_on_gpu(device: str = "cuda") -> int:
    """The Triton kernels against the reference on the GPU: every option combination
    (kind x reset x detach x decay_input) in float32, bfloat16, float16 and float64 with
    the surrogate rotating, every surrogate once more in float32, with v0 and a tensor k
    (PLIF), shape [7, 3, 1031] (several programs) and T = 40 for the smallest backward
    block. Spikes and v_final must be equal, gradients within tolerance. Returns the
    number of cases; raises on the first mismatch. (``device="cpu"`` with
    ``TRITON_INTERPRET=1`` runs the same check in Triton's interpreter.)"""
    dev = torch.device(device)
    grid = list(itertools.product(("if", "lif"), RESET_KINDS, (False, True), (True, False)))
    cases = []
    for d, dtype in enumerate((torch.float32, torch.bfloat16, torch.float16, torch.float64)):
        for i, combo in enumerate(grid):
            cases.append((dtype, combo, SURROGATE_NAMES[(i + d) % 5], 7))
    for surrogate in SURROGATE_NAMES:
        cases.append((torch.float32, ("lif", "hard", False, True), surrogate, 40))
    for n, (dtype, (kind, reset, detach, decay), surrogate, T) in enumerate(cases):
        spec = NeuronSpec(kind=kind, reset=reset, detach_reset=detach, decay_input=decay,
                          surrogate=surrogate, v_threshold=0.7,
                          v_reset=-0.1 if reset == "hard" else 0.0, alpha=1.5)
        g = torch.Generator(device=dev).manual_seed(n)
        x = (torch.randn((T, 3, 1031), generator=g, device=dev) * 0.8 + 0.3).to(dtype)
        v0 = torch.randn((3, 1031), generator=g, device=dev) * 0.3
        w = torch.tensor(0.3, device=dev)
        gs = torch.randn(x.shape, generator=g, device=dev).to(dtype)
        # every other half-precision case asks for no float32 gradient (fixed leak, v0
        # without grad), which runs the float16 Z scratch (H16) of the backward
        h16 = dtype in (torch.float16, torch.bfloat16) and n % 2 == 0
        outs = []
        for backend in ("reference", "triton"):
            xx, vv = x.clone().requires_grad_(True), v0.clone().requires_grad_(not h16)
            ww = w.clone().requires_grad_(True)
            k = 0.4 if h16 else torch.sigmoid(ww)
            if backend == "reference":
                s, v, _ = multistep_reference(xx, vv, k, spec)
            else:
                s, st = dispatch.multistep("triton", xx, (vv,), () if kind == "if" else (k,),
                                           spec)
                v = st[0]
            ((s.to(v.dtype) * gs.to(v.dtype)).sum() + v.sum()).backward()
            outs.append((s, v, xx.grad, vv.grad, ww.grad))
        (rs, rv, rgx, rgv, rgw), (ts, tv, tgx, tgv, tgw) = outs
        where = f"{spec} {dtype} T={T}"
        if not (torch.equal(rs, ts) and torch.equal(rv, tv)):
            bad = (rs != ts).sum().item()
            raise AssertionError(f"Triton spikes/v_final differ from the reference "
                                 f"({bad} spikes): {where}")
        half = dtype in (torch.float16, torch.bfloat16)
        tol = dict(rtol=1.6e-2, atol=1e-3) if half else dict(rtol=2e-4, atol=1e-5)
        torch.testing.assert_close(tgx, rgx, **tol, msg=f"grad x: {where}")
        if h16:
            continue
        torch.testing.assert_close(tgv, rgv, rtol=2e-4, atol=1e-5, msg=f"grad v0: {where}")
        if kind == "lif":
            torch.testing.assert_close(tgw, rgw, rtol=2e-4, atol=1e-5, msg=f"grad w: {where}")
        if n % 20 == 0:
            print(f"  GPU check {n + 1}/{len(cases)} ok", flush=True)
    return len(cases)


# --------------------------------------------------------------------------- main


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--quick", action="store_true", help="N / 16, 3 runs, float32 and bfloat16")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--compile", action="store_true",
                    help="also time torch.compile of the loop on the CPU (slow to compile)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    ap.add_argument("--dtypes", default=None, help="comma-separated subset of " + ",".join(DTYPES))
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's)")
    ap.add_argument("--T", default=None, help="comma-separated subset of the time lengths")
    ap.add_argument("--skip-check", action="store_true",
                    help="--device cuda: skip the check of the Triton kernels against the "
                         "reference (for a second run on the same machine)")
    ap.add_argument("--impls", default=None,
                    help="comma-separated subset of the implementations (default: all found)")
    ap.add_argument("--no-kinds", action="store_true",
                    help="skip the ALIF and CubaLIF rows (fused against their reference)")
    ap.add_argument("--on", action="store_true",
                    help="also time the Open Neuromorphic shape, LIF alone over [500, 16, "
                         "16384], spikeforge against SpikingJelly (CPU: minutes)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch.cuda.is_available() is False")
    runs = 3 if args.quick else max(10, args.runs)
    configs = [(T, N // 16 if args.quick else N) for T, N in CONFIGS[device]]
    dtypes = ["float32", "bfloat16"] if args.quick else list(DTYPES)
    if args.dtypes:
        dtypes = [d for d in args.dtypes.split(",") if d in DTYPES]
    if args.T:
        keep = {int(t) for t in args.T.split(",")}
        configs = [(T, N) for T, N in configs if T in keep]

    if args.threads:
        torch.set_num_threads(args.threads)
        try:
            import numba

            numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
        except ImportError:
            pass
    result = {
        "benchmark": "multi-step LIF (tau=2, hard reset 0, threshold 1, atan, detach_reset)",
        "threads": torch.get_num_threads(),
        "load_average_at_start": os.getloadavg(),
        "device": device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "quick": args.quick,
        "runs": runs,
    }
    if device == "cpu":
        from spikeforge.ops.cpu import host

        # outputs from this size are written with non-temporal stores
        result["cpu_stream_min_bytes"] = host.STREAM_MIN_BYTES
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"neurons_{device}{'_quick' if args.quick else ''}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)

    def save(partial: bool) -> None:
        """Write what is measured so far (after every configuration, so that a run cut
        off by a time limit still leaves its rows)."""
        result["partial"] = partial
        with open(out, "w") as f:
            json.dump(result, f, indent=1)

    if device == "cuda" and not args.skip_check:
        t0 = time.perf_counter()
        result["triton_check_cases"] = check_triton_on_gpu()
        result["triton_check_seconds"] = time.perf_counter() - t0
        print(f"Triton kernels match the reference on the GPU "
              f"({result['triton_check_cases']} cases, {result['triton_check_seconds']:.1f} s)")
        save(partial=True)
    biggest = max(T * N for T, N in configs) * 4
    bw = copy_bandwidth(device, max(biggest, 256 << 20))
    result["copy_bandwidth"] = bw
    floor_bw = bw["copy_GBps"] * 1e9
    print(f"{result['device']}; torch {torch.__version__}; copy {bw['copy_GBps']:.1f} GB/s "
          f"(fresh clone {bw['clone_GBps']:.1f} GB/s)")
    impls = make_impls(device, with_compile=args.compile)
    if args.impls:
        keep = set(args.impls.split(","))
        impls = {name: fn for name, fn in impls.items() if name in keep}
    print("implementations:", ", ".join(impls))
    copy_src = torch.empty(max(biggest, 256 << 20) // 4, device=device).uniform_()
    copy_dst = torch.empty_like(copy_src)
    copy_dst.copy_(copy_src)
    rows = []
    for (T, N), dtype_name in itertools.product(configs, dtypes):
        cfg = bench_config(impls, T, N, dtype_name, device, runs, floor_bw,
                           memory=not args.no_memory, copy_buffers=(copy_src, copy_dst))
        rows += cfg
        result["rows"] = rows
        save(partial=True)
        for r in cfg:
            if "error" in r:
                print(f"  T={T:<3} N={N:<8} {dtype_name:<8} {r['mode']:<7} {r['impl']:<18} "
                      f"ERROR {r['error'][:80]}")
                continue
            sj = r.get("speedup_vs_spikingjelly")
            mem = r.get("peak_mem_MiB")
            print(f"  T={T:<3} N={N:<8} {dtype_name:<8} {r['mode']:<7} {r['impl']:<18} "
                  f"{r['time_ms']:9.2f} ms {r['x_floor']:7.2f}x floor "
                  f"({r['copy_GBps']:.0f} GB/s)"
                  + (f"  {sj:5.2f}x vs SJ" if sj else "")
                  + (f"  peak {mem:8.1f} MiB" if mem is not None else ""))
    if not args.no_kinds:
        from neuron_kinds import kind_rows

        krows = kind_rows(bench_config, device, configs, dtypes, runs, floor_bw,
                          not args.no_memory, (copy_src, copy_dst))
        for r in krows:
            if "error" in r:
                print(f"  {r['impl']:<18} T={r['T']} {r['dtype']} {r['mode']} ERROR {r['error']}")
                continue
            ref = r.get("speedup_vs_reference")
            print(f"  T={r['T']:<3} N={r['N']:<8} {r['dtype']:<8} {r['mode']:<7} "
                  f"{r['impl']:<18} {r['time_ms']:9.2f} ms {r['x_floor']:7.2f}x floor "
                  f"({r['passes']} passes)" + (f"  {ref:5.2f}x vs reference" if ref else ""))
        rows += krows
        result["rows"] = rows
        save(partial=True)
    # The strict floor: the fastest copy seen anywhere in the run. A neighbour that
    # takes memory bandwidth slows the copy more than a kernel that is partly bound by
    # compute, so the same-minutes floor can flatter a contended run; x_floor_strict
    # cannot.
    best_bw = max([bw["copy_GBps"]] + [r["copy_GBps"] for r in rows if "copy_GBps" in r])
    result["copy_GBps_best"] = best_bw
    for r in rows:
        if "time_ms" in r:
            item = torch.empty((), dtype=DTYPES[r["dtype"]]).element_size()
            floor_s = r["passes"] * r["T"] * r["N"] * item / (best_bw * 1e9)
            r["x_floor_strict"] = r["time_ms"] / 1e3 / floor_s
    print(f"strict floor at the best copy of the run, {best_bw:.0f} GB/s:")
    for r in rows:
        if r["impl"].startswith("spikeforge") and "x_floor_strict" in r:
            print(f"  T={r['T']:<3} {r['dtype']:<8} {r['mode']:<7} {r['impl']:<18} "
                  f"{r['x_floor_strict']:5.2f}x strict floor")
    result["rows"] = rows
    result["load_average_at_end"] = os.getloadavg()
    if device == "cuda":
        from spikeforge.ops import triton_neuron

        result["triton_autotune"] = triton_neuron.tuned_configs()
    if device == "cuda" and not args.quick:
        result["open_neuromorphic"] = open_neuromorphic(device, runs)
        for r in result["open_neuromorphic"]:
            print(f"  Open Neuromorphic shape, {r['impl']:<14} "
                  + (f"{r['time_s']:.4f} s" if "time_s" in r else r.get("error", "")))
    if args.on:
        from neuron_kinds import open_neuromorphic_lif

        result["open_neuromorphic_lif"] = open_neuromorphic_lif(impls, device,
                                                                time_interleaved, runs)
        for r in result["open_neuromorphic_lif"]:
            print(f"  [500, 16, 16384] LIF {r['impl']:<14} "
                  + (f"fwd {r['fwd_s']:.3f} s, fwd+bwd {r['fwdbwd_s']:.3f} s, bwd "
                     f"{r['bwd_s']:.3f} s" if "fwdbwd_s" in r else r.get("error", ""))
                  + (f"  {r['speedup_vs_spikingjelly']:.2f}x vs SJ (bwd "
                     f"{r['bwd_speedup_vs_spikingjelly']:.2f}x)"
                     if "speedup_vs_spikingjelly" in r else ""))
    save(partial=False)
    print("wrote", out)
    return result


if __name__ == "__main__":
    main()
