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
from spikeforge.ops.triton import jit
from spikeforge.ops.triton.arith import charge, fire, reset, reset_grads, surrogate_grad


def alif_fwd(
    x_ptr, v0_ptr, a0_ptr, s_ptr, v_ptr, a_ptr, q_ptr, p_ptr, T, N,
    HAS_S0: tl.constexpr, DECAY: tl.constexpr, RESET: tl.constexpr, STRICT: tl.constexpr,
    WRITE_STATE: tl.constexpr, BLOCK: tl.constexpr,
):
    """Forward for one block of neurons: ``S[t]`` for every t and (``WRITE_STATE``) the
    final ``V[T-1]``, ``A[T-1]``."""
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    cdt = p_ptr.dtype.element_ty
    k = tl.load(q_ptr + 0)
    rho = tl.load(q_ptr + 1)
    beta = tl.load(q_ptr + 2)
    vth = tl.load(p_ptr + 0)
    vreset = tl.load(p_ptr + 1)
    vrest = tl.load(p_ptr + 2)
    if HAS_S0:
        v = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(cdt)
        a = tl.load(a0_ptr + offs, mask=mask, other=0.0).to(cdt)
    else:
        v = tl.zeros([BLOCK], dtype=cdt) + vrest
        a = tl.zeros([BLOCK], dtype=cdt)
    xp = x_ptr + offs
    sp = s_ptr + offs
    for _t in range(T):
        x = tl.load(xp, mask=mask, other=0.0, eviction_policy="evict_first").to(cdt)
        h = charge(v, x, k, vrest, True, DECAY)
        theta = vth + beta * a
        s = fire(h - theta, STRICT)
        tl.store(sp, s.to(s_ptr.dtype.element_ty), mask=mask)
        v = reset(h, s, theta, vreset, RESET)
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
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    cdt = p_ptr.dtype.element_ty
    k = tl.load(q_ptr + 0)
    rho = tl.load(q_ptr + 1)
    beta = tl.load(q_ptr + 2)
    vth = tl.load(p_ptr + 0)
    vreset = tl.load(p_ptr + 1)
    vrest = tl.load(p_ptr + 2)
    alpha = tl.load(p_ptr + 3)
    c1 = tl.load(p_ptr + 4)
    c2 = tl.load(p_ptr + 5)
    inv_alpha = tl.load(p_ptr + 6)
    if HAS_S0:
        v = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(cdt)
        a = tl.load(a0_ptr + offs, mask=mask, other=0.0).to(cdt)
    else:
        v = tl.zeros([BLOCK], dtype=cdt) + vrest
        a = tl.zeros([BLOCK], dtype=cdt)

    # 1) forward recompute: H[t], A[t-1] -> scratch
    xp = x_ptr + offs
    hp = h_ptr + offs
    ap = as_ptr + offs
    for _t in range(T):
        x = tl.load(xp, mask=mask, other=0.0, eviction_policy="evict_first").to(cdt)
        h = charge(v, x, k, vrest, True, DECAY)
        tl.store(hp, h, mask=mask, eviction_policy="evict_last")
        tl.store(ap, a, mask=mask, eviction_policy="evict_last")
        theta = vth + beta * a
        s = fire(h - theta, STRICT)
        v = reset(h, s, theta, vreset, RESET)
        a = rho * a + s
        xp += N
        hp += N
        ap += N

    # 2) reverse time
    if HAS_GV:
        gv = tl.load(gv_ptr + offs, mask=mask, other=0.0).to(cdt)
    else:
        gv = tl.zeros([BLOCK], dtype=cdt)
    if HAS_GA:
        ga = tl.load(ga_ptr + offs, mask=mask, other=0.0).to(cdt)
    else:
        ga = tl.zeros([BLOCK], dtype=cdt)
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


def _state(t: torch.Tensor | None, n: int) -> torch.Tensor | None:
    return None if t is None else t.detach().reshape(n).contiguous()


