"""Per-step arithmetic of every kernel kind, on scalars (inlined into the row loops).

The operation order is the reference's (:mod:`spikeforge.functional.neuron` and the
neuron types' steps), in the compute dtype, so spikes and states equal the reference bit
for bit. Equations (``dt = 1``; :mod:`spikeforge.ops.spec`)::

    H[t] = V[t-1] + k (X[t] - (V[t-1] - V_rest))    LIF charge, decay_input (IF: V + X;
                                                   no decay_input: V - k (V - V_rest) + X)
    S[t] = H[t] - theta[t] >= 0                      theta = V_th (ALIF: V_th + beta A[t-1])
    V[t] = reset(H[t], S[t])                         hard / soft (subtracts theta) / none
    V[t] = max(V[t], V_min)                          IF/LIF with a membrane floor (floor=1)
    A[t] = rho A[t-1] + S[t]                         ALIF
    I[t] = I[t-1] - k_syn I[t-1] + X[t]              CubaLIF (drives the LIF charge)

Backward, per step, with ``sg = g'(H - theta)`` (the surrogate) and incoming ``gV = dL/dV[t]``,
``gA = dL/dA[t]``, ``gS = dL/dS[t]``::

    gS* = gS + gV dV/dS + gA                  (the reset and adaptation terms dropped under
                                               detach_reset)
    gH  = gS* sg + gV dV/dH|S,   gTheta = -gS* sg + gV dV/dTheta|S
    dL/dV[t-1] = (1 - k) gH (IF: gH),   dL/dX[t] = k gH (decay_input) else gH
    dL/dA[t-1] = rho gA + beta gTheta   (ALIF)
    gI* = gI + dL/dI[t] from the charge,  dL/dX[t] = gI*,  dL/dI[t-1] = (1 - k_syn) gI*
                                              (CubaLIF)

with ``dV/dS = V_reset - H`` (hard), ``-theta`` (soft), 0 (none); ``dV/dH|S = 1 - S`` (hard)
else 1; ``dV/dTheta|S = -S`` (soft) else 0. With the floor, ``gV`` first passes the clip:
``gV <- gV [R >= V_min]`` with ``R = reset(H, S)`` the membrane before the floor (the
gradient of ``torch.clamp(R, min=V_min)``, 0 where ``R`` is NaN), so the mask multiplies
the whole ``dV/dH`` including the reset's surrogate term, as the reference's autograd.

``floor`` is a compile-time constant of the row variants (:mod:`.variants`): with
``floor = 0`` the floor's code is folded away and the rows are the unfloored ones.
"""

from __future__ import annotations

from numba import njit

from spikeforge.ops.cpu.layout import HARD, INLINE, KIND_IF, KIND_LIF, SOFT
from spikeforge.ops.cpu.surrogates import surrogate_grad


@njit(**INLINE)
def _charge(v, x, k, vrest, kind, decay):
    """``H[t]`` from ``V[t-1]`` and the drive ``X[t]``, the same operation order as the
    reference."""
    if kind == KIND_IF:
        return v + x
    if decay:
        return v + k * (x - (v - vrest))
    return v - k * (v - vrest) + x


@njit(**INLINE)
def _reset(h, spike, zero, vth, vreset, reset):
    """``V[t]`` from ``H[t]`` and the spike (a bool), bit for bit the reference's
    ``H (1 - S) + V_reset S`` (hard) or ``H - theta S`` (soft, ``vth`` = theta) with ``S`` in
    {0, 1}, written as a select between the two cases: ``S = 1`` gives ``H * 0 + V_reset`` /
    ``H - theta``, ``S = 0`` gives ``H + V_reset * 0`` / ``H - theta * 0`` (``* 0`` kept so that
    signed zeros, infinities and NaNs come out as in the reference). The select form
    costs a quarter less than the arithmetic one (benchmarks/README.md)."""
    if reset == HARD:
        return (h * zero + vreset) if spike else (h + vreset * zero)
    if reset == SOFT:
        return (h - vth) if spike else (h - vth * zero)
    return h


