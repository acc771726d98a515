"""Fused multi-step IF / LIF / PLIF in Triton: kernels and their host entry points.

One program per block of ``BLOCK`` neurons loops over time (equations in
:mod:`spikeforge.ops.triton.arith`, ``theta = V_th``), from ``V[-1] = v0`` or the rest
potential. Inputs may be float32, bfloat16 or float16 (state and arithmetic in float32)
or float64 (all in float64); spikes are stored in the input dtype.

Training moves five passes over ``[T, N]``: the forward reads ``x`` and writes the
spikes, saving nothing but ``x``; the backward first re-runs the forward recurrence,
writing ``H[t]`` into the ``grad_x`` output buffer as scratch (stored with an L2
``evict_last`` hint while ``x`` and the spike gradient stream in with ``evict_first``,
so that it is still in L2 when read back), then runs the reverse-time recurrence
reading ``H[t]`` back from that buffer and overwriting it with ``grad_x[t]``::

    gH[t]   = gS[t] sg(H[t] - V_th) + gV[t] dV[t]/dH[t]
    gX[t]   = k gH[t] (LIF, decay_input) else gH[t]
    gV[t-1] = (1 - k) gH[t] (LIF) else gH[t]
    gk     += gH[t] (X[t] - (V[t-1] - V_rest))  (decay_input)  else  -gH[t] (V[t-1] - V_rest)

``H[t-1]`` is loaded one step ahead and kept in registers so ``V[t-1]`` (for ``gk``) is
recomputed, never stored. ``gk`` is summed per program into a small buffer and reduced
in torch (deterministic, no atomics). For half-precision inputs ``grad_x`` has 2-byte
elements that cannot hold a float32 ``H``; it holds ``H - V_th`` as float16 instead,
rounded so that its sign, and so the spike, is exact (``H16`` in the kernel), which
keeps the backward at three passes. Only when a float32 gradient is asked for as well
(the learnable leak's, or the initial state's), or for the rectangle surrogate (a step
in ``Z`` that rounding could cross), is a separate float32 ``[T, N]`` scratch used.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from spikeforge.ops.spec import NeuronSpec
from spikeforge.ops.triton import jit
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


def lif_fwd(
    x_ptr, v0_ptr, s_ptr, v_ptr, k_ptr, p_ptr, T, N,
    HAS_V0: tl.constexpr, LEAK: tl.constexpr, DECAY: tl.constexpr, RESET: tl.constexpr,
    STRICT: tl.constexpr, WRITE_V: tl.constexpr, BLOCK: tl.constexpr,
):
    """Forward: ``S[t]`` for every t and (``WRITE_V``) ``V[T-1]`` for one block of
    neurons."""
    offs, mask = block_offsets(N, BLOCK)
    cdt = p_ptr.dtype.element_ty
    k = tl.load(k_ptr).to(cdt)
    vth, vreset, vrest = spec_values(p_ptr)
    v = load_or(v0_ptr, offs, mask, tl.zeros([BLOCK], dtype=cdt) + vrest, HAS_V0)
    xp = x_ptr + offs
    sp = s_ptr + offs
    for _t in range(T):
        x = tl.load(xp, mask=mask, other=0.0, eviction_policy="evict_first").to(cdt)
        h = charge(v, x, k, vrest, LEAK, DECAY)
        s, v = fire_reset(h, vth, vreset, STRICT, RESET)
        tl.store(sp, s.to(s_ptr.dtype.element_ty), mask=mask)
        xp += N
        sp += N
    if WRITE_V:
        tl.store(v_ptr + offs, v, mask=mask)


def lif_bwd(
    x_ptr, v0_ptr, gs_ptr, gv_ptr, gx_ptr, h_ptr, gv0_ptr, gk_ptr, k_ptr, p_ptr, T, N, last,
    HAS_V0: tl.constexpr, HAS_GV: tl.constexpr, LEAK: tl.constexpr, DECAY: tl.constexpr,
    RESET: tl.constexpr, DETACH: tl.constexpr, SURR: tl.constexpr, STRICT: tl.constexpr,
    NEED_GX: tl.constexpr, NEED_GV0: tl.constexpr, NEED_GK: tl.constexpr, H16: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Backward for one block of neurons: forward recompute of ``H`` into ``h_ptr``, then
    the reverse-time recurrence writing ``grad_x`` (``h_ptr`` may alias ``gx_ptr``).

    ``H16``: the scratch holds ``Z = H - V_th`` as float16 (in the 16-bit ``grad_x``
    buffer of a half-precision input): ``-0`` stored as ``+0`` (the forward fired on it),
    clamped to +-65504, rounded to nearest, which never changes the sign, so the spike
    is recovered exactly as ``Z >= 0`` with the sign bit clear (a tiny negative ``Z``
    rounds to ``-0``); the surrogate and ``H = Z + V_th`` come from the rounded value
    (relative error 2^-11, below the half-precision gradient's own rounding). Not used
    with ``STRICT`` (host's choice)."""
    offs, mask = block_offsets(N, BLOCK)
    cdt = p_ptr.dtype.element_ty
    k = tl.load(k_ptr).to(cdt)
    vth, vreset, vrest = spec_values(p_ptr)
    alpha, c1, c2, inv_alpha = surrogate_values(p_ptr)
    zero = tl.zeros([BLOCK], dtype=cdt)
    v0 = load_or(v0_ptr, offs, mask, zero + vrest, HAS_V0)

    # 1) forward recompute: H[t] -> scratch
    v = v0
    xp = x_ptr + offs
    hp = h_ptr + offs
    for _t in range(T):
        if NEED_GK:  # x is read again in reverse time: let it stay in L2
            x = tl.load(xp, mask=mask, other=0.0).to(cdt)
        else:  # streaming input; the H scratch below is what should stay in L2
            x = tl.load(xp, mask=mask, other=0.0, eviction_policy="evict_first").to(cdt)
        h = charge(v, x, k, vrest, LEAK, DECAY)
        if H16:
            z = h - vth
            z = tl.where(z == 0.0, 0.0, z)  # -0 -> +0: the spike test below sees z >= 0
            z = tl.clamp(z, -65504.0, 65504.0, propagate_nan=tl.PropagateNan.ALL)
            tl.store(hp, z.to(tl.float16), mask=mask, eviction_policy="evict_last")
        else:
            tl.store(hp, h, mask=mask, eviction_policy="evict_last")
        _s, v = fire_reset(h, vth, vreset, STRICT, RESET)
        xp += N
        hp += N

    # 2) reverse time
    gv = load_or(gv_ptr, offs, mask, zero, HAS_GV)
    gk = tl.zeros([BLOCK], dtype=cdt)
    hp = h_ptr + last + offs
    gsp = gs_ptr + last + offs
    gxp = gx_ptr + last + offs
    xp = x_ptr + last + offs
    h = tl.load(hp, mask=mask, other=0.0)
    for i in range(T):
        has_prev = (offs * 0 + i) < T - 1  # t = T - 1 - i > 0, as a block-shaped mask
        h_prev = tl.load(hp - N, mask=mask & has_prev, other=0.0)
        if H16:  # h holds float16 Z = H - V_th (see the docstring)
            z = h.to(cdt)
            fired = (z >= 0.0) & (h.to(tl.int16, bitcast=True) >= 0)
            s = tl.where(fired, 1.0, 0.0).to(cdt)
            h = z + vth
        else:
            z = h - vth
            s = fire(z, STRICT)
        sg = surrogate_grad(z, alpha, c1, c2, inv_alpha, SURR)
        dvdh, _dth = reset_grads(h, s, sg, vth, vreset, RESET, DETACH)
        g_s = tl.load(gsp, mask=mask, other=0.0, eviction_policy="evict_first").to(cdt)
        gh = g_s * sg + gv * dvdh
        if NEED_GK:
            _s, v_prev = fire_reset(h_prev, vth, vreset, STRICT, RESET)
            v_prev = tl.where(has_prev, v_prev, v0)
            if DECAY:
                x = tl.load(xp, mask=mask, other=0.0).to(cdt)
                gk += gh * (x - (v_prev - vrest))
            else:
                gk -= gh * (v_prev - vrest)
        if NEED_GX:
            gx = gh
            if LEAK:
                if DECAY:
                    gx = gh * k
            tl.store(gxp, gx.to(gx_ptr.dtype.element_ty), mask=mask)
        if LEAK:
            gv = gh * (1.0 - k)
        else:
            gv = gh
        h = h_prev
        hp -= N
        gsp -= N
        gxp -= N
        xp -= N
    if NEED_GV0:
        tl.store(gv0_ptr + offs, gv, mask=mask)
    if NEED_GK:
        tl.store(gk_ptr + tl.program_id(0), tl.sum(tl.where(mask, gk, 0.0), axis=0))