def forward(x2d: torch.Tensor, state0, params, spec: NeuronSpec, need_state: bool = True):
    """Raw fused ALIF forward over contiguous ``x2d`` ``[T, N]`` from ``state0 = (v0, a0)``
    (``None``: ``V = V_rest``, ``A = 0``) with ``params = (k, rho, beta)`` floats. Returns
    ``(spikes [T, N] in x's dtype, (V[T-1], A[T-1]) [N] in the compute dtype or None)``."""
    T, N = x2d.shape
    dev = x2d.device
    cdt = jit.compute_dtype(x2d.dtype)
    s = torch.empty_like(x2d)
    st = [torch.empty(N, dtype=cdt, device=dev) for _ in range(2)] if need_state else None
    if N == 0:
        return s, (None if st is None else (st[0], st[1]))
    p = jit.spec_params(spec, cdt, dev)
    q = jit.kind_params(params, cdt, dev)
    v0, a0 = (None, None) if state0 is None else (_state(state0[0], N), _state(state0[1], N))
    dummy = p
    jit.launch(
        "alif_fwd", N, jit.block(N),
        (x2d, dummy if v0 is None else v0, dummy if a0 is None else a0, s,
         st[0] if need_state else dummy, st[1] if need_state else dummy, q, p, T, N),
        dict(HAS_S0=state0 is not None, DECAY=bool(spec.decay_input), RESET=int(spec.reset_id),
             STRICT=bool(spec.fire_strict), WRITE_STATE=need_state),
    )
    return s, (None if st is None else (st[0], st[1]))


def backward(x2d, state0, params, spec: NeuronSpec, grad_s, grad_state, need_gx: bool = True,
             need_gstate: bool = True):
    """Raw fused ALIF backward of :func:`forward` for ``grad_s = dL/dS`` and ``grad_state
    = (dL/dV[T-1], dL/dA[T-1])`` (``None`` entries = 0). Returns ``(grad_x [T, N] in x's
    dtype or None, (grad_v0, grad_a0) [N] in the compute dtype or None)``."""
    T, N = x2d.shape
    dev = x2d.device
    cdt = jit.compute_dtype(x2d.dtype)
    need_gstate = need_gstate and state0 is not None
    gx = torch.empty_like(x2d) if need_gx else None
    g0 = [torch.empty(N, dtype=cdt, device=dev) for _ in range(2)] if need_gstate else None
    if N == 0:
        return gx, (None if g0 is None else (g0[0], g0[1]))
    hbuf = gx if gx is not None and gx.dtype == cdt else torch.empty((T, N), dtype=cdt,
                                                                     device=dev)
    abuf = torch.empty((T, N), dtype=cdt, device=dev)
    p = jit.spec_params(spec, cdt, dev)
    q = jit.kind_params(params, cdt, dev)
    if grad_s is None:
        grad_s = torch.zeros_like(x2d)
    gs = grad_s.reshape(T, N).contiguous()
    gv, ga = (None, None) if grad_state is None else grad_state
    v0, a0 = (None, None) if state0 is None else (_state(state0[0], N), _state(state0[1], N))
    args = (x2d, p if v0 is None else v0, p if a0 is None else a0, gs,
            p if gv is None else _state(gv, N), p if ga is None else _state(ga, N),
            gx if gx is not None else hbuf, hbuf, abuf,
            g0[0] if need_gstate else p, g0[1] if need_gstate else p, q, p, T, N, (T - 1) * N)
    consts = dict(
        HAS_S0=state0 is not None, HAS_GV=gv is not None, HAS_GA=ga is not None,
        DECAY=bool(spec.decay_input), RESET=int(spec.reset_id), DETACH=bool(spec.detach_reset),
        SURR=int(spec.surrogate_id), STRICT=bool(spec.fire_strict), NEED_GX=gx is not None,
        NEED_GS0=need_gstate,
    )
    jit.launch("alif_bwd", N, jit.block(N, T, backward=True, scratch=2), args, consts)
    return gx, (None if g0 is None else (g0[0], g0[1]))
