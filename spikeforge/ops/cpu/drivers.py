"""Drivers of the IF/LIF kernels: the parallel region over chunks of neurons and the
time loop that calls the variant's row functions by address.

Work is split into chunks of neurons that the threads of one parallel region
(``numba.prange``) claim from an atomic counter, so a thread that another process delays
leaves its share to the others; small problems
(:data:`spikeforge.ops.cpu.host.PARALLEL_MIN_ELEMENTS`) run a serial copy of the same
code (waking threads and joining them costs more than it
saves). Per chunk the loop runs over ``t`` outside and over the chunk's neurons inside,
four time steps per row call. Tensors cross as data addresses
(:func:`~spikeforge.ops.cpu.intrinsics._ptr_like`), which costs the host a fraction of
numba's array unboxing.
"""

from __future__ import annotations

import numpy as np
from numba import carray, prange

from spikeforge.ops.cpu.intrinsics import _call_row, _claim, _ptr_like
from spikeforge.ops.cpu.layout import (
    KIND_LIF,
    O_DECAY,
    O_DETACH,
    O_FLOOR,
    O_HAS_GV,
    O_HAS_V0,
    O_KIND,
    O_NEED_GK,
    O_NEED_GV0,
    O_NEED_GX,
    O_RESET,
    O_STREAM,
    P_K,
    P_OMK,
    P_ONE,
    P_VREST,
    P_ZERO,
)
from spikeforge.ops.cpu.rows import _grad_k_row


def _forward_py(xp, v0p, sp, vp, T, N, params, opts, sone, chunk, nthreads, fwd4, fwd1):
    """Forward over ``x`` ``[T, N]``: writes spikes ``s`` and the final membrane ``vout``.

    ``x``, ``v0`` (``N``), ``s`` (``T, N``) and ``vout`` (``N``) come as data addresses
    (``xp``, ``v0p``, ``sp``, ``vp``; contiguous, ``x`` and ``s`` in the storage type of
    ``sone``, the membranes in that of ``params``); ``vp = 0`` skips the final membrane
    (nobody asked for it) and ``v0p`` is read only when the options say there is a v0.
    Each worker claims chunks of ``chunk`` neurons from a shared counter (so a worker
    slowed by another process leaves its share to the others) and runs
    ``H[t] = charge(V[t-1], X[t])``, ``S[t] = H[t] - V_th >= 0``, ``V[t] = reset(H[t], S[t])``
    over t through the form's row functions at addresses ``fwd4`` (four steps) and
    ``fwd1`` (one).
    The membrane passes between two local buffers (a row reads one and writes the
    other), starting from ``v0``'s slice or a buffer of ``V_rest`` and ending in ``vout``'s slice,
    so no pass copies it in or out.
    """
    has_v0, stream = opts[O_HAS_V0], opts[O_STREAM]
    write_v = vp != 0
    x = carray(_ptr_like(xp, sone), (T, N))
    s = carray(_ptr_like(sp, sone), (T, N))
    v0 = carray(_ptr_like(v0p, params), (N if has_v0 else 0,))
    vout = carray(_ptr_like(vp, params), (N if write_v else 0,))
    counter = np.zeros(1, np.int64)
    nchunks = (N + chunk - 1) // chunk
    nw = min(nthreads, nchunks)
    for _w in prange(nw):
        va = np.empty(chunk, params.dtype)
        vb = np.empty(chunk, params.dtype)
        vz = np.empty(chunk, params.dtype)  # V[-1] = V_rest without v0; never written
        vz[:] = params[P_VREST]
        c = _claim(counter)
        while c < nchunks:
            n0 = c * chunk
            m = min(chunk, N - n0)
            n1 = n0 + m
            vin = v0[n0:n1] if has_v0 else vz[:m]
            flip = False
            t = 0
            while t + 4 <= T:
                if t + 4 == T and write_v:
                    dst = vout[n0:n1]
                else:
                    dst = vb[:m] if flip else va[:m]
                _call_row(fwd4, (
                    x[t, n0:n1], x[t + 1, n0:n1], x[t + 2, n0:n1], x[t + 3, n0:n1],
                    s[t, n0:n1], s[t + 1, n0:n1], s[t + 2, n0:n1], s[t + 3, n0:n1],
                    vin, dst, m, params, sone[0], sone[1], stream,
                ))
                vin = dst
                flip = not flip
                t += 4
            while t < T:
                if t + 1 == T and write_v:
                    dst = vout[n0:n1]
                else:
                    dst = vb[:m] if flip else va[:m]
                _call_row(fwd1, (x[t, n0:n1], s[t, n0:n1], vin, dst, m, params, sone[0], sone[1]))
                vin = dst
                flip = not flip
                t += 1
            c = _claim(counter)


