"""ALIF and CubaLIF rows and the Open Neuromorphic LIF shape for ``benchmarks/neurons.py``.

Kinds: the fused CPU (or Triton) kernel of each two-state kind beside its reference
(the plain autograd loop of :mod:`spikeforge.functional.neuron`, or, on a branch whose
reference does not know the kind yet, the same equations written out here), forward
and forward+backward, timed round-robin with the floor's copy like the LIF rows. The
floors (bytes that must move over the copy bandwidth):

- ALIF: forward 2 passes of ``[T, N]`` (read x, write spikes), forward+backward 7: the
  issue's floor, which allows the adaptation state one pass each way on top of LIF's 5
  (our kernel recomputes it instead and moves 5).
- CubaLIF: forward 2, forward+backward 5, the same as LIF: the synaptic current is a
  linear function of ``x`` that the backward recomputes in registers (its gradient is
  carried in a register too), so nothing beyond LIF's passes has to move.

Open Neuromorphic shape: the LIF layer alone over ``x`` ``[500, 16, 16384]`` (T = 500,
batch 16, 16k neurons; float32), spikeforge against SpikingJelly 2.0, forward and
forward+backward (the backward is their difference), with a dense spike gradient.
"""

from __future__ import annotations

import math

import torch

from spikeforge.functional.surrogate import get_surrogate
from spikeforge.ops import dispatch
from spikeforge.ops.spec import NeuronSpec

KIND_PARAMS = {"alif": (0.5, math.exp(-1 / 20), 0.2), "cubalif": (0.5, 0.5)}
FWDBWD_PASSES = {"alif": 7, "cubalif": 5}


def kind_spec(kind: str) -> NeuronSpec:
    """The benchmark neuron: ANCHORS.md's LIF options (threshold 1, hard reset to 0, atan,
    detach_reset) on kind ``kind``."""
    return NeuronSpec(kind=kind, v_threshold=1.0, v_reset=0.0, reset="hard",
                      detach_reset=True, decay_input=True, surrogate="atan", alpha=2.0)


def equation_reference(x, params, spec):
    """The contract's equations as a plain autograd loop (used when the library's
    reference does not know the kind): spikes ``[T, ...]``."""
    sur = get_surrogate(spec.surrogate, spec.alpha)
    cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
    xc = x.to(cdt)
    a = torch.zeros_like(xc[0])
    v = torch.full_like(xc[0], spec.v_rest)

    def charge(v, drive, k):
        return v + k * (drive - (v - spec.v_rest))

    out = []
    for t in range(x.shape[0]):
        if spec.kind == "alif":
            k, rho, beta = params
            th = spec.v_threshold + beta * a
            h = charge(v, xc[t], k)
            s = sur(h - th)
            sr = s.detach()
            v = h * (1 - sr) + spec.v_reset * sr
            a = rho * a + sr
        else:
            k_syn, k_mem = params
            a = a - k_syn * a + xc[t]  # the synaptic current
            h = charge(v, a, k_mem)
            s = sur(h - spec.v_threshold)
            sr = s.detach()
            v = h * (1 - sr) + spec.v_reset * sr
        out.append(s)
    return torch.stack(out).to(x.dtype)


def kind_impls(kind: str, device: str) -> dict:
    """``{"spikeforge <kind>": fused, "reference <kind>": reference}``: callables ``x ->
    spikes``."""
    spec, params = kind_spec(kind), KIND_PARAMS[kind]
    backend = "triton" if device == "cuda" else "cpu"
    impls = {}
    if dispatch.unsupported(backend, spec, torch.float32, device, params) is None:
        impls[f"spikeforge {kind}"] = lambda x: dispatch.multistep(
            backend, x, None, params, spec, need_state=False)[0]
    try:
        import spikeforge.neurons  # noqa: F401 - registers the types' reference steps
        from spikeforge.functional.neuron import multistep_reference

        multistep_reference(torch.zeros(1, 2), None, params, spec)
        impls[f"reference {kind}"] = lambda x: multistep_reference(x, None, params, spec).spikes
    except (ValueError, TypeError, KeyError):
        impls[f"reference {kind}"] = lambda x: equation_reference(x, params, spec)
    return impls


def kind_rows(bench_config, device, configs, dtypes, runs, floor_bw, memory, copy_buffers):
    """Rows of both kinds for every ``(T, N)`` and dtype, through ``neurons.bench_config``
    with the kind's floor and its reference as the baseline."""
    rows = []
    for kind in ("alif", "cubalif"):
        impls = kind_impls(kind, device)
        for (T, N) in configs:
            for dtype_name in dtypes:
                rows += bench_config(impls, T, N, dtype_name, device, runs, floor_bw, memory,
                                     copy_buffers, fwdbwd_passes=FWDBWD_PASSES[kind],
                                     baseline=f"reference {kind}")
    return rows


def open_neuromorphic_lif(impls: dict, device: str, time_interleaved, runs: int,
                          T: int = 500, B: int = 16, H: int = 16384) -> list[dict]:
    """LIF alone over ``[T, B, H]`` float32: forward, forward+backward and their
    difference (backward), seconds, for spikeforge and SpikingJelly, timed round-robin."""
    impls = {k: v for k, v in impls.items() if k in ("spikeforge", "SpikingJelly")}
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn((T, B, H), generator=gen, device=device) * 1.5 + 0.5
    g = torch.randn((T, B, H), generator=gen, device=device)
    xg = x.clone().requires_grad_(True)

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

    n = max(3, runs // 3)
    t_f = time_interleaved({k: fwd(v) for k, v in impls.items()}, device, n, warmup=1)
    t_fb = time_interleaved({k: fwdbwd(v) for k, v in impls.items()}, device, n, warmup=1)
    rows = []
    for name in impls:
        row = {"impl": name, "shape": [T, B, H], "dtype": "float32"}
        if isinstance(t_f[name], Exception) or isinstance(t_fb[name], Exception):
            row["error"] = repr(t_f[name] if isinstance(t_f[name], Exception) else t_fb[name])
        else:
            row.update(fwd_s=t_f[name], fwdbwd_s=t_fb[name], bwd_s=t_fb[name] - t_f[name])
        rows.append(row)
    sj = next((r for r in rows if r["impl"] == "SpikingJelly" and "fwdbwd_s" in r), None)
    for r in rows:
        if sj is not None and "fwdbwd_s" in r:
            r["speedup_vs_spikingjelly"] = sj["fwdbwd_s"] / r["fwdbwd_s"]
            r["bwd_speedup_vs_spikingjelly"] = sj["bwd_s"] / r["bwd_s"]
    return rows
