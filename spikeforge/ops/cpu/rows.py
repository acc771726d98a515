"""Row loops of the IF/LIF kernels: one or four time steps over ``m`` neurons of a
chunk (inlined into the per-variant row functions of :mod:`.variants`, where every
option they branch on is a compile-time constant, so LLVM vectorises a branch-free
loop). ``floor`` (the membrane floor ``V_min = p[P_VMIN]``, :func:`~.step._floor`) is one of
them: the unfloored variants compile to the same code as before the floor existed.

Contract of every loop: ``[T, N]`` rows ``x*``, ``s*``, ``g*`` are 1-d views of ``m``
elements in the tensor's storage format (float32/float64, or raw 16-bit words for
bfloat16/float16, see :mod:`.intrinsics`); ``vin``/``vout``/``h*``/``gv`` are compute-dtype
arrays of at least ``m``; ``p`` the parameter vector (:mod:`.layout`). Four-step loops
keep the membrane (or its gradient) in a register between their steps and store each
step's output right after it (stores batched after the four steps stayed scalar).
"""

from __future__ import annotations

from numba import njit

from spikeforge.ops.cpu.intrinsics import _ld, _put, _put_bits, _st
from spikeforge.ops.cpu.layout import (
    INLINE,
    P_ALPHA,
    P_C1,
    P_C2,
    P_INV_ALPHA,
    P_K,
    P_ONE,
    P_VMIN,
    P_VRESET,
    P_VREST,
    P_VTH,
    P_ZERO,
    ROW,
)
from spikeforge.ops.cpu.step import _charge, _floor, _grad_one, _reset, _step


@njit(**INLINE)
def _forward_loop(xr, sr, vin, vout, m, p, one_s, zero_s, kind, decay, reset, floor):
    """One time step for ``m`` neurons: ``H = charge(V, x)``, ``sr = H - V_th >= 0``,
    ``vout = max(reset(H, S), V_min)`` (the floor with ``floor``) from ``V = vin`` (``vin``
    and ``vout`` are distinct arrays: the vectoriser's overlap check would send an in-place
    update down the scalar loop).
    Ordinary stores only: it runs for the ``T mod 4`` remainder steps."""
    k, vth, vreset, vrest = p[P_K], p[P_VTH], p[P_VRESET], p[P_VREST]
    zero, vmin = p[P_ZERO], p[P_VMIN]
    for i in range(m):
        h = _charge(vin[i], _ld(xr, i), k, vrest, kind, decay)
        spike = h - vth >= zero
        sr[i] = one_s if spike else zero_s
        vout[i] = _floor(_reset(h, spike, zero, vth, vreset, reset), vmin, floor)


@njit(**INLINE)
def _forward_loop4(x0, x1, x2, x3, s0, s1, s2, s3, vin, vout, m, p, one_s, zero_s, kind, decay,
                   reset, floor, stream):
    """Four consecutive time steps of :func:`_forward_loop` in one pass over the neurons,
    the membrane in a register between them (measured 1.4-2.2x faster than four row
    passes: a quarter of the membrane traffic, four streams in flight)."""
    k, vth, vreset, vrest = p[P_K], p[P_VTH], p[P_VRESET], p[P_VREST]
    one, zero, vmin = p[P_ONE], p[P_ZERO], p[P_VMIN]
    for i in range(m):  # each store right after its step (stores batched at the end: 1.6x slower)
        vv, _, b = _step(vin[i], _ld(x0, i), k, vth, vreset, vrest, one, zero, kind, decay, reset,
                       vmin, floor)
        _put_bits(s0, i, one_s if b else zero_s, stream)
        vv, _, b = _step(vv, _ld(x1, i), k, vth, vreset, vrest, one, zero, kind, decay, reset,
                       vmin, floor)
        _put_bits(s1, i, one_s if b else zero_s, stream)
        vv, _, b = _step(vv, _ld(x2, i), k, vth, vreset, vrest, one, zero, kind, decay, reset,
                       vmin, floor)
        _put_bits(s2, i, one_s if b else zero_s, stream)
        vv, _, b = _step(vv, _ld(x3, i), k, vth, vreset, vrest, one, zero, kind, decay, reset,
                       vmin, floor)
        _put_bits(s3, i, one_s if b else zero_s, stream)
        vout[i] = vv


@njit(**INLINE)
def _charge_loop(xr, hr, vin, vout, m, p, kind, decay, reset, floor):
    """As :func:`_forward_loop` but storing ``H`` (the backward's recompute)."""
    k, vth, vreset, vrest = p[P_K], p[P_VTH], p[P_VRESET], p[P_VREST]
    zero, vmin = p[P_ZERO], p[P_VMIN]
    for i in range(m):
        h = _charge(vin[i], _ld(xr, i), k, vrest, kind, decay)
        hr[i] = h
        vout[i] = _floor(_reset(h, h - vth >= zero, zero, vth, vreset, reset), vmin, floor)


