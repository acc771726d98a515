"""Fused multi-step ALIF (adaptive threshold; Bellec et al. 2018, "Long short-term
memory and learning-to-learn in networks of spiking neurons", LSNN) in Triton.

State ``(V, A)``, float parameters ``(k, rho, beta)``, ``rho = exp(-1/tau_adapt)``::

    H[t]     = LIF charge of V[t-1] and X[t]  (arith.charge)
    theta[t] = V_th + beta A[t-1]
    S[t]     = Heaviside(H[t] - theta[t])
    V[t]     = reset(H[t], S[t], theta[t])   (a soft reset subtracts theta[t])
    A[t]     = rho A[t-1] + S[t]

``detach_reset`` makes the spike a constant in both the membrane reset and the
adaptation update (no gradient flows back through ``A``'s increments). The backward
recomputes the forward, storing ``H[t]`` (in the ``grad_x`` buffer where it has the
compute dtype) and ``A[t-1]`` as scratch, then runs reverse time::

    gZ       = sg(Z) (gS[t] + gA[t] + gV[t] dV[t]/dS)          Z = H - theta
    gH       = gZ + gV[t] dV[t]/dH|_S                           (arith.reset_grads)
    gtheta   = -gZ + gV[t] dV[t]/dtheta|_S
    gA[t-1]  = rho gA[t] + beta gtheta,   gV[t-1] = (1 - k) gH,   gX[t] = k gH | gH

(``gA[t]`` and the ``dV/dS`` term drop out of ``gZ`` under ``detach_reset``). Seven
passes over ``[T, N]`` in training (forward: x, S; backward: x, H and A written and
read, gS, gX). Half-precision inputs compute in float32; spikes in x's dtype.
"""

from __future__ import annotations

import torch
import triton.language as tl

from spikeforge.ops.spec import NeuronSpec
from spikeforge.ops.triton import two_state
from spikeforge.ops.triton.arith import (
    block_offsets,
    charge,
    fire,
    fire_reset,
    load_or,
    reset_grads,
    spec_values,
    surrogate_grad,
    surrogate_values,
)


def alif_fwd(
    x_ptr, v0_ptr, a0_ptr, s_ptr, v_ptr, a_ptr, q_ptr, p_ptr, T, N,
    HAS_S0: tl.constexpr, DECAY: tl.constexpr, RESET: tl.constexpr, STRICT: tl.constexpr,
    WRITE_STATE: tl.constexpr, BLOCK: tl.constexpr,
):
    """Forward for one block of neurons: ``S[t]`` for every t and (``WRITE_STATE``) the
    final ``V[T-1]``, ``A[T-1]``."""
    offs, mask = block_offsets(N, BLOCK)
    cdt = p_ptr.dtype.element_ty
    k = tl.load(q_ptr + 0)
    rho = tl.load(q_ptr + 1)
    beta = tl.load(q_ptr + 2)
    vth, vreset, vrest = spec_values(p_ptr)
    zero = tl.zeros([BLOCK], dtype=cdt)
    v = load_or(v0_ptr, offs, mask, zero + vrest, HAS_S0)
    a = load_or(a0_ptr, offs, mask, zero, HAS_S0)
    xp = x_ptr + offs
    sp = s_ptr + offs
    for _t in range(T):
        x = tl.load(xp, mask=mask, other=0.0, eviction_policy="evict_first").to(cdt)
        h = charge(v, x, k, vrest, True, DECAY)
        s, v = fire_reset(h, vth + beta * a, vreset, STRICT, RESET)
        tl.store(sp, s.to(s_ptr.dtype.element_ty), mask=mask)
        a = rho * a + s
        xp += N
        sp += N
    if WRITE_STATE:
        tl.store(v_ptr + offs, v, mask=mask)
        tl.store(a_ptr + offs, a, mask=mask)


