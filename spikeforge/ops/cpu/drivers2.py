"""Drivers of the two-state kinds (ALIF ``(V, A)``, CubaLIF ``(I, V)``): the same chunked
parallel region as :mod:`.drivers`, one time step per row call.

Forward: per chunk, the two states start from ``state0``'s slices (or their rest values
``params[P_REST1]``, ``params[P_REST2]``) in two chunk buffers that the row updates in
place; spikes are written per step; the final states are copied out when asked.
Backward: per chunk, re-run the forward into a local ``[T, chunk]`` scratch of ``H`` (and,
for ALIF, a second one of ``theta``), then the reverse-time recurrence with both state
gradients in chunk buffers (equations in :mod:`.step`). Training thus moves five
passes over ``[T, N]`` (forward: read x, write spikes; backward: read x, read grad
spikes, write grad x) and saves only ``x`` and the initial state.
"""

from __future__ import annotations

import numpy as np
from numba import carray, prange

from spikeforge.ops.cpu.intrinsics import _call_row, _claim, _ptr_like
from spikeforge.ops.cpu.layout import (
    KIND_ALIF,
    O_DETACH,
    O_HAS_GS2,
    O_HAS_GV,
    O_HAS_S2,
    O_HAS_V0,
    O_KIND,
    O_NEED_GS2,
    O_NEED_GV0,
    O_RESET,
    O_STREAM,
    P_REST1,
    P_REST2,
    P_ZERO,
)


def _forward2_py(xp, s1p, s2p, sp, o1p, o2p, T, N, params, opts, sone, chunk, nthreads, fwd):
    """Forward over ``x`` ``[T, N]``: spikes ``s`` ``[T, N]`` and, when ``o1p``/``o2p`` are
    not 0, the final states. Every tensor comes as a data address (``x`` and ``s`` in the
    storage type of ``sone``, the states ``[N]`` in that of ``params``); ``state0`` entries
    are read only when the options say they are there."""
    has1, has2, stream = opts[O_HAS_V0], opts[O_HAS_S2], opts[O_STREAM]
    write = o1p != 0
    x = carray(_ptr_like(xp, sone), (T, N))
    s = carray(_ptr_like(sp, sone), (T, N))
    st1 = carray(_ptr_like(s1p, params), (N if has1 else 0,))
    st2 = carray(_ptr_like(s2p, params), (N if has2 else 0,))
    out1 = carray(_ptr_like(o1p, params), (N if write else 0,))
    out2 = carray(_ptr_like(o2p, params), (N if write else 0,))
    counter = np.zeros(1, np.int64)
    nchunks = (N + chunk - 1) // chunk
    nw = min(nthreads, nchunks)
    for _w in prange(nw):
        b1 = np.empty(chunk, params.dtype)
        b2 = np.empty(chunk, params.dtype)
        c = _claim(counter)
        while c < nchunks:
            n0 = c * chunk
            m = min(chunk, N - n0)
            n1 = n0 + m
            if has1:
                b1[:m] = st1[n0:n1]
            else:
                b1[:m] = params[P_REST1]
            if has2:
                b2[:m] = st2[n0:n1]
            else:
                b2[:m] = params[P_REST2]
            for t in range(T):
                _call_row(fwd, (x[t, n0:n1], s[t, n0:n1], b1[:m], b2[:m], m, params, sone[0],
                                sone[1], stream))
            if write:
                out1[n0:n1] = b1[:m]
                out2[n0:n1] = b2[:m]
            c = _claim(counter)


def _backward2_py(xp, s1p, s2p, gsp, g1Tp, g2Tp, gxp, g01p, g02p, T, N, params, opts, like,
                  chunk, nthreads, chg, grad):
    """Backward over ``[T, N]``: writes ``gx`` ``[T, N]`` and, when asked, the gradients of
    the two initial states ``[N]``, from ``gS`` ``[T, N]`` and the final states' gradients
    (``g1Tp``/``g2Tp``; absent = 0). Addresses and options as in :func:`_forward2_py`."""
    has1, has2 = opts[O_HAS_V0], opts[O_HAS_S2]
    has_g1, has_g2 = opts[O_HAS_GV], opts[O_HAS_GS2]
    need1, need2 = opts[O_NEED_GV0], opts[O_NEED_GS2]
    reset, detach, stream = opts[O_RESET], opts[O_DETACH], opts[O_STREAM]
    two = opts[O_KIND] == KIND_ALIF  # ALIF keeps theta beside H
    zero = params[P_ZERO]
    x = carray(_ptr_like(xp, like), (T, N))
    gs = carray(_ptr_like(gsp, like), (T, N))
    gx = carray(_ptr_like(gxp, like), (T, N))
    st1 = carray(_ptr_like(s1p, params), (N if has1 else 0,))
    st2 = carray(_ptr_like(s2p, params), (N if has2 else 0,))
    g1T = carray(_ptr_like(g1Tp, params), (N if has_g1 else 0,))
    g2T = carray(_ptr_like(g2Tp, params), (N if has_g2 else 0,))
    g01 = carray(_ptr_like(g01p, params), (N if need1 else 0,))
    g02 = carray(_ptr_like(g02p, params), (N if need2 else 0,))
    counter = np.zeros(1, np.int64)
    nchunks = (N + chunk - 1) // chunk
    nw = min(nthreads, nchunks)
    for _w in prange(nw):
        h1 = np.empty((T, chunk), params.dtype)
        h2 = np.empty((T if two else 1, chunk), params.dtype)
        b1 = np.empty(chunk, params.dtype)
        b2 = np.empty(chunk, params.dtype)
        c = _claim(counter)
        while c < nchunks:
            n0 = c * chunk
            m = min(chunk, N - n0)
            n1 = n0 + m
            if has1:
                b1[:m] = st1[n0:n1]
            else:
                b1[:m] = params[P_REST1]
            if has2:
                b2[:m] = st2[n0:n1]
            else:
                b2[:m] = params[P_REST2]
            for t in range(T):  # forward recompute into the scratch
                _call_row(chg, (x[t, n0:n1], h1[t, :m], h2[t if two else 0, :m], b1[:m], b2[:m],
                                m, params))
            if has_g1:  # the buffers now hold the state gradients
                b1[:m] = g1T[n0:n1]
            else:
                b1[:m] = zero
            if has_g2:
                b2[:m] = g2T[n0:n1]
            else:
                b2[:m] = zero
            for t in range(T - 1, -1, -1):
                _call_row(grad, (h1[t, :m], h2[t if two else 0, :m], gs[t, n0:n1], gx[t, n0:n1],
                                 b1[:m], b2[:m], m, params, reset, detach, stream))
            if need1:
                g01[n0:n1] = b1[:m]
            if need2:
                g02[n0:n1] = b2[:m]
            c = _claim(counter)
