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


def cubalif_fwd(
    x_ptr, i0_ptr, v0_ptr, s_ptr, i_ptr, v_ptr, q_ptr, p_ptr, T, N,
    HAS_S0: tl.constexpr, DECAY: tl.constexpr, RESET: tl.constexpr, STRICT: tl.constexpr,
    WRITE_STATE: tl.constexpr, BLOCK: tl.constexpr,
):
    """Forward for one block of neurons: ``S[t]`` for every t and (``WRITE_STATE``) the
    final ``I[T-1]``, ``V[T-1]``."""
    offs, mask = block_offsets(N, BLOCK)
    cdt = p_ptr.dtype.element_ty
    ksyn = tl.load(q_ptr + 0)
    kmem = tl.load(q_ptr + 1)
    vth, vreset, vrest = spec_values(p_ptr)
    zero = tl.zeros([BLOCK], dtype=cdt)
    cur = load_or(i0_ptr, offs, mask, zero, HAS_S0)
    v = load_or(v0_ptr, offs, mask, zero + vrest, HAS_S0)
    xp = x_ptr + offs
    sp = s_ptr + offs
    for _t in range(T):
        x = tl.load(xp, mask=mask, other=0.0, eviction_policy="evict_first").to(cdt)
        cur = cur - ksyn * cur + x
        h = charge(v, cur, kmem, vrest, True, DECAY)
        s, v = fire_reset(h, vth, vreset, STRICT, RESET)
        tl.store(sp, s.to(s_ptr.dtype.element_ty), mask=mask)
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
    offs, mask = block_offsets(N, BLOCK)
    cdt = p_ptr.dtype.element_ty
    ksyn = tl.load(q_ptr + 0)
    kmem = tl.load(q_ptr + 1)
    vth, vreset, vrest = spec_values(p_ptr)
    alpha, c1, c2, inv_alpha = surrogate_values(p_ptr)
    zero = tl.zeros([BLOCK], dtype=cdt)
    cur = load_or(i0_ptr, offs, mask, zero, HAS_S0)
    v = load_or(v0_ptr, offs, mask, zero + vrest, HAS_S0)

    # 1) forward recompute: H[t] -> scratch
    xp = x_ptr + offs
    hp = h_ptr + offs
    for _t in range(T):
        x = tl.load(xp, mask=mask, other=0.0, eviction_policy="evict_first").to(cdt)
        cur = cur - ksyn * cur + x
        h = charge(v, cur, kmem, vrest, True, DECAY)
        tl.store(hp, h, mask=mask, eviction_policy="evict_last")
        _s, v = fire_reset(h, vth, vreset, STRICT, RESET)
        xp += N
        hp += N

    # 2) reverse time
    gv = load_or(gv_ptr, offs, mask, zero, HAS_GV)
    gi = load_or(gi_ptr, offs, mask, zero, HAS_GI)
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


def forward(x2d: torch.Tensor, state0, params, spec: NeuronSpec, need_state: bool = True):
    """Raw fused CubaLIF forward over contiguous ``x2d`` ``[T, N]`` from ``state0 = (i0,
    v0)`` (``None``: ``I = 0``, ``V = V_rest``) with ``params = (k_syn, k_mem)`` floats.
    Returns ``(spikes [T, N] in x's dtype, (I[T-1], V[T-1]) [N] in the compute dtype or
    None)``."""
    return two_state.forward("cubalif_fwd", x2d, state0, params, spec, need_state)


def backward(x2d, state0, params, spec: NeuronSpec, grad_s, grad_state, need_gx: bool = True,
             need_gstate: bool = True):
    """Raw fused CubaLIF backward of :func:`forward` for ``grad_s = dL/dS`` and
    ``grad_state = (dL/dI[T-1], dL/dV[T-1])`` (``None`` entries = 0). Returns ``(grad_x
    [T, N] in x's dtype or None, (grad_i0, grad_v0) [N] in the compute dtype or None)``."""
    return two_state.backward("cubalif_bwd", ("HAS_GI", "HAS_GV"), x2d, state0, params, spec,
                              grad_s, grad_state, need_gx, need_gstate)
