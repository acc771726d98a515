"""Fused multi-step CubaLIF (current-based LIF: a synaptic current filters the input
before it charges the membrane) in Triton.

State ``(I, V)``, float parameters ``(k_syn, k_mem)`` (``1/tau_syn``, ``1/tau_mem``)::

    I[t] = I[t-1] - k_syn I[t-1] + X[t]
    H[t] = LIF charge of V[t-1] with I[t] for X[t] and k = k_mem  (arith.charge)
    S[t] = Heaviside(H[t] - V_th),   V[t] = reset(H[t], S[t])

(the dynamics of snnTorch's ``Synaptic``, Norse's ``LIFCell`` and NIR's ``CubaLIF``; the
parameter mapping is in :mod:`spikeforge.functional`). The backward recomputes the
forward storing ``H[t]`` (in the ``grad_x`` buffer where it has the compute dtype), then
runs reverse time::

    gH[t]   = gS[t] sg(H[t] - V_th) + gV[t] dV[t]/dH[t]
    gI[t]   = gI'[t] + kx gH[t]          kx = k_mem (decay_input) else 1
    gX[t]   = gI[t],   gI'[t-1] = (1 - k_syn) gI[t],   gV[t-1] = (1 - k_mem) gH[t]

Five passes over ``[T, N]`` in training, as LIF. Half-precision inputs compute in
float32; spikes in x's dtype.
"""

from __future__ import annotations

import torch
import triton.language as tl

from spikeforge.ops.spec import NeuronSpec
from spikeforge.ops.triton import jit
from spikeforge.ops.triton.arith import charge, fire, reset, reset_grads, surrogate_grad


def cubalif_fwd(
    x_ptr, i0_ptr, v0_ptr, s_ptr, i_ptr, v_ptr, q_ptr, p_ptr, T, N,
    HAS_S0: tl.constexpr, DECAY: tl.constexpr, RESET: tl.constexpr, STRICT: tl.constexpr,
    WRITE_STATE: tl.constexpr, BLOCK: tl.constexpr,
):
    """Forward for one block of neurons: ``S[t]`` for every t and (``WRITE_STATE``) the
    final ``I[T-1]``, ``V[T-1]``."""
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    cdt = p_ptr.dtype.element_ty
    ksyn = tl.load(q_ptr + 0)
    kmem = tl.load(q_ptr + 1)
    vth = tl.load(p_ptr + 0)
    vreset = tl.load(p_ptr + 1)
    vrest = tl.load(p_ptr + 2)
    if HAS_S0:
        cur = tl.load(i0_ptr + offs, mask=mask, other=0.0).to(cdt)
        v = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(cdt)
    else:
        cur = tl.zeros([BLOCK], dtype=cdt)
        v = tl.zeros([BLOCK], dtype=cdt) + vrest
    xp = x_ptr + offs
    sp = s_ptr + offs
    for _t in range(T):
        x = tl.load(xp, mask=mask, other=0.0, eviction_policy="evict_first").to(cdt)
        cur = cur - ksyn * cur + x
        h = charge(v, cur, kmem, vrest, True, DECAY)
        s = fire(h - vth, STRICT)
        tl.store(sp, s.to(s_ptr.dtype.element_ty), mask=mask)
        v = reset(h, s, vth, vreset, RESET)
        xp += N
        sp += N
    if WRITE_STATE:
        tl.store(i_ptr + offs, cur, mask=mask)
        tl.store(v_ptr + offs, v, mask=mask)


def cubalif_bwd(
    x_ptr, i0_ptr, v0_ptr, gs_ptr, gi_ptr, gv_ptr, gx_ptr, h_ptr, gi0_ptr, gv0_ptr,
    q_ptr, p_ptr, T, N, last,
    HAS_S0: tl.constexpr, HAS_GI: tl.constexpr, HAS_GV: tl.constexpr, DECAY: tl.constexpr,
    RESET: tl.constexpr, DETACH: tl.constexpr, SURR: tl.constexpr, STRICT: tl.constexpr,
    NEED_GX: tl.constexpr, NEED_GS0: tl.constexpr, BLOCK: tl.constexpr,
):
    """Backward for one block of neurons: forward recompute of ``H[t]`` into ``h_ptr``
    (which may alias ``gx_ptr``), then the reverse-time recurrence of the module docstring
    writing ``grad_x`` and (``NEED_GS0``) the gradients of ``i0`` and ``v0``."""
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    cdt = p_ptr.dtype.element_ty
    ksyn = tl.load(q_ptr + 0)
    kmem = tl.load(q_ptr + 1)
    vth = tl.load(p_ptr + 0)
    vreset = tl.load(p_ptr + 1)
    vrest = tl.load(p_ptr + 2)
    alpha = tl.load(p_ptr + 3)
    c1 = tl.load(p_ptr + 4)
    c2 = tl.load(p_ptr + 5)
    inv_alpha = tl.load(p_ptr + 6)
    if HAS_S0:
        cur = tl.load(i0_ptr + offs, mask=mask, other=0.0).to(cdt)
        v = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(cdt)
    else:
        cur = tl.zeros([BLOCK], dtype=cdt)
        v = tl.zeros([BLOCK], dtype=cdt) + vrest

    # 1) forward recompute: H[t] -> scratch
    xp = x_ptr + offs
    hp = h_ptr + offs
    for _t in range(T):
        x = tl.load(xp, mask=mask, other=0.0, eviction_policy="evict_first").to(cdt)
        cur = cur - ksyn * cur + x
        h = charge(v, cur, kmem, vrest, True, DECAY)
        tl.store(hp, h, mask=mask, eviction_policy="evict_last")
        s = fire(h - vth, STRICT)
        v = reset(h, s, vth, vreset, RESET)
        xp += N
        hp += N

    # 2) reverse time
    if HAS_GV:
        gv = tl.load(gv_ptr + offs, mask=mask, other=0.0).to(cdt)
    else:
        gv = tl.zeros([BLOCK], dtype=cdt)
    if HAS_GI:
        gi = tl.load(gi_ptr + offs, mask=mask, other=0.0).to(cdt)
    else:
        gi = tl.zeros([BLOCK], dtype=cdt)
    hp = h_ptr + last + offs
    gsp = gs_ptr + last + offs
    gxp = gx_ptr + last + offs
    for _i in range(T):
        h = tl.load(hp, mask=mask, other=0.0)
        z = h - vth
        s = fire(z, STRICT)
        sg = surrogate_grad(z, alpha, c1, c2, inv_alpha, SURR)
        dvdh, _dth = reset_grads(h, s, sg, vth, vreset, RESET, DETACH)
        g_s = tl.load(gsp, mask=mask, other=0.0, eviction_policy="evict_first").to(cdt)
        gh = g_s * sg + gv * dvdh
        if DECAY:
            gi = gi + gh * kmem
        else:
            gi = gi + gh
        if NEED_GX:
            tl.store(gxp, gi.to(gx_ptr.dtype.element_ty), mask=mask)
        gi = gi * (1.0 - ksyn)
        gv = gh * (1.0 - kmem)
        hp -= N
        gsp -= N
        gxp -= N
    if NEED_GS0:
        tl.store(gi0_ptr + offs, gi, mask=mask)
        tl.store(gv0_ptr + offs, gv, mask=mask)