def _backward_py(xp, v0p, gsp, gvTp, gxp, gv0p, gkp, T, N, params, opts, like, chunk,
                 nthreads, chg4, chg1, grad4, grad1):
    """Backward over ``[T, N]``: per chunk of neurons, re-run the forward into a local
    ``[T, chunk]`` scratch of ``H`` (rows at ``chg4``/``chg1``, the neuron form's) and then
    the reverse-time recurrence (rows at ``grad4``/``grad1``, the surrogate's)::

        gH[t]   = gS[t] sg(H[t] - V_th) + gV[t] dV[t]/dH[t]
        gX[t]   = k gH[t] (LIF, decay_input) else gH[t]
        gV[t-1] = (1 - k) gH[t] (LIF) else gH[t]
        gk     += gH[t] (X[t] - (V[t-1] - V_rest))   (decay_input) else gH[t] (V_rest - V[t-1])

    with ``dV/dH = (1 - S) + (V_reset - H) sg`` (hard), ``1 - V_th sg`` (soft), 1 (none),
    the ``sg`` terms dropped under ``detach_reset``; with a membrane floor the rows mask
    ``gV[t]`` by ``reset(H[t]) >= V_min`` first (:mod:`.step`). ``gV[T-1]`` is the
    gradient of the final
    membrane. Writes ``gx`` ``[T, N]``, ``gv0`` ``[N]`` and one partial ``gk`` per chunk
    (so the sum does not depend on which worker took which chunk). ``V[t-1]`` for ``gk``
    is recomputed from the scratch's ``H[t-1]``, never stored. Chunks are claimed from
    a shared counter as in the forward. Every tensor comes as a data address (as in
    :func:`_forward_py`; ``[T, N]`` ones in the storage type of ``like``, the rest in
    that of ``params``), read or written only when the options say it is there.
    """
    k, one, zero, omk = params[P_K], params[P_ONE], params[P_ZERO], params[P_OMK]
    kind, decay, reset, detach = opts[O_KIND], opts[O_DECAY], opts[O_RESET], opts[O_DETACH]
    has_v0, has_gv = opts[O_HAS_V0], opts[O_HAS_GV]
    need_gk, need_gx, need_gv0 = opts[O_NEED_GK], opts[O_NEED_GX], opts[O_NEED_GV0]
    stream, floor = opts[O_STREAM], opts[O_FLOOR]
    kx = k if (kind == KIND_LIF and decay == 1) else one  # gX = kx gH
    kv = omk if kind == KIND_LIF else one  # gV[t-1] = kv gH
    nchunks = (N + chunk - 1) // chunk
    x = carray(_ptr_like(xp, like), (T, N))
    gs = carray(_ptr_like(gsp, like), (T, N))
    gx = carray(_ptr_like(gxp, like), (T, N) if need_gx else (0, 0))
    v0 = carray(_ptr_like(v0p, params), (N if has_v0 else 0,))
    gvT = carray(_ptr_like(gvTp, params), (N if has_gv else 0,))
    gv0 = carray(_ptr_like(gv0p, params), (N if need_gv0 else 0,))
    gk_part = carray(_ptr_like(gkp, params), (nchunks if need_gk else 0,))
    counter = np.zeros(1, np.int64)
    nw = min(nthreads, nchunks)
    for _w in prange(nw):
        hs = np.empty((T, chunk), params.dtype)
        gv = np.empty(chunk, params.dtype)
        va = np.empty(chunk, params.dtype)
        vb = np.empty(chunk, params.dtype)
        vz = np.empty(chunk, params.dtype)  # V[-1] = V_rest without v0; never written
        vz[:] = params[P_VREST]
        ghb = np.empty(chunk, params.dtype)
        gk_acc = np.zeros(chunk, params.dtype)
        c = _claim(counter)
        while c < nchunks:
            n0 = c * chunk
            m = min(chunk, N - n0)
            n1 = n0 + m
            if need_gk:
                gk_acc[:m] = zero
            vinit = v0[n0:n1] if has_v0 else vz[:m]
            # forward recompute: H[t] into the scratch, V between two buffers
            vin = vinit
            flip = False
            t = 0
            while t + 4 <= T:
                dst = vb[:m] if flip else va[:m]
                _call_row(chg4, (
                    x[t, n0:n1], x[t + 1, n0:n1], x[t + 2, n0:n1], x[t + 3, n0:n1],
                    hs[t], hs[t + 1], hs[t + 2], hs[t + 3], vin, dst, m, params,
                ))
                vin = dst
                flip = not flip
                t += 4
            while t < T:
                dst = vb[:m] if flip else va[:m]
                _call_row(chg1, (x[t, n0:n1], hs[t], vin, dst, m, params))
                vin = dst
                flip = not flip
                t += 1
            # reverse time
            if has_gv:
                gv[:m] = gvT[n0:n1]
            else:
                gv[:m] = zero
            t = T - 1
            if need_gx and not need_gk:  # four steps per pass (the gk path needs every gH)
                while t >= 3:
                    _call_row(grad4, (
                        hs[t], hs[t - 1], hs[t - 2], hs[t - 3],
                        gs[t, n0:n1], gs[t - 1, n0:n1], gs[t - 2, n0:n1], gs[t - 3, n0:n1],
                        gx[t, n0:n1], gx[t - 1, n0:n1], gx[t - 2, n0:n1], gx[t - 3, n0:n1],
                        gv, m, params, kx, kv, reset, detach, stream,
                    ))
                    t -= 4
            for r in range(t, -1, -1):  # the remaining steps one at a time
                _call_row(grad1, (
                    hs[r], gs[r, n0:n1], gx[r, n0:n1] if need_gx else gx[0, 0:0],
                    ghb, gv, m, params, kx, kv, reset, detach, need_gx, need_gk,
                ))
                if need_gk:
                    _grad_k_row(
                        x[r, n0:n1], hs[r - 1] if r > 0 else hs[0], vinit, ghb, gk_acc,
                        m, params, r == 0, decay, reset, floor,
                    )
            if need_gv0:
                gv0[n0:n1] = gv[:m]
            if need_gk:
                acc = zero
                for i in range(m):
                    acc += gk_acc[i]
                gk_part[c] = acc
            c = _claim(counter)