def alif_bwd(
    x_ptr, v0_ptr, a0_ptr, gs_ptr, gv_ptr, ga_ptr, gx_ptr, h_ptr, as_ptr, gv0_ptr, ga0_ptr,
    q_ptr, p_ptr, T, N, last,
    HAS_S0: tl.constexpr, HAS_GV: tl.constexpr, HAS_GA: tl.constexpr, DECAY: tl.constexpr,
    RESET: tl.constexpr, DETACH: tl.constexpr, SURR: tl.constexpr, STRICT: tl.constexpr,
    NEED_GX: tl.constexpr, NEED_GS0: tl.constexpr, BLOCK: tl.constexpr,
):
    """Backward for one block of neurons: forward recompute of ``H[t]`` into ``h_ptr``
    (which may alias ``gx_ptr``) and ``A[t-1]`` into ``as_ptr``, then the reverse-time
    recurrence of the module docstring writing ``grad_x`` and (``NEED_GS0``) the
    gradients of ``v0`` and ``a0``."""
    offs, mask = block_offsets(N, BLOCK)
    cdt = p_ptr.dtype.element_ty
    k = tl.load(q_ptr + 0)
    rho = tl.load(q_ptr + 1)
    beta = tl.load(q_ptr + 2)
    vth, vreset, vrest = spec_values(p_ptr)
    alpha, c1, c2, inv_alpha = surrogate_values(p_ptr)
    zero = tl.zeros([BLOCK], dtype=cdt)
    v = load_or(v0_ptr, offs, mask, zero + vrest, HAS_S0)
    a = load_or(a0_ptr, offs, mask, zero, HAS_S0)

    # 1) forward recompute: H[t], A[t-1] -> scratch
    xp = x_ptr + offs
    hp = h_ptr + offs
    ap = as_ptr + offs
    for _t in range(T):
        x = tl.load(xp, mask=mask, other=0.0, eviction_policy="evict_first").to(cdt)
        h = charge(v, x, k, vrest, True, DECAY)
        tl.store(hp, h, mask=mask, eviction_policy="evict_last")
        tl.store(ap, a, mask=mask, eviction_policy="evict_last")
        s, v = fire_reset(h, vth + beta * a, vreset, STRICT, RESET)
        a = rho * a + s
        xp += N
        hp += N
        ap += N

    # 2) reverse time
    gv = load_or(gv_ptr, offs, mask, zero, HAS_GV)
    ga = load_or(ga_ptr, offs, mask, zero, HAS_GA)
    hp = h_ptr + last + offs
    ap = as_ptr + last + offs
    gsp = gs_ptr + last + offs
    gxp = gx_ptr + last + offs
    for _i in range(T):
        h = tl.load(hp, mask=mask, other=0.0)
        a = tl.load(ap, mask=mask, other=0.0)
        theta = vth + beta * a
        z = h - theta
        s = fire(z, STRICT)
        sg = surrogate_grad(z, alpha, c1, c2, inv_alpha, SURR)
        dvdh, dvdth = reset_grads(h, s, sg, theta, vreset, RESET, DETACH)
        g_s = tl.load(gsp, mask=mask, other=0.0, eviction_policy="evict_first").to(cdt)
        if DETACH:
            gz = g_s * sg
        else:
            gz = (g_s + ga) * sg
        # reset_grads' dV/dH and dV/dtheta hold the spike's own path (the sg terms) too
        gh = gz + gv * dvdh
        gth = gv * dvdth - gz
        if NEED_GX:
            if DECAY:
                gx = gh * k
            else:
                gx = gh
            tl.store(gxp, gx.to(gx_ptr.dtype.element_ty), mask=mask)
        gv = gh * (1.0 - k)
        ga = rho * ga + beta * gth
        hp -= N
        ap -= N
        gsp -= N
        gxp -= N
    if NEED_GS0:
        tl.store(gv0_ptr + offs, gv, mask=mask)
        tl.store(ga0_ptr + offs, ga, mask=mask)


KERNELS = (alif_fwd, alif_bwd)


def forward(x2d: torch.Tensor, state0, params, spec: NeuronSpec, need_state: bool = True):
    """Raw fused ALIF forward over contiguous ``x2d`` ``[T, N]`` from ``state0 = (v0, a0)``
    (``None``: ``V = V_rest``, ``A = 0``) with ``params = (k, rho, beta)`` floats. Returns
    ``(spikes [T, N] in x's dtype, (V[T-1], A[T-1]) [N] in the compute dtype or None)``."""
    return two_state.forward("alif_fwd", x2d, state0, params, spec, need_state)


def backward(x2d, state0, params, spec: NeuronSpec, grad_s, grad_state, need_gx: bool = True,
             need_gstate: bool = True):
    """Raw fused ALIF backward of :func:`forward` for ``grad_s = dL/dS`` and ``grad_state
    = (dL/dV[T-1], dL/dA[T-1])`` (``None`` entries = 0). Returns ``(grad_x [T, N] in x's
    dtype or None, (grad_v0, grad_a0) [N] in the compute dtype or None)``."""
    return two_state.backward("alif_bwd", ("HAS_GV", "HAS_GA"), x2d, state0, params, spec,
                              grad_s, grad_state, need_gx, need_gstate, scratch=2)