@njit(**INLINE)
def _floor(v, vmin, floor):
    """The membrane floor ``max(V, V_min)`` as the reference's ``torch.clamp(v, min=v_min)``:
    ``V_min`` where ``V < V_min``, else ``V`` (so a NaN stays NaN, and ``-0.0`` at a floor
    of ``0.0`` stays ``-0.0``, as clamp keeps them); ``V`` unchanged when ``floor`` is 0."""
    if floor:
        return vmin if v < vmin else v
    return v


@njit(**INLINE)
def _step(v, xv, k, vth, vreset, vrest, one, zero, kind, decay, reset, vmin, floor):
    """IF/LIF: ``(V[t], H[t], S[t] as bool)`` from ``V[t-1]`` and ``X[t]``; reset, then the
    floor (``floor`` a compile-time constant)."""
    h = _charge(v, xv, k, vrest, kind, decay)
    spike = h - vth >= zero
    return _floor(_reset(h, spike, zero, vth, vreset, reset), vmin, floor), h, spike


@njit(**INLINE)
def _grad_one(h, gsv, g, vth, vreset, one, zero, sgargs, reset, detach, surr, vmin, floor):
    """IF/LIF: ``gH`` of one step from ``H``, ``gS`` and the incoming ``gV`` (with ``floor``,
    ``gV`` masked by ``R >= V_min``, ``R`` the membrane after the reset, before the floor)."""
    alpha, c1, c2, inv_alpha = sgargs
    z = h - vth
    if floor:  # a select, not a product: the reference's where(R >= V_min, gV, 0)
        g = g if _reset(h, z >= zero, zero, vth, vreset, reset) >= vmin else zero
    sg = surrogate_grad(z, surr, alpha, c1, c2, one, zero, inv_alpha)
    s = one if z >= zero else zero
    if reset == HARD:
        dvdh = (one - s) if detach else (one - s) + (vreset - h) * sg
    elif reset == SOFT:
        dvdh = one if detach else one - vth * sg
    else:
        dvdh = one
    return gsv * sg + g * dvdh


@njit(**INLINE)
def alif_step(v, a, xv, k, vth, vreset, vrest, rho, beta, one, zero, decay, reset):
    """ALIF (Bellec et al., NeurIPS 2018): ``(V[t], A[t], H[t], theta[t], S[t] as bool)``
    from ``V[t-1]``, ``A[t-1]`` and ``X[t]``; ``theta = V_th + beta A[t-1]``."""
    th = vth + beta * a
    h = _charge(v, xv, k, vrest, KIND_LIF, decay)
    spike = h - th >= zero
    return (_reset(h, spike, zero, th, vreset, reset), rho * a + (one if spike else zero),
            h, th, spike)


@njit(**INLINE)
def alif_grad(h, th, gsv, gv, ga, vreset, rho, beta, one, zero, sgargs, reset, detach, surr):
    """ALIF backward of one step: ``(gH, dL/dA[t-1])`` from ``H``, ``theta``, ``gS`` and the
    incoming ``gV = dL/dV[t]``, ``gA = dL/dA[t]`` (module equations)."""
    alpha, c1, c2, inv_alpha = sgargs
    z = h - th
    sg = surrogate_grad(z, surr, alpha, c1, c2, one, zero, inv_alpha)
    s = one if z >= zero else zero
    if reset == HARD:
        dvdh, dvds, dvdth = one - s, vreset - h, zero
    elif reset == SOFT:
        dvdh, dvds, dvdth = one, -th, -s
    else:
        dvdh, dvds, dvdth = one, zero, zero
    gst = gsv if detach else gsv + gv * dvds + ga
    gh = gst * sg + gv * dvdh
    gth = gv * dvdth - gst * sg
    return gh, rho * ga + beta * gth


@njit(**INLINE)
def cubalif_step(i, v, xv, k, ksyn, vth, vreset, vrest, zero, decay, reset):
    """CubaLIF: ``(I[t], V[t], H[t], S[t] as bool)`` from ``I[t-1]``, ``V[t-1]`` and
    ``X[t]``: ``I[t] = I[t-1] - k_syn I[t-1] + X[t]`` drives the LIF charge (``k = k_mem``)."""
    i_new = i - ksyn * i + xv
    h = _charge(v, i_new, k, vrest, KIND_LIF, decay)
    spike = h - vth >= zero
    return i_new, _reset(h, spike, zero, vth, vreset, reset), h, spike
