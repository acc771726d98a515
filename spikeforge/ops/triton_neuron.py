"""Fused multi-step IF / LIF / PLIF in Triton (CUDA; or Triton's CPU interpreter).

One program per block of ``BLOCK`` neurons loops over time; the update is the one of
:mod:`spikeforge.ops.spec`::

    H[t] = V[t-1] + k (X[t] - (V[t-1] - V_rest))     LIF, decay_input
    H[t] = V[t-1] - k (V[t-1] - V_rest) + X[t]       LIF, not decay_input
    H[t] = V[t-1] + X[t]                             IF
    S[t] = Heaviside(H[t] - V_th)
    V[t] = H[t] (1 - S[t]) + V_reset S[t]  |  H[t] - V_th S[t]  |  H[t]   (hard | soft | none)

computed with the reference's operation order (and FMA contraction disabled) so that
spikes and the final membrane equal the reference bit for bit. Inputs may be
float32, bfloat16 or float16 (state and arithmetic in float32) or float64 (all in
float64); spikes are stored in the input dtype.

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

with ``dV/dH = (1 - S) + (V_reset - H) sg`` (hard; ``1 - S`` when detached),
``1 - V_th sg`` (soft; 1 when detached), 1 (none), and ``sg`` the surrogate
derivative of :mod:`spikeforge.functional.surrogate`. ``H[t-1]`` is loaded one
step ahead and kept in registers so ``V[t-1]`` (for ``gk``) is recomputed, never
stored. ``gk`` is summed per program into a small buffer and reduced in torch
(deterministic, no atomics). For half-precision inputs ``grad_x`` has 2-byte
elements that cannot hold a float32 ``H``; it holds ``H - V_th`` as float16 instead,
rounded so that its sign, and so the spike, is exact (``H16`` in the kernel), which
keeps the backward at three passes. Only when a float32 gradient is asked for as
well (the learnable leak's, or the initial state's), or for the rectangle surrogate
(a step in ``Z`` that rounding could cross), is a separate float32 ``[T, N]``
scratch used.

The kernels are written conservatively (plain ``for`` loops over ``T`` with
loads/stores, constexpr switches for the options and the surrogate) so that what
the interpreter verifies on the CPU is what compiles on a GPU. They are jitted
lazily, as :class:`InterpretedFunction` when ``TRITON_INTERPRET=1`` and as
``triton.jit`` otherwise, so the mode is read at first use, not at import.
"""

from __future__ import annotations

import math
import os

import torch
import triton
import triton.language as tl

from spikeforge.ops.spec import NeuronSpec


def _charge_py(v, x, k, vrest, KIND: tl.constexpr, DECAY: tl.constexpr):
    """``H[t]`` from ``V[t-1]`` and ``X[t]`` in the reference's operation order: IF
    ``V + X``; LIF ``V + k (X - (V - V_rest))`` (decay_input) or ``V - k (V - V_rest) + X``."""
    if KIND == 0:
        h = v + x
    elif DECAY:
        h = v + k * (x - (v - vrest))
    else:
        h = v - k * (v - vrest) + x
    return h


def _reset_py(h, s, vth, vreset, RESET: tl.constexpr):
    """``V[t]`` from ``H[t]`` and the spike ``s`` in {0, 1}: ``H (1 - S) + V_reset S`` (hard),
    ``H - V_th S`` (soft), ``H`` (none)."""
    if RESET == 0:
        v = h * (1.0 - s) + vreset * s
    elif RESET == 1:
        v = h - vth * s
    else:
        v = h
    return v


# The kernels call the helpers by these names; :func:`kernels` binds them to the
# helpers jitted for the mode in use (``triton.jit`` when compiling for a GPU, the
# plain functions under the interpreter), as the kernels themselves are.
_charge = _charge_py
_reset = _reset_py