KERNELS = (cubalif_fwd, cubalif_bwd)


def _state(t: torch.Tensor | None, n: int) -> torch.Tensor | None:
    return None if t is None else t.detach().reshape(n).contiguous()


def forward(x2d: torch.Tensor, state0, params, spec: NeuronSpec, need_state: bool = True):
    """Raw fused CubaLIF forward over contiguous ``x2d`` ``[T, N]`` from ``state0 = (i0,
    v0)`` (``None``: ``I = 0``, ``V = V_rest``) with ``params = (k_syn, k_mem)`` floats.
    Returns ``(spikes [T, N] in x's dtype, (I[T-1], V[T-1]) [N] in the compute dtype or
    None)``."""
    T, N = x2d.shape
    dev = x2d.device
    cdt = jit.compute_dtype(x2d.dtype)
    s = torch.empty_like(x2d)
    st = [torch.empty(N, dtype=cdt, device=dev) for _ in range(2)] if need_state else None
    if N == 0:
        return s, (None if st is None else (st[0], st[1]))
    p = jit.spec_params(spec, cdt, dev)
    q = jit.kind_params(params, cdt, dev)
    i0, v0 = (None, None) if state0 is None else (_state(state0[0], N), _state(state0[1], N))
    jit.launch(
        "cubalif_fwd", N, jit.block(N),
        (x2d, p if i0 is None else i0, p if v0 is None else v0, s,
         st[0] if need_state else p, st[1] if need_state else p, q, p, T, N),
        dict(HAS_S0=state0 is not None, DECAY=bool(spec.decay_input), RESET=int(spec.reset_id),
             STRICT=bool(spec.fire_strict), WRITE_STATE=need_state),
    )
    return s, (None if st is None else (st[0], st[1]))


def backward(x2d, state0, params, spec: NeuronSpec, grad_s, grad_state, need_gx: bool = True,
             need_gstate: bool = True):
    """Raw fused CubaLIF backward of :func:`forward` for ``grad_s = dL/dS`` and
    ``grad_state = (dL/dI[T-1], dL/dV[T-1])`` (``None`` entries = 0). Returns ``(grad_x
    [T, N] in x's dtype or None, (grad_i0, grad_v0) [N] in the compute dtype or None)``."""
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
    p = jit.spec_params(spec, cdt, dev)
    q = jit.kind_params(params, cdt, dev)
    if grad_s is None:
        grad_s = torch.zeros_like(x2d)
    gs = grad_s.reshape(T, N).contiguous()
    gi, gv = (None, None) if grad_state is None else grad_state
    i0, v0 = (None, None) if state0 is None else (_state(state0[0], N), _state(state0[1], N))
    args = (x2d, p if i0 is None else i0, p if v0 is None else v0, gs,
            p if gi is None else _state(gi, N), p if gv is None else _state(gv, N),
            gx if gx is not None else hbuf, hbuf,
            g0[0] if need_gstate else p, g0[1] if need_gstate else p, q, p, T, N, (T - 1) * N)
    consts = dict(
        HAS_S0=state0 is not None, HAS_GI=gi is not None, HAS_GV=gv is not None,
        DECAY=bool(spec.decay_input), RESET=int(spec.reset_id), DETACH=bool(spec.detach_reset),
        SURR=int(spec.surrogate_id), STRICT=bool(spec.fire_strict), NEED_GX=gx is not None,
        NEED_GS0=need_gstate,
    )
    jit.launch("cubalif_bwd", N, jit.block(N, T, backward=True), args, consts)
    return gx, (None if g0 is None else (g0[0], g0[1]))