@njit(**INLINE)
def _charge_loop4(x0, x1, x2, x3, h0, h1, h2, h3, vin, vout, m, p, kind, decay, reset, floor):
    """Four consecutive time steps of :func:`_charge_loop` in one pass."""
    k, vth, vreset, vrest = p[P_K], p[P_VTH], p[P_VRESET], p[P_VREST]
    one, zero, vmin = p[P_ONE], p[P_ZERO], p[P_VMIN]
    for i in range(m):  # each store right after its step (stores batched at the end: 1.6x slower)
        vv, h, _ = _step(vin[i], _ld(x0, i), k, vth, vreset, vrest, one, zero, kind, decay, reset,
                       vmin, floor)
        h0[i] = h
        vv, h, _ = _step(vv, _ld(x1, i), k, vth, vreset, vrest, one, zero, kind, decay, reset,
                       vmin, floor)
        h1[i] = h
        vv, h, _ = _step(vv, _ld(x2, i), k, vth, vreset, vrest, one, zero, kind, decay, reset,
                       vmin, floor)
        h2[i] = h
        vv, h, _ = _step(vv, _ld(x3, i), k, vth, vreset, vrest, one, zero, kind, decay, reset,
                       vmin, floor)
        h3[i] = h
        vout[i] = vv


@njit(**INLINE)
def _grad_loop(hr, gsr, gxr, ghb, gv, m, p, kx, kv, reset, detach, store_gx, keep_gh, surr,
               floor):
    """One reverse step: ``gH = gS sg(H - V_th) + gV dV/dH``; ``gX = kx gH`` (stored when
    ``store_gx``), ``gV <- kv gH`` and ``ghb = gH`` when ``keep_gh``. Inlined into one
    function per surrogate (and ``floor``) below, where ``surr`` and ``floor`` are
    compile-time constants."""
    vth, vreset, one, zero, vmin = p[P_VTH], p[P_VRESET], p[P_ONE], p[P_ZERO], p[P_VMIN]
    sgargs = (p[P_ALPHA], p[P_C1], p[P_C2], p[P_INV_ALPHA])
    for i in range(m):
        gh = _grad_one(hr[i], _ld(gsr, i), gv[i], vth, vreset, one, zero, sgargs, reset, detach,
                       surr, vmin, floor)
        if store_gx:
            _st(gxr, i, gh * kx)
        if keep_gh:
            ghb[i] = gh
        gv[i] = gh * kv


@njit(**INLINE)
def _grad_loop4(h3, h2, h1, h0, g3, g2, g1, g0, x3, x2, x1, x0, gv, m, p, kx, kv, reset, detach,
                stream, surr, floor):
    """Four reverse steps (t, t-1, t-2, t-3 = rows 3, 2, 1, 0) of :func:`_grad_loop` in one
    pass, ``gV`` in a register between them; always stores ``gX`` (into ``x*``)."""
    vth, vreset, one, zero, vmin = p[P_VTH], p[P_VRESET], p[P_ONE], p[P_ZERO], p[P_VMIN]
    sgargs = (p[P_ALPHA], p[P_C1], p[P_C2], p[P_INV_ALPHA])
    for i in range(m):
        a = _grad_one(h3[i], _ld(g3, i), gv[i], vth, vreset, one, zero, sgargs, reset, detach,
                      surr, vmin, floor)
        _put(x3, i, a * kx, stream)
        b = _grad_one(h2[i], _ld(g2, i), a * kv, vth, vreset, one, zero, sgargs, reset, detach,
                      surr, vmin, floor)
        _put(x2, i, b * kx, stream)
        c = _grad_one(h1[i], _ld(g1, i), b * kv, vth, vreset, one, zero, sgargs, reset, detach,
                      surr, vmin, floor)
        _put(x1, i, c * kx, stream)
        d = _grad_one(h0[i], _ld(g0, i), c * kv, vth, vreset, one, zero, sgargs, reset, detach,
                      surr, vmin, floor)
        _put(x0, i, d * kx, stream)
        gv[i] = d * kv


@njit(**ROW)
def _grad_k_row(xr, hpr, vinit, ghb, acc, m, p, first, decay, reset, floor):
    """``acc += gH (X - (V[t-1] - V_rest))`` (decay_input) or ``-gH (V[t-1] - V_rest)``,
    with ``V[t-1] = max(reset(H[t-1]), V_min)`` recomputed (the floor only with ``floor``, a
    runtime switch here: this row is compiled once, and LLVM unswitches the loop-invariant
    branch; ``vinit`` at ``t = 0``)."""
    vth, vreset, vrest, zero, vmin = p[P_VTH], p[P_VRESET], p[P_VREST], p[P_ZERO], p[P_VMIN]
    for i in range(m):
        if first:
            vp = vinit[i]
        else:
            hp = hpr[i]
            vp = _floor(_reset(hp, hp - vth >= zero, zero, vth, vreset, reset), vmin, floor)
        if decay:
            acc[i] += ghb[i] * (_ld(xr, i) - (vp - vrest))
        else:
            acc[i] -= ghb[i] * (vp - vrest)