def _fwd_kernel(
    x_ptr, v0_ptr, s_ptr, v_ptr, k_ptr, p_ptr, T, N,
    HAS_V0: tl.constexpr, KIND: tl.constexpr, DECAY: tl.constexpr, RESET: tl.constexpr,
    WRITE_V: tl.constexpr, BLOCK: tl.constexpr,
):
    """Forward: ``S[t]`` for every t and (``WRITE_V``) ``V[T-1]`` for one block of
    neurons."""
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    cdt = p_ptr.dtype.element_ty
    k = tl.load(k_ptr).to(cdt)
    vth = tl.load(p_ptr + 0)
    vreset = tl.load(p_ptr + 1)
    vrest = tl.load(p_ptr + 2)
    if HAS_V0:
        v = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(cdt)
    else:
        v = tl.zeros([BLOCK], dtype=cdt)
    xp = x_ptr + offs
    sp = s_ptr + offs
    for _t in range(T):
        x = tl.load(xp, mask=mask, other=0.0, eviction_policy="evict_first").to(cdt)
        h = _charge(v, x, k, vrest, KIND, DECAY)
        s = tl.where(h - vth >= 0.0, 1.0, 0.0).to(cdt)
        tl.store(sp, s.to(s_ptr.dtype.element_ty), mask=mask)
        v = _reset(h, s, vth, vreset, RESET)
        xp += N
        sp += N
    if WRITE_V:
        tl.store(v_ptr + offs, v, mask=mask)