KERNELS = (lif_fwd, lif_bwd)


def k_tensor(k, dtype: torch.dtype, device) -> torch.Tensor:
    """The leak factor as a one-element tensor: PLIF's tensor as it is (cast to the compute
    dtype in the kernel, no host sync), a float cached like the parameters."""
    if isinstance(k, torch.Tensor):
        return k.detach().reshape(1).to(device)
    return jit.cached_tensor(("k", float(k)), (k,), dtype, device)


def forward(x2d: torch.Tensor, v0: torch.Tensor | None, k, spec: NeuronSpec,
            need_v: bool = True):
    """Raw fused forward (no autograd) over contiguous ``x2d`` ``[T, N]``::

        H[t] = charge(V[t-1], X[t]),  S[t] = H[t] - V_th >= 0,  V[t] = reset(H[t], S[t])

    from ``V[-1] = v0`` (the rest potential if ``None``), ``k`` the leak (float or
    one-element tensor; ignored for IF). Returns ``(spikes [T, N] in x's dtype, v_final =
    V[T-1] [N] in the compute dtype)``; ``v_final`` is ``None`` when ``need_v`` is false
    (its store is skipped: a quarter pass over ``[T, N]`` at T = 4 in float32)."""
    T, N = x2d.shape
    cdt = jit.compute_dtype(x2d.dtype)
    s = torch.empty_like(x2d)
    v = torch.empty(N, dtype=cdt, device=x2d.device) if need_v else None
    if N == 0:
        return s, v
    p = jit.spec_params(spec, cdt, x2d.device)
    kt = k_tensor(k, cdt, x2d.device)
    vt = v if need_v else s  # a valid pointer the kernel never stores to without WRITE_V
    v0c = v0.detach().reshape(N).contiguous() if v0 is not None else vt
    jit.launch(
        "lif_fwd", N, jit.block(N), (x2d, v0c, s, vt, kt, p, T, N),
        dict(HAS_V0=v0 is not None, LEAK=spec.kind != "if", DECAY=bool(spec.decay_input),
             RESET=int(spec.reset_id), STRICT=bool(spec.fire_strict), WRITE_V=need_v),
    )
    return s, v


