"""Raw entry points of the CPU backend (no autograd), with the signatures of
:mod:`spikeforge.ops._autograd`: ``forward(x2d, state0, params, spec, need_state)`` and
``backward(x2d, state0, params, spec, grad_s, grad_state, need_gx, need_gstate,
need_gparams)`` over a ``[T, N]`` input, for kinds ``"if"``, ``"lif"`` (state ``(v,)``),
``"alif"`` (state ``(v, a)``, params ``(k, rho, beta)``) and ``"cubalif"`` (state ``(i, v)``,
params ``(k_syn, k_mem)``); equations in :mod:`spikeforge.ops.cpu.step`.

Spikes come back in ``x``'s dtype and the state in the compute dtype (float64 for
float64 input, else float32); both equal the reference bit for bit. Large ``[T, N]``
outputs come from a pool of reused buffers (:mod:`spikeforge.ops._cpu_pool`).
"""

from __future__ import annotations

import torch

from spikeforge.ops import _cpu_pool
from spikeforge.ops.cpu.host import _param_values, _stream_ok, cached_params, plan, state_arg
from spikeforge.ops.spec import NeuronSpec


def _grad_s_arg(grad_s, x2d):
    """``dL/dS`` as a contiguous ``[T, N]`` tensor of ``x``'s dtype (zeros if ``None``)."""
    T, N = x2d.shape
    if grad_s is None:
        return torch.zeros_like(x2d)
    if grad_s.dtype != x2d.dtype or grad_s.shape != x2d.shape or not grad_s.is_contiguous():
        return grad_s.reshape(T, N).to(x2d.dtype).contiguous()
    return grad_s


def _ptr(t) -> int:
    return 0 if t is None else t.data_ptr()


def forward(x2d: torch.Tensor, state0: tuple, params: tuple, spec: NeuronSpec,
            need_state: bool = True):
    """Raw fused forward over ``x2d`` ``[T, N]`` from ``state0`` (entries ``[N]`` or ``None``
    for the rest value). Returns ``(spikes [T, N] in x's dtype, final state tuple of [N]
    compute-dtype tensors, or None without need_state, whose stores are then skipped)``."""
    if not x2d.is_contiguous():
        x2d = x2d.contiguous()
    T, N = x2d.shape
    threads = torch.get_num_threads()
    if spec.kind in ("if", "lif"):
        (v0,) = state0
        drv, opts, opts_s, sone, chunk, nth, rows, cdt, np_cdt, sbytes, _ = plan(
            ("forward", id(spec), x2d.dtype, T, N, v0 is not None, threads), spec)
        s = _cpu_pool.empty((T, N), x2d.dtype)
        v = torch.empty(N, dtype=cdt) if need_state else None
        v0c = state_arg(v0, N, cdt)
        drv(x2d.data_ptr(), _ptr(v0c), s.data_ptr(), _ptr(v), T, N,
            cached_params(spec, _param_values(params), np_cdt),
            opts_s if _stream_ok(sbytes, s.data_ptr()) else opts, sone, chunk, nth, *rows)
        return s, ((v,) if need_state else None)
    s1, s2 = state0
    drv, opts, opts_s, sone, chunk, nth, rows, cdt, np_cdt, sbytes, _ = plan(
        ("forward2", id(spec), x2d.dtype, T, N, s1 is not None, s2 is not None, threads), spec)
    s = _cpu_pool.empty((T, N), x2d.dtype)
    out = (torch.empty(N, dtype=cdt), torch.empty(N, dtype=cdt)) if need_state else (None, None)
    c1, c2 = state_arg(s1, N, cdt), state_arg(s2, N, cdt)
    drv(x2d.data_ptr(), _ptr(c1), _ptr(c2), s.data_ptr(), _ptr(out[0]), _ptr(out[1]), T, N,
        cached_params(spec, _param_values(params), np_cdt),
        opts_s if _stream_ok(sbytes, s.data_ptr()) else opts, sone, chunk, nth, *rows)
    return s, (out if need_state else None)


def backward(x2d: torch.Tensor, state0: tuple, params: tuple, spec: NeuronSpec, grad_s,
             grad_state, need_gx: bool = True, need_gstate=(True, True),
             need_gparams=(True,)):
    """Raw fused backward of :func:`forward` for ``grad_s = dL/dS`` and ``grad_state`` (the
    final states' gradients; ``None`` entries = 0). Returns ``(grad_x [T, N] in x's dtype
    or None, grad_state0 tuple, grad_params tuple)`` (``None`` where not asked; only LIF's
    ``k`` can have a gradient: the two-state kinds take float params)."""
    if not x2d.is_contiguous():
        x2d = x2d.contiguous()
    T, N = x2d.shape
    dtype = x2d.dtype
    threads = torch.get_num_threads()
    grad_s = _grad_s_arg(grad_s, x2d)
    pvals = _param_values(params)
    if spec.kind in ("if", "lif"):
        (v0,) = state0
        (gvT,) = grad_state if grad_state else (None,)
        need_gv0 = bool(need_gstate[0]) and v0 is not None
        need_gk = spec.kind == "lif" and bool(need_gparams[0])
        drv, opts, opts_s, like, chunk, nth, rows, cdt, np_cdt, sbytes, _ = plan(
            ("backward", id(spec), dtype, T, N, v0 is not None, gvT is not None, bool(need_gx),
             need_gv0, need_gk, threads), spec)
        gx = _cpu_pool.empty((T, N), dtype) if need_gx else None
        gv0 = torch.empty(N, dtype=cdt) if need_gv0 else None
        gk_part = torch.zeros(-(-N // chunk), dtype=cdt) if need_gk else None  # one per chunk
        # the converted states stay referenced until the kernel has run
        v0c, gvc = state_arg(v0, N, cdt), state_arg(gvT, N, cdt)
        drv(x2d.data_ptr(), _ptr(v0c), grad_s.data_ptr(), _ptr(gvc), _ptr(gx), _ptr(gv0),
            _ptr(gk_part), T, N,
            cached_params(spec, pvals, np_cdt),
            opts_s if need_gx and _stream_ok(sbytes, _ptr(gx)) else opts,
            like, chunk, nth, *rows)
        gk = None if gk_part is None else gk_part.sum()
        return gx, (gv0,), ((gk,) if spec.kind == "lif" else ())
    s1, s2 = state0
    g1T, g2T = grad_state if grad_state else (None, None)
    need1 = bool(need_gstate[0]) and s1 is not None
    need2 = bool(need_gstate[1]) and s2 is not None
    drv, opts, opts_s, like, chunk, nth, rows, cdt, np_cdt, sbytes, _ = plan(
        ("backward2", id(spec), dtype, T, N, s1 is not None, s2 is not None, g1T is not None,
         g2T is not None, need1, need2, threads), spec)
    gx = _cpu_pool.empty((T, N), dtype)  # computed even when not asked (a rare case)
    g01 = torch.empty(N, dtype=cdt) if need1 else None
    g02 = torch.empty(N, dtype=cdt) if need2 else None
    conv = [state_arg(t, N, cdt) for t in (s1, s2, g1T, g2T)]  # referenced until run
    drv(x2d.data_ptr(), *(_ptr(c) for c in conv[:2]), grad_s.data_ptr(),
        *(_ptr(c) for c in conv[2:]), gx.data_ptr(), _ptr(g01), _ptr(g02), T, N,
        cached_params(spec, pvals, np_cdt),
        opts_s if _stream_ok(sbytes, gx.data_ptr()) else opts, like, chunk, nth, *rows)
    return (gx if need_gx else None), (g01, g02), (None,) * len(params)