def _bwd_kernel(
    x_ptr, v0_ptr, gs_ptr, gv_ptr, gx_ptr, h_ptr, gv0_ptr, gk_ptr, k_ptr, p_ptr, T, N, last,
    HAS_V0: tl.constexpr, HAS_GV: tl.constexpr, KIND: tl.constexpr, DECAY: tl.constexpr,
    RESET: tl.constexpr, DETACH: tl.constexpr, SURR: tl.constexpr, NEED_GX: tl.constexpr,
    NEED_GV0: tl.constexpr, NEED_GK: tl.constexpr, H16: tl.constexpr, BLOCK: tl.constexpr,
):
    """Backward for one block of neurons: forward recompute of ``H`` into ``h_ptr``, then
    the reverse-time recurrence writing ``grad_x`` (``h_ptr`` may alias ``gx_ptr``).

    ``H16``: the scratch holds ``Z = H - V_th`` as float16 (in the 16-bit ``grad_x``
    buffer of a half-precision input): ``-0`` stored as ``+0`` (the forward fired on it),
    clamped to +-65504, rounded to nearest, which never changes the sign, so the spike
    is recovered exactly as ``Z >= 0`` with the sign bit clear (a tiny negative ``Z``
    rounds to ``-0``); the surrogate and ``H = Z + V_th`` come from the rounded value
    (relative error 2^-11, below the half-precision gradient's own rounding)."""
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    cdt = p_ptr.dtype.element_ty
    k = tl.load(k_ptr).to(cdt)
    vth = tl.load(p_ptr + 0)
    vreset = tl.load(p_ptr + 1)
    vrest = tl.load(p_ptr + 2)
    alpha = tl.load(p_ptr + 3)
    c1 = tl.load(p_ptr + 4)
    c2 = tl.load(p_ptr + 5)
    inv_alpha = tl.load(p_ptr + 6)
    if HAS_V0:
        v0 = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(cdt)
    else:
        v0 = tl.zeros([BLOCK], dtype=cdt)

    # 1) forward recompute: H[t] -> scratch
    v = v0
    xp = x_ptr + offs
    hp = h_ptr + offs
    for _t in range(T):
        if NEED_GK:  # x is read again in reverse time: let it stay in L2
            x = tl.load(xp, mask=mask, other=0.0).to(cdt)
        else:  # streaming input; the H scratch below is what should stay in L2
            x = tl.load(xp, mask=mask, other=0.0, eviction_policy="evict_first").to(cdt)
        h = _charge(v, x, k, vrest, KIND, DECAY)
        if H16:
            z = h - vth
            z = tl.where(z == 0.0, 0.0, z)  # -0 -> +0: the spike test below sees z >= 0
            z = tl.clamp(z, -65504.0, 65504.0, propagate_nan=tl.PropagateNan.ALL)
            tl.store(hp, z.to(tl.float16), mask=mask, eviction_policy="evict_last")
        else:
            tl.store(hp, h, mask=mask, eviction_policy="evict_last")
        s = tl.where(h - vth >= 0.0, 1.0, 0.0).to(cdt)
        v = _reset(h, s, vth, vreset, RESET)
        xp += N
        hp += N

    # 2) reverse time
    if HAS_GV:
        gv = tl.load(gv_ptr + offs, mask=mask, other=0.0).to(cdt)
    else:
        gv = tl.zeros([BLOCK], dtype=cdt)
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
            s = tl.where(z >= 0.0, 1.0, 0.0).to(cdt)
        if SURR == 0:  # sigmoid
            sig = 1.0 / (1.0 + tl.exp(-alpha * z))
            sg = alpha * sig * (1.0 - sig)
        elif SURR == 1:  # atan
            u = c1 * z
            sg = c2 / (1.0 + u * u)
        elif SURR == 2:  # fast_sigmoid
            d = 1.0 + alpha * tl.abs(z)
            sg = 1.0 / (d * d)
        elif SURR == 3:  # rectangle
            sg = tl.where(tl.abs(z) < c2, inv_alpha, 0.0).to(cdt)
        else:  # triangle
            sg = tl.maximum(1.0 - tl.abs(z) / alpha, 0.0) / alpha
        if RESET == 0:
            if DETACH:
                dvdh = 1.0 - s
            else:
                dvdh = (1.0 - s) + (vreset - h) * sg
        elif RESET == 1:
            if DETACH:
                dvdh = tl.full([BLOCK], 1.0, cdt)
            else:
                dvdh = 1.0 - vth * sg
        else:
            dvdh = tl.full([BLOCK], 1.0, cdt)
        g_s = tl.load(gsp, mask=mask, other=0.0, eviction_policy="evict_first").to(cdt)
        gh = g_s * sg + gv * dvdh
        if NEED_GK:
            s_prev = tl.where(h_prev - vth >= 0.0, 1.0, 0.0).to(cdt)
            v_prev = _reset(h_prev, s_prev, vth, vreset, RESET)
            v_prev = tl.where(has_prev, v_prev, v0)
            if DECAY:
                x = tl.load(xp, mask=mask, other=0.0).to(cdt)
                gk += gh * (x - (v_prev - vrest))
            else:
                gk -= gh * (v_prev - vrest)
        if NEED_GX:
            gx = gh
            if KIND == 1:
                if DECAY:
                    gx = gh * k
            tl.store(gxp, gx.to(gx_ptr.dtype.element_ty), mask=mask)
        if KIND == 1:
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
        tl.store(gk_ptr + pid, tl.sum(tl.where(mask, gk, 0.0), axis=0))


_KERNELS: dict[bool, tuple] = {}


def _interpret() -> bool:
    from spikeforge.ops.dispatch import triton_interpret

    return triton_interpret()


def kernels():
    """``(forward_kernel, backward_kernel)`` jitted for the current mode (compiled for
    the GPU, or Triton's interpreter under ``TRITON_INTERPRET=1``)."""
    mode = _interpret()
    if mode not in _KERNELS:
        if mode:
            from triton.runtime.interpreter import InterpretedFunction

            helpers = {"_charge": _charge_py, "_reset": _reset_py}
            _KERNELS[mode] = (InterpretedFunction(_fwd_kernel), InterpretedFunction(_bwd_kernel),
                              helpers)
        else:
            helpers = {"_charge": triton.jit(_charge_py), "_reset": triton.jit(_reset_py)}
            _KERNELS[mode] = (triton.jit(_fwd_kernel), triton.jit(_bwd_kernel), helpers)
    globals().update(_KERNELS[mode][2])
    return _KERNELS[mode][:2]