def backward(x2d, v0, k, spec: NeuronSpec, grad_s, grad_v, need_gx: bool = True,
             need_gv0: bool = True, need_gk: bool = True):
    """Raw fused backward of :func:`forward` for ``grad_s = dL/dS`` and ``grad_v =
    dL/dV[T-1]`` (``None`` = 0)::

        gH[t] = gS[t] sg(H[t] - V_th) + gV[t] dV[t]/dH[t],   gX[t] = kx gH[t],
        gV[t-1] = kv gH[t],   gk = sum_t gH[t] dH[t]/dk

    (all terms in the module docstring). Returns ``(grad_x [T, N] in x's dtype or None,
    grad_v0 [N] compute dtype or None, grad_k 0-d compute dtype or None)``."""
    T, N = x2d.shape
    dev = x2d.device
    cdt = jit.compute_dtype(x2d.dtype)
    need_gv0 = need_gv0 and v0 is not None
    need_gk = need_gk and spec.kind == "lif"
    gx = torch.empty_like(x2d) if need_gx else None
    # H scratch: the grad_x buffer itself when it can hold the compute dtype; for a
    # half-precision input the same buffer holding Z = H - V_th as float16 (H16), unless
    # a float32 gradient is asked for (the learnable leak's, which also recomputes
    # V[t-1] from H[t-1], or the initial state's): those carry the reference's float32
    # precision, which a float16 Z (relative error 2^-11) would not; or the rectangle
    # surrogate, a step at |Z| = alpha/2 that a rounded Z can cross; or fire_strict,
    # whose spike at Z = 0 the sign trick does not encode; else its own.
    h16 = (gx is not None and gx.dtype in (torch.float16, torch.bfloat16)
           and not need_gk and not need_gv0 and spec.surrogate != "rectangle"
           and not spec.fire_strict)
    if gx is not None and gx.dtype == cdt:
        hbuf = gx
    elif h16:
        hbuf = gx.view(torch.float16)
    else:
        hbuf = torch.empty((T, N), dtype=cdt, device=dev)
    gv0 = torch.empty(N if need_gv0 else 0, dtype=cdt, device=dev)
    # one partial gk per program, sized for the smallest block any launch may use
    # (programs beyond the grid leave zeros); never empty, as the autotuner zeroes it
    gk_part = torch.zeros(max(1, triton.cdiv(N, jit.MIN_BWD_BLOCK)) if need_gk else 1,
                          dtype=cdt, device=dev)
    if N == 0:
        return gx, (gv0 if need_gv0 else None), (gk_part.sum() if need_gk else None)
    p = jit.spec_params(spec, cdt, dev)
    kt = k_tensor(k, cdt, dev)
    if grad_s is None:
        grad_s = torch.zeros_like(x2d)
    gs = grad_s.reshape(T, N).contiguous()
    # unused pointer arguments get a valid (never dereferenced) tensor, not an empty one
    gvT = grad_v.reshape(N).contiguous() if grad_v is not None else p
    v0c = v0.detach().reshape(N).contiguous() if v0 is not None else p
    args = (x2d, v0c, gs, gvT, gx if gx is not None else hbuf, hbuf,
            gv0 if need_gv0 else p, gk_part, kt, p, T, N, (T - 1) * N)
    consts = dict(
        HAS_V0=v0 is not None, HAS_GV=grad_v is not None, LEAK=spec.kind != "if",
        DECAY=bool(spec.decay_input), RESET=int(spec.reset_id), DETACH=bool(spec.detach_reset),
        SURR=int(spec.surrogate_id), STRICT=bool(spec.fire_strict), NEED_GX=gx is not None,
        NEED_GV0=need_gv0, NEED_GK=need_gk, H16=h16,
    )
    jit.launch("lif_bwd", N, jit.block(N, T, backward=True), args, consts,
               zero_on_fallback=(gk_part,))
    return gx, (gv0 if need_gv0 else None), (gk_part.sum() if need_gk else None)
