"""Row loops of the two-state kinds (ALIF: ``(V, A)``, CubaLIF: ``(I, V)``): one time
step over ``m`` neurons of a chunk, inlined into the per-variant row functions of
:mod:`.variants` (kind, decay_input and reset compile-time constants in the forward and
the recompute; the surrogate in the gradient loop).

Contract: ``xr``/``sr``/``gsr``/``gxr`` are 1-d views of ``m`` elements in the tensor's
storage format (:mod:`.intrinsics`); ``s1``/``s2`` the chunk's two states (ALIF ``V``,
``A``; CubaLIF ``I``, ``V``) and ``g1``/``g2`` their gradients, compute-dtype arrays
updated in place; ``h1r``/``h2r`` rows of the backward's scratch: ``H`` and, for ALIF,
``theta`` (CubaLIF's backward needs ``H`` only: ``I`` enters linearly); ``p`` the parameter
vector (:mod:`.layout`). The state stays in the chunk's buffers (L2-resident) between
steps, so only ``x`` and the spikes (forward) or ``x``, ``gS`` and ``gX`` (backward) cross
memory.
"""

from __future__ import annotations

from numba import njit

from spikeforge.ops.cpu.intrinsics import _ld, _put, _put_bits
from spikeforge.ops.cpu.layout import (
    INLINE,
    KIND_ALIF,
    P_ALPHA,
    P_BETA,
    P_C1,
    P_C2,
    P_INV_ALPHA,
    P_K,
    P_KSYN,
    P_OMK,
    P_OMKSYN,
    P_ONE,
    P_RHO,
    P_VRESET,
    P_VREST,
    P_VTH,
    P_ZERO,
)
from spikeforge.ops.cpu.step import _grad_one, alif_grad, alif_step, cubalif_step


@njit(**INLINE)
def forward2_loop(xr, sr, s1, s2, m, p, one_s, zero_s, kind, decay, reset, stream):
    """One forward step: spikes into ``sr``, the states updated in place."""
    k, vth, vreset, vrest = p[P_K], p[P_VTH], p[P_VRESET], p[P_VREST]
    one, zero = p[P_ONE], p[P_ZERO]
    if kind == KIND_ALIF:
        rho, beta = p[P_RHO], p[P_BETA]
        for i in range(m):
            v, a, _, _, b = alif_step(s1[i], s2[i], _ld(xr, i), k, vth, vreset, vrest, rho, beta,
                                      one, zero, decay, reset)
            _put_bits(sr, i, one_s if b else zero_s, stream)
            s1[i] = v
            s2[i] = a
    else:
        ksyn = p[P_KSYN]
        for i in range(m):
            cur, v, _, b = cubalif_step(s1[i], s2[i], _ld(xr, i), k, ksyn, vth, vreset, vrest,
                                        zero, decay, reset)
            _put_bits(sr, i, one_s if b else zero_s, stream)
            s1[i] = cur
            s2[i] = v


@njit(**INLINE)
def charge2_loop(xr, h1r, h2r, s1, s2, m, p, kind, decay, reset):
    """The backward's recompute of one step: ``H`` into ``h1r`` (and ALIF's ``theta`` into
    ``h2r``), the states updated in place."""
    k, vth, vreset, vrest = p[P_K], p[P_VTH], p[P_VRESET], p[P_VREST]
    one, zero = p[P_ONE], p[P_ZERO]
    if kind == KIND_ALIF:
        rho, beta = p[P_RHO], p[P_BETA]
        for i in range(m):
            v, a, h, th, _ = alif_step(s1[i], s2[i], _ld(xr, i), k, vth, vreset, vrest, rho,
                                       beta, one, zero, decay, reset)
            h1r[i] = h
            h2r[i] = th
            s1[i] = v
            s2[i] = a
    else:
        ksyn = p[P_KSYN]
        for i in range(m):
            cur, v, h, _ = cubalif_step(s1[i], s2[i], _ld(xr, i), k, ksyn, vth, vreset, vrest,
                                        zero, decay, reset)
            h1r[i] = h
            s1[i] = cur
            s2[i] = v


@njit(**INLINE)
def grad2_loop(h1r, h2r, gsr, gxr, g1, g2, m, p, kind, decay, reset, detach, stream, surr):
    """One reverse step: ``gX`` into ``gxr``, the state gradients ``g1``/``g2`` (ALIF ``gV``,
    ``gA``; CubaLIF ``gI``, ``gV``) taken from step ``t`` to ``t - 1`` in place (equations in
    :mod:`.step`)."""
    vth, vreset, one, zero = p[P_VTH], p[P_VRESET], p[P_ONE], p[P_ZERO]
    k, omk = p[P_K], p[P_OMK]
    sgargs = (p[P_ALPHA], p[P_C1], p[P_C2], p[P_INV_ALPHA])
    if kind == KIND_ALIF:
        rho, beta = p[P_RHO], p[P_BETA]
        for i in range(m):
            gh, ga = alif_grad(h1r[i], h2r[i], _ld(gsr, i), g1[i], g2[i], vreset, rho, beta,
                               one, zero, sgargs, reset, detach, surr)
            _put(gxr, i, gh * k if decay else gh, stream)
            g1[i] = gh * omk
            g2[i] = ga
    else:
        omksyn = p[P_OMKSYN]
        for i in range(m):
            gh = _grad_one(h1r[i], _ld(gsr, i), g2[i], vth, vreset, one, zero, sgargs, reset,
                           detach, surr, zero, 0)  # no floor: CubaLIF's kernel does not run v_min
            gi = g1[i] + (gh * k if decay else gh)
            _put(gxr, i, gi, stream)
            g1[i] = gi * omksyn
            g2[i] = gh * omk