# Autotuning on a GPU: (BLOCK, num_warps) candidates, timed by Triton's autotuner once
# per (T, N, dtypes) and cached for the process. The fixed choice of :func:`_block`
# is the fallback (the interpreter, SPIKEFORGE_TRITON_AUTOTUNE=0, or a tuning error).
AUTOTUNE = os.environ.get("SPIKEFORGE_TRITON_AUTOTUNE", "1") != "0"
_FWD_CONFIGS = ((256, 2), (512, 4), (1024, 4), (2048, 4), (2048, 8), (4096, 8))
_BWD_CONFIGS = ((128, 2), (128, 4), (256, 4), (512, 4), (1024, 4), (512, 8))
_MIN_BWD_BLOCK = min(b for b, _ in _BWD_CONFIGS)
_TUNED: dict = {}


def tuned_kernels():
    """``(forward, backward)`` wrapped in ``triton.autotune`` over ``BLOCK`` and
    ``num_warps`` (keys ``T``, ``N`` and the tensors' dtypes; the backward's ``gk``
    partial sums are zeroed between trials), or ``None`` where autotuning is off (the
    interpreter, ``SPIKEFORGE_TRITON_AUTOTUNE=0``, or after a tuning error)."""
    if not AUTOTUNE or _interpret() or _TUNED.get("failed"):
        return None
    if "kernels" not in _TUNED:
        fwd, bwd = kernels()
        _TUNED["kernels"] = (
            triton.autotune([triton.Config({"BLOCK": b}, num_warps=w) for b, w in _FWD_CONFIGS],
                            key=["T", "N"])(fwd),
            triton.autotune([triton.Config({"BLOCK": b}, num_warps=w) for b, w in _BWD_CONFIGS],
                            key=["T", "N"], reset_to_zero=["gk_ptr"])(bwd),
        )
    return _TUNED["kernels"]


def tuned_configs() -> dict:
    """The configurations the autotuner chose so far, ``{kernel: {key: config}}`` (for the
    benchmark's record)."""
    out = {}
    for name, kern in zip(("forward", "backward"), _TUNED.get("kernels", ())):
        out[name] = {str(key): str(cfg) for key, cfg in getattr(kern, "cache", {}).items()}
    if _TUNED.get("failed"):
        out["failed"] = _TUNED["failed"]
    return out


def _launch(which: int, N: int, fixed: tuple[int, int], args: tuple, consts: dict,
            zero_on_fallback: tuple = ()) -> None:
    """Launch the forward (``which = 0``) or backward (1) over ``N`` neurons: autotuned
    where :func:`tuned_kernels` is on, else with ``fixed = (BLOCK, num_warps)``. Both
    kernels rewrite every output from the inputs, so a failed tuning launch is redone
    with the fixed configuration (``zero_on_fallback`` zeroed first; tuning switched off
    for the process, with a warning)."""
    tuned = tuned_kernels()
    if tuned is not None:
        try:
            tuned[which][lambda meta: (triton.cdiv(N, meta["BLOCK"]),)](*args, **consts, **_LAUNCH)
            return
        except Exception as e:  # noqa: BLE001 - any tuning failure falls back
            import warnings

            _TUNED["failed"] = f"{type(e).__name__}: {e}"[:500]
            warnings.warn(f"spikeforge: Triton autotuning failed ({_TUNED['failed']}); "
                          "using the fixed block sizes", RuntimeWarning, stacklevel=3)
            for t in zero_on_fallback:
                t.zero_()
    BLOCK, warps = fixed
    kernels()[which][(triton.cdiv(N, BLOCK),)](*args, **consts, BLOCK=BLOCK, num_warps=warps,
                                               **_LAUNCH)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """State/arithmetic dtype: float64 for float64 input, float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


_PARAMS: dict = {}


def _params(spec: NeuronSpec, dtype: torch.dtype, device) -> torch.Tensor:
    """``[V_th, V_reset, V_rest, alpha, pi/2 alpha, alpha/2, 1/alpha]`` in the compute dtype
    on ``device``, cached (no host-to-device copy per call)."""
    key = (spec, dtype, str(device))
    p = _PARAMS.get(key)
    if p is None:
        a = spec.alpha
        vals = [spec.v_threshold, spec.v_reset, spec.v_rest, a, math.pi / 2 * a, a / 2, 1 / a]
        p = _PARAMS[key] = torch.tensor(vals, dtype=dtype, device=device)
    return p


def _k_tensor(k, dtype: torch.dtype, device) -> torch.Tensor:
    """The leak factor as a one-element tensor: PLIF's tensor as it is (cast to the compute
    dtype in the kernel, no host sync), a float cached like the parameters."""
    if isinstance(k, torch.Tensor):
        return k.detach().reshape(1).to(device)
    key = ("k", float(k), dtype, str(device))
    t = _PARAMS.get(key)
    if t is None:
        t = _PARAMS[key] = torch.tensor([float(k)], dtype=dtype, device=device)
    return t


def _block(N: int, T: int = 1, backward: bool = False) -> tuple[int, int]:
    """``(BLOCK, num_warps)`` (4 warps = 128 threads per program).

    Forward: 1024 neurons per program (8 per thread: enough loads in flight). Backward:
    the ``H`` scratch written by all resident programs should still be in L2 when it is
    read back; with about 270k resident threads on an H100 and a 50 MB L2 that means
    ``threads x (neurons per thread) x T x 4 B`` of about 32 MB, so 8 neurons per thread
    at T <= 4, 2 at T = 16, 1 at T >= 32. On a GPU this is the fallback of the
    autotuner (:func:`tuned_kernels`), which times the alternatives per shape. In the
    interpreter one program per block of up to 4096 neurons keeps numpy calls few."""
    if _interpret():
        return max(16, min(4096, triton.next_power_of_2(max(N, 1)))), 4
    if not backward:
        return 1024, 4
    per_thread = max(1, min(8, 32 // max(1, T)))
    per_thread = 1 << (per_thread.bit_length() - 1)  # power of two
    return 128 * per_thread, 4


_LAUNCH = dict(enable_fp_fusion=False)  # no FMA contraction: spikes match the reference


def forward(x2d: torch.Tensor, v0: torch.Tensor | None, k, spec: NeuronSpec,
            need_v: bool = True):
    """Raw fused forward (no autograd) over contiguous ``x2d`` ``[T, N]`` (one program per
    block of neurons)::

        H[t] = charge(V[t-1], X[t]),  S[t] = H[t] - V_th >= 0,  V[t] = reset(H[t], S[t])

    from ``V[-1] = v0`` (zeros if ``None``), ``k`` the leak (float or one-element tensor).
    Returns ``(spikes [T, N] in x's dtype, v_final = V[T-1] [N] in the compute dtype)``;
    ``v_final`` is ``None`` when ``need_v`` is false (its store is skipped: a quarter
    pass over ``[T, N]`` at T = 4 in float32, half a pass in 16-bit)."""
    T, N = x2d.shape
    cdt = compute_dtype(x2d.dtype)
    s = torch.empty_like(x2d)
    v = torch.empty(N, dtype=cdt, device=x2d.device) if need_v else None
    if N == 0:
        return s, v
    p = _params(spec, cdt, x2d.device)
    kt = _k_tensor(k, cdt, x2d.device)
    vt = v if need_v else s  # a valid pointer the kernel never stores to without WRITE_V
    v0c = v0.detach().reshape(N).contiguous() if v0 is not None else vt
    _launch(
        0, N, _block(N), (x2d, v0c, s, vt, kt, p, T, N),
        dict(HAS_V0=v0 is not None, KIND=0 if spec.kind == "if" else 1,
             DECAY=bool(spec.decay_input), RESET=spec.reset_id, WRITE_V=need_v),
    )
    return s, v


def backward(
    x2d: torch.Tensor,
    v0: torch.Tensor | None,
    k,
    spec: NeuronSpec,
    grad_s: torch.Tensor | None,
    grad_v: torch.Tensor | None,
    need_gx: bool = True,
    need_gv0: bool = True,
    need_gk: bool = True,
):
    """Raw fused backward of :func:`forward` for ``grad_s = dL/dS`` and ``grad_v =
    dL/dV[T-1]`` (``None`` = 0)::

        gH[t] = gS[t] sg(H[t] - V_th) + gV[t] dV[t]/dH[t],   gX[t] = kx gH[t],
        gV[t-1] = kv gH[t],   gk = sum_t gH[t] dH[t]/dk

    (all terms in the module docstring). Returns ``(grad_x [T, N] in x's dtype or None,
    grad_v0 [N] compute dtype or None, grad_k 0-d compute dtype or None)``."""
    T, N = x2d.shape
    dev = x2d.device
    cdt = compute_dtype(x2d.dtype)
    need_gv0 = need_gv0 and v0 is not None
    need_gk = need_gk and spec.kind == "lif"
    gx = torch.empty_like(x2d) if need_gx else None
    # H scratch: the grad_x buffer itself when it can hold the compute dtype; for a
    # half-precision input the same buffer holding Z = H - V_th as float16 (H16), unless
    # a float32 gradient is asked for (the learnable leak's, which also recomputes
    # V[t-1] from H[t-1], or the initial state's): those carry the reference's float32
    # precision, which a float16 Z (relative error 2^-11) would not; or the rectangle
    # surrogate, a step at |Z| = alpha/2 that a rounded Z can cross; else its own.
    h16 = (gx is not None and gx.dtype in (torch.float16, torch.bfloat16)
           and not need_gk and not need_gv0 and spec.surrogate != "rectangle")
    if gx is not None and gx.dtype == cdt:
        hbuf = gx
    elif h16:
        hbuf = gx.view(torch.float16)
    else:
        hbuf = torch.empty((T, N), dtype=cdt, device=dev)
    gv0 = torch.empty(N if need_gv0 else 0, dtype=cdt, device=dev)
    # one partial gk per program, sized for the smallest block any launch may use
    # (programs beyond the grid leave zeros); never empty, as the autotuner zeroes it
    gk_part = torch.zeros(max(1, triton.cdiv(N, _MIN_BWD_BLOCK)) if need_gk else 1, dtype=cdt,
                          device=dev)
    if N == 0:
        return gx, (gv0 if need_gv0 else None), (gk_part.sum() if need_gk else None)
    p = _params(spec, cdt, dev)
    kt = _k_tensor(k, cdt, dev)
    if grad_s is None:
        grad_s = torch.zeros_like(x2d)
    gs = grad_s.reshape(T, N).contiguous()
    # unused pointer arguments get a valid (never dereferenced) tensor, not an empty one
    gvT = grad_v.reshape(N).contiguous() if grad_v is not None else p
    v0c = v0.detach().reshape(N).contiguous() if v0 is not None else p
    args = (x2d, v0c, gs, gvT, gx if gx is not None else hbuf, hbuf,
            gv0 if need_gv0 else p, gk_part, kt, p, T, N, (T - 1) * N)
    consts = dict(
        HAS_V0=v0 is not None, HAS_GV=grad_v is not None,
        KIND=0 if spec.kind == "if" else 1, DECAY=bool(spec.decay_input),
        RESET=spec.reset_id, DETACH=bool(spec.detach_reset), SURR=spec.surrogate_id,
        NEED_GX=gx is not None, NEED_GV0=need_gv0, NEED_GK=need_gk, H16=h16,
    )
    _launch(1, N, _block(N, T, backward=True), args, consts, zero_on_fallback=(gk_part,))
    return gx, (gv0 if need_gv0 else None), (gk_part.sum() if need_gk else None)
