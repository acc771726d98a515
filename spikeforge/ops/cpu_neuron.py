"""Fused multi-step IF / LIF / PLIF on the CPU (numba).

The same recurrence as the reference (:mod:`spikeforge.ops.spec`), fused over time::

    H[t] = V[t-1] + k (X[t] - (V[t-1] - V_rest))   (or the IF / non-decay-input forms)
    S[t] = Heaviside(H[t] - V_th)
    V[t] = reset(H[t], S[t])

with the reference's operation order in the compute dtype (float32; float64 for
float64 input), so spikes and the final membrane equal the reference bit for bit.

Design. Work is split into chunks of neurons (up to 128k forward, 32k backward) that
the threads of one parallel region (``numba.prange``) claim from an atomic counter, so
a thread that another process delays leaves its share to the others (problems under 256k
elements run a serial copy of the same code: waking threads and joining them costs
more than it saves). Per chunk the loop runs over ``t`` outside and over the
chunk's neurons inside, four time steps per pass with the membrane in a register
between them; each pass is a small row function compiled per variant with the
options it branches on as constants (neuron kind, decay_input and reset for the
forward and the backward's recompute; the surrogate for the gradient loop), so that
LLVM vectorises a branch-free loop; the drivers take the rows as function addresses
(see :func:`_form_rows`). The reset is a select between its two cases, which keeps
the reference's bits and costs a quarter less than the arithmetic form. The backward
re-runs the chunk's forward into a local ``[T, chunk]`` scratch of ``H`` (at most
8 MiB, so it stays in L3) and then runs the reverse-time recurrence, computing the
surrogate inside the gradient loop (the sigmoid's ``exp`` is a vectorisable
polynomial). Training therefore moves five passes over
``[T, N]`` (forward: read x, write spikes; backward: read x, read grad spikes, write
grad x) and saves only ``x``. Outputs of half the last-level cache or more are written
with non-temporal stores (:data:`STREAM_MIN_BYTES`), which skip the read a normal store
makes of every line it writes. Half inputs are read and written as raw 16-bit words and
converted inside the loops (exact widening, round-to-nearest-even narrowing), not by
extra passes. Large outputs come from a pool of reused buffers
(:mod:`spikeforge.ops._cpu_pool`): on our VMs a fresh 64 MiB tensor costs ~25 ms of
page faults, more than the kernel. The host side of a call is a dictionary lookup of
a launch plan (driver, options, chunking, row addresses; :func:`_plan`) and the
tensors' data addresses: from cold caches, the state a layer finds them in, the
Python around the kernels cost as much as a fifth of a bf16 T = 4 forward+backward
before that. A caller that does not need ``V[T-1]`` (a module returning only spikes)
skips its store.

Why this and not the alternatives (2-core AMD EPYC Zen 5 VM, torch 2.13, LIF
tau=2 hard reset atan detach_reset, x float32 [T, N=1M], 2 threads, median of 10,
all in one run of ``benchmarks/neurons.py --compile --T 4,16 --dtypes float32``
on 2026-11-25, copy bandwidth 40-42 GB/s in that run (a neighbour was using the
memory; 80 GB/s when quiet); forward / forward+backward in ms):

=========================================  ===============  ===============
implementation                             T = 4            T = 16
=========================================  ===============  ===============
floor (2 / 5 passes of [T, N])             0.80 / 2.0       3.2 / 8.0
per-step PyTorch loop                      6.7 / 19.8       37.5 / 370
``torch.compile`` of that loop (inductor)  1.24 / 4.06      21.4 / 69.2
SpikingJelly 2.0 ``LIFNode`` (CPU path)    10.1 / 17.3      67.5 / 104
this module                                1.45 / 3.05      3.35 / 8.86
=========================================  ===============  ===============

Inductor unrolls small T into one pass with the membrane in registers and still wins
the T = 4 forward, but its backward falls behind quickly with T and it costs tens of
seconds of compilation per shape; a per-step loop launches ~10 ops per step and
stores the graph. Within numba, measured on the way (T = 16, N = 1M): one kernel
with all branches inlined stayed scalar (3 ns/element backward, 1 thread) where
small row functions vectorise (0.6); Python's float-division check (numba's default
error model) alone blocked vectorisation of the surrogate; the surrogate as its own
pass cost 15 % of the backward; chunks of 4k neurons ran 1.3-1.5x slower than
64-128k; four steps per pass took the forward from 4.5 to 2.8 ms and the backward
from 9.5 to 5.4 ms (2 threads), but only with each store right after its step
(stores batched at the end of the four steps stayed scalar); fresh output buffers
made the forward 7x slower than pooled ones. Compilation is cached on disk
(``cache=True``): the first call of a dtype compiles for some seconds, later
processes load it in under a second.
"""

from __future__ import annotations

import os
import types as pytypes

import numpy as np
import torch
from llvmlite import ir
from numba import carray, get_num_threads, njit, prange, types
from numba.core import cgutils
from numba.experimental.function_type import _get_wrapper_address
from numba.extending import intrinsic, overload

from spikeforge.ops import _cpu_pool
from spikeforge.ops._autograd import legacy_single_state
from spikeforge.ops.spec import RESET_KINDS, SURROGATE_NAMES, NeuronSpec

# ---------------------------------------------------------------------------
# Bit-level conversions for 16-bit floats. numba has no float16/bfloat16 type,
# so half tensors cross the boundary viewed as uint16 and are widened to
# float32 inside the loops (exactly, as torch's ``.float()`` does) and narrowed
# back with round-to-nearest-even (as torch's ``.to(half)`` does).
# ---------------------------------------------------------------------------


@intrinsic
def _f32_from_bits(typingctx, u):
    """Reinterpret the bits of a uint32 as a float32."""
    sig = types.float32(types.uint32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@intrinsic
def _bits_from_f32(typingctx, f):
    """Reinterpret the bits of a float32 as a uint32."""
    sig = types.uint32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@intrinsic
def _claim(typingctx, counter):
    """``counter[0] += 1`` atomically; returns the old value (a chunk index to work on)."""
    sig = types.int64(counter)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [zero])
        one = context.get_constant(types.int64, 1)
        return builder.atomic_rmw("add", ptr, one, "monotonic")

    return sig, codegen


@intrinsic
def _ptr_like(typingctx, addr, like):
    """The integer ``addr`` as a pointer to ``like``'s element type, for ``carray``: the
    drivers take tensors as their data addresses (``Tensor.data_ptr()``), which costs
    the host a fraction of what numpy views and numba's array unboxing cost."""
    sig = types.CPointer(like.dtype)(addr, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@intrinsic
def _f32_from_half_bits(typingctx, u):
    """IEEE half (given as uint16 bits) widened exactly to float32."""
    sig = types.float32(types.uint16)

    def codegen(context, builder, signature, args):
        h = builder.bitcast(args[0], ir.HalfType())
        return builder.fpext(h, ir.FloatType())

    return sig, codegen


@intrinsic
def _half_bits_from_f32(typingctx, f):
    """float32 rounded to the nearest IEEE half (ties to even), returned as uint16 bits."""
    sig = types.uint16(types.float32)

    def codegen(context, builder, signature, args):
        h = builder.fptrunc(args[0], ir.HalfType())
        return builder.bitcast(h, ir.IntType(16))

    return sig, codegen


# Storage formats. A half tensor reaches numba as raw 16-bit words, and the
# element type of that view says which format it is, so every load and store is
# resolved when the loop is compiled (no per-element branch): bfloat16 travels
# as uint16, float16 as int16 (see _STORAGE_NP below).


def _ld(a, i):
    """``a[i]`` widened to float (stub; compiled by the overload below)."""
    raise NotImplementedError


@overload(_ld, inline="always")
def _ld_impl(a, i):
    if a.dtype == types.uint16:  # bfloat16 bits: widen by a 16-bit shift (exact)

        def load_bf16(a, i):
            return _f32_from_bits(np.uint32(a[i]) << np.uint32(16))

        return load_bf16
    if a.dtype == types.int16:  # float16 bits: exact hardware widening

        def load_f16(a, i):
            return _f32_from_half_bits(np.uint16(a[i]))

        return load_f16

    def load_native(a, i):
        return a[i]

    return load_native


@intrinsic
def _bf16_bits(typingctx, f):
    """float32 -> bfloat16 bits, round to nearest even, NaN -> 0x7FC0 (as torch):
    ``(u + 0x7FFF + ((u >> 16) & 1)) >> 16`` on the float's bits ``u``. Written as LLVM
    IR (select, no branch) so that it inlines into the vectorised loops."""
    sig = types.uint16(types.float32)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        u = builder.bitcast(args[0], i32)
        lsb = builder.and_(builder.lshr(u, ir.Constant(i32, 16)), ir.Constant(i32, 1))
        rounded = builder.lshr(builder.add(u, builder.add(lsb, ir.Constant(i32, 0x7FFF))),
                               ir.Constant(i32, 16))
        bits = builder.trunc(rounded, ir.IntType(16))
        is_nan = builder.fcmp_unordered("uno", args[0], args[0])
        return builder.select(is_nan, ir.Constant(ir.IntType(16), 0x7FC0), bits)

    return sig, codegen


def _bits(a, val):
    """``val`` converted to ``a``'s storage format (stub; compiled by the overload below)."""
    raise NotImplementedError


@overload(_bits, inline="always")
def _bits_impl(a, val):
    if a.dtype == types.uint16:

        def bits_bf16(a, val):
            return _bf16_bits(np.float32(val))

        return bits_bf16
    if a.dtype == types.int16:

        def bits_f16(a, val):
            return np.int16(_half_bits_from_f32(np.float32(val)))

        return bits_f16

    def bits_native(a, val):
        return val

    return bits_native


@intrinsic
def _stream_store(typingctx, arr, idx, val):
    """``arr[idx] = val`` (``val`` already in ``arr``'s storage type) as a non-temporal
    store: it goes to memory through the write-combining buffers instead of first reading
    the line into the cache (a normal store to an uncached line reads it first, so an
    output stream costs two memory transfers per byte instead of one).

    The store claims 64-byte alignment so that LLVM's loop vectoriser, which widens the
    scalar store with the scalar's alignment, emits aligned 512/256-bit ``vmovnt*``
    stores (only aligned vector stores exist non-temporally; the vectoriser refuses an
    under-aligned one). The claim holds for the vector stores because every caller
    passes rows whose first element is 64-byte aligned and the vectorised loop starts
    at element 0 (checked on the host: :func:`use_stream_stores`); a remainder element
    stored by a scalar instruction has no alignment requirement on x86."""
    sig = types.void(arr, idx, val)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
        value = context.cast(builder, args[2], signature.args[2], aryty.dtype)
        inst = builder.store(value, ptr, align=64)
        inst.set_metadata("nontemporal", builder.module.add_metadata([ir.IntType(32)(1)]))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _call_row(typingctx, addr, args):
    """Call the compiled row function whose C-ABI wrapper is at ``addr`` (an int64 from
    :func:`_compile_rows`) with the tuple ``args``. The caller guarantees that the
    argument types are those the row was compiled for (:func:`_row_sigs`); arrays travel
    as numba's array structs, whatever their layout flag. Passing row functions as
    numba first-class function objects instead cost ~30 us of Python per function and
    call to convert the dispatcher into a pointer; an integer costs nothing."""
    sig = types.void(addr, args)

    def codegen(context, builder, signature, llargs):
        argtys = signature.args[1].types
        vals = cgutils.unpack_tuple(builder, llargs[1], len(argtys))
        fnty = ir.FunctionType(
            context.get_value_type(types.none), [context.get_value_type(t) for t in argtys]
        )
        builder.call(builder.inttoptr(llargs[0], fnty.as_pointer()), vals)
        return context.get_dummy_value()

    return sig, codegen


def _st(a, i, val):
    """``a[i] = val`` narrowed to ``a``'s format (stub; compiled by the overload below)."""
    raise NotImplementedError


@overload(_st, inline="always")
def _st_impl(a, i, val):
    def store(a, i, val):
        a[i] = _bits(a, val)

    return store


@njit(cache=True, error_model="numpy", inline="always")
def _put_bits(a, i, bits, stream):
    """``a[i] = bits`` (already in ``a``'s storage type); non-temporal when ``stream``."""
    if stream:
        _stream_store(a, i, bits)
    else:
        a[i] = bits


@njit(cache=True, error_model="numpy", inline="always")
def _put(a, i, val, stream):
    """``a[i] = val`` in ``a``'s format; a non-temporal store when ``stream`` (callers pass
    a literal, one loop per store kind: see :func:`_form_rows`)."""
    _put_bits(a, i, _bits(a, val), stream)


# Indices into the per-call parameter vector (compute dtype). Every constant the
# loops use comes from here so that no float64 literal widens float32 arithmetic.
(P_K, P_VTH, P_VRESET, P_VREST, P_ALPHA, P_C1, P_C2, P_ONE, P_ZERO, P_OMK, P_INV_ALPHA) = range(11)
N_PARAMS = 11
# Indices into the per-call option vector (int64).
# (The surrogate is not among them, and the row functions do not read kind, decay and
# reset from here: they are compiled per variant. The backward driver still reads
# them for the learnable-leak gradient and the gradient factors.)
(O_KIND, O_DECAY, O_RESET, O_DETACH, O_HAS_V0, O_HAS_GV, O_NEED_GK, O_NEED_GX, O_NEED_GV0,
 O_STREAM) = range(10)
N_OPTS = 10


_ROW = dict(cache=True, error_model="numpy", inline="never", nogil=True)
_INLINE = dict(cache=True, error_model="numpy", inline="always")
# The per-row loops below are separate (not inlined) functions on purpose: each
# is small enough for LLVM to unswitch its loop-invariant option branches and
# vectorise the loop; inlined into one big kernel they stayed scalar (measured
# 3x slower in cache). ``error_model="numpy"`` drops Python's zero-division
# check, which also blocks vectorisation.


@njit(**_INLINE)
def _charge(v, x, k, vrest, kind, decay):
    """``H[t]`` from ``V[t-1]`` and ``X[t]``, the same operation order as the reference."""
    if kind == 0:
        return v + x
    if decay:
        return v + k * (x - (v - vrest))
    return v - k * (v - vrest) + x


@njit(**_INLINE)
def _reset(h, spike, zero, vth, vreset, reset):
    """``V[t]`` from ``H[t]`` and the spike (a bool), bit for bit the reference's
    ``H (1 - S) + V_reset S`` (hard) or ``H - V_th S`` (soft) with ``S`` in {0, 1}, written
    as a select between the two cases: ``S = 1`` gives ``H * 0 + V_reset`` / ``H - V_th``,
    ``S = 0`` gives ``H + V_reset * 0`` / ``H - V_th * 0`` (``* 0`` kept so that signed
    zeros, infinities and NaNs come out as in the reference; ``V_reset * 0`` is
    loop-invariant). Measured 1.35x faster than the arithmetic form in the forward loop."""
    if reset == 0:
        return (h * zero + vreset) if spike else (h + vreset * zero)
    if reset == 1:
        return (h - vth) if spike else (h - vth * zero)
    return h


@njit(**_INLINE)
def _forward_loop(xr, sr, vin, vout, m, p, one_s, zero_s, kind, decay, reset):
    """One time step for ``m`` neurons: ``H = charge(V, x)``, ``sr = H - V_th >= 0``,
    ``vout = reset(H, S)`` from ``V = vin`` (``vin`` and ``vout`` are distinct arrays: the
    vectoriser's overlap check would send an in-place update down the scalar loop).
    Ordinary stores only: it runs for the ``T mod 4`` remainder steps."""
    k, vth, vreset, vrest = p[P_K], p[P_VTH], p[P_VRESET], p[P_VREST]
    zero = p[P_ZERO]
    for i in range(m):
        h = _charge(vin[i], _ld(xr, i), k, vrest, kind, decay)
        spike = h - vth >= zero
        sr[i] = one_s if spike else zero_s
        vout[i] = _reset(h, spike, zero, vth, vreset, reset)


@njit(**_INLINE)
def _step(v, xv, k, vth, vreset, vrest, one, zero, kind, decay, reset):
    """``(V[t], H[t], S[t] as bool)`` from ``V[t-1]`` and ``X[t]``."""
    h = _charge(v, xv, k, vrest, kind, decay)
    spike = h - vth >= zero
    return _reset(h, spike, zero, vth, vreset, reset), h, spike


@njit(**_INLINE)
def _forward_loop4(x0, x1, x2, x3, s0, s1, s2, s3, vin, vout, m, p, one_s, zero_s, kind, decay,
                   reset, stream):
    """Four consecutive time steps of :func:`_forward_loop` in one pass over the neurons,
    the membrane in a register between them (measured 1.4-2.2x faster than four row
    passes: a quarter of the membrane traffic, four streams in flight)."""
    k, vth, vreset, vrest = p[P_K], p[P_VTH], p[P_VRESET], p[P_VREST]
    one, zero = p[P_ONE], p[P_ZERO]
    for i in range(m):  # each store right after its step (stores batched at the end: 1.6x slower)
        vv, _, b = _step(vin[i], _ld(x0, i), k, vth, vreset, vrest, one, zero, kind, decay, reset)
        _put_bits(s0, i, one_s if b else zero_s, stream)
        vv, _, b = _step(vv, _ld(x1, i), k, vth, vreset, vrest, one, zero, kind, decay, reset)
        _put_bits(s1, i, one_s if b else zero_s, stream)
        vv, _, b = _step(vv, _ld(x2, i), k, vth, vreset, vrest, one, zero, kind, decay, reset)
        _put_bits(s2, i, one_s if b else zero_s, stream)
        vv, _, b = _step(vv, _ld(x3, i), k, vth, vreset, vrest, one, zero, kind, decay, reset)
        _put_bits(s3, i, one_s if b else zero_s, stream)
        vout[i] = vv


@njit(**_INLINE)
def _charge_loop(xr, hr, vin, vout, m, p, kind, decay, reset):
    """As :func:`_forward_loop` but storing ``H`` (the backward's recompute)."""
    k, vth, vreset, vrest = p[P_K], p[P_VTH], p[P_VRESET], p[P_VREST]
    zero = p[P_ZERO]
    for i in range(m):
        h = _charge(vin[i], _ld(xr, i), k, vrest, kind, decay)
        hr[i] = h
        vout[i] = _reset(h, h - vth >= zero, zero, vth, vreset, reset)


@njit(**_INLINE)
def _charge_loop4(x0, x1, x2, x3, h0, h1, h2, h3, vin, vout, m, p, kind, decay, reset):
    """Four consecutive time steps of :func:`_charge_loop` in one pass."""
    k, vth, vreset, vrest = p[P_K], p[P_VTH], p[P_VRESET], p[P_VREST]
    one, zero = p[P_ONE], p[P_ZERO]
    for i in range(m):  # each store right after its step (stores batched at the end: 1.6x slower)
        vv, h, _ = _step(vin[i], _ld(x0, i), k, vth, vreset, vrest, one, zero, kind, decay, reset)
        h0[i] = h
        vv, h, _ = _step(vv, _ld(x1, i), k, vth, vreset, vrest, one, zero, kind, decay, reset)
        h1[i] = h
        vv, h, _ = _step(vv, _ld(x2, i), k, vth, vreset, vrest, one, zero, kind, decay, reset)
        h2[i] = h
        vv, h, _ = _step(vv, _ld(x3, i), k, vth, vreset, vrest, one, zero, kind, decay, reset)
        h3[i] = h
        vout[i] = vv


def _vexp(x):
    """``exp(x)`` in the compute dtype (stub; compiled by the overload below)."""
    raise NotImplementedError


@overload(_vexp, inline="always")
def _vexp_impl(x):
    """float32: a vectorisable ``exp`` (numba's ``np.exp`` is a libm call per element, which
    kept the sigmoid surrogate's gradient loop scalar: 2.2 ns per element against 0.1 for
    the other surrogates). Cephes' ``expf``: ``n = round(x log2 e)``, ``r = x - n ln 2`` in
    two parts, ``exp(r) = 1 + r + r^2 P(r)`` with ``P`` of degree 5, and ``2^n`` added to
    the exponent bits; ``x`` is clamped to [-87, 87] (so ``2^n`` stays a normal float;
    ``exp(87)`` is 6e37, and the sigmoid it feeds is then within 1e-38 of its limit).
    Relative error below 1e-7 (8e-8 measured over [-87, 87]).
    float64: ``np.exp``."""
    if x == types.float32:

        def exp32(x):
            x = min(max(x, np.float32(-87.0)), np.float32(87.0))
            n = np.floor(x * np.float32(1.44269504088896341) + np.float32(0.5))
            r = x - n * np.float32(0.693359375) - n * np.float32(-2.12194440e-4)
            q = np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)
            q = q * r + np.float32(8.3334519073e-3)
            q = q * r + np.float32(4.1665795894e-2)
            q = q * r + np.float32(1.6666665459e-1)
            q = q * r + np.float32(5.0000001201e-1)
            y = q * (r * r) + r + np.float32(1.0)
            shift = np.uint32(np.int32(n) << np.int32(23))
            return _f32_from_bits(_bits_from_f32(y) + shift)

        return exp32

    def exp64(x):
        return np.exp(x)

    return exp64


@njit(**_INLINE)
def _surrogate(z, surr, alpha, c1, c2, one, zero, inv_alpha):
    """Surrogate derivative ``g'(z)`` of :mod:`spikeforge.functional.surrogate`: sigmoid
    ``alpha sig (1 - sig)``, atan ``alpha/2 / (1 + (pi/2 alpha z)^2)`` (``c1 = pi/2 alpha``,
    ``c2 = alpha/2``), fast_sigmoid ``1 / (1 + alpha |z|)^2``, rectangle
    ``1/alpha [|z| < alpha/2]``, triangle ``max(0, 1 - |z|/alpha) / alpha``."""
    if surr == 0:
        sig = one / (one + _vexp(-alpha * z))
        return alpha * sig * (one - sig)
    if surr == 1:
        u = c1 * z
        return c2 / (one + u * u)
    if surr == 2:
        d = one + alpha * abs(z)
        return one / (d * d)
    if surr == 3:
        return inv_alpha if abs(z) < c2 else zero
    r = one - abs(z) / alpha
    return (r if r > zero else zero) / alpha


@njit(**_INLINE)
def _grad_loop(hr, gsr, gxr, ghb, gv, m, p, kx, kv, reset, detach, store_gx, keep_gh, surr):
    """One reverse step: ``gH = gS sg(H - V_th) + gV dV/dH``; ``gX = kx gH`` (stored when
    ``store_gx``), ``gV <- kv gH`` and ``ghb = gH`` when ``keep_gh``. Inlined into one
    function per surrogate below, where ``surr`` is a compile-time constant."""
    vth, vreset, one, zero = p[P_VTH], p[P_VRESET], p[P_ONE], p[P_ZERO]
    sgargs = (p[P_ALPHA], p[P_C1], p[P_C2], p[P_INV_ALPHA])
    for i in range(m):
        gh = _grad_one(hr[i], _ld(gsr, i), gv[i], vth, vreset, one, zero, sgargs, reset, detach,
                       surr)
        if store_gx:
            _st(gxr, i, gh * kx)
        if keep_gh:
            ghb[i] = gh
        gv[i] = gh * kv


@njit(**_INLINE)
def _grad_one(h, gsv, g, vth, vreset, one, zero, sgargs, reset, detach, surr):
    """``gH`` of one step from ``H``, ``gS`` and the incoming ``gV`` (scalar form)."""
    alpha, c1, c2, inv_alpha = sgargs
    z = h - vth
    sg = _surrogate(z, surr, alpha, c1, c2, one, zero, inv_alpha)
    s = one if z >= zero else zero
    if reset == 0:
        dvdh = (one - s) if detach else (one - s) + (vreset - h) * sg
    elif reset == 1:
        dvdh = one if detach else one - vth * sg
    else:
        dvdh = one
    return gsv * sg + g * dvdh


@njit(**_INLINE)
def _grad_loop4(h3, h2, h1, h0, g3, g2, g1, g0, x3, x2, x1, x0, gv, m, p, kx, kv, reset, detach,
                stream, surr):
    """Four reverse steps (t, t-1, t-2, t-3 = rows 3, 2, 1, 0) of :func:`_grad_loop` in one
    pass, ``gV`` in a register between them; always stores ``gX`` (into ``x*``)."""
    vth, vreset, one, zero = p[P_VTH], p[P_VRESET], p[P_ONE], p[P_ZERO]
    sgargs = (p[P_ALPHA], p[P_C1], p[P_C2], p[P_INV_ALPHA])
    for i in range(m):
        a = _grad_one(h3[i], _ld(g3, i), gv[i], vth, vreset, one, zero, sgargs, reset, detach,
                      surr)
        _put(x3, i, a * kx, stream)
        b = _grad_one(h2[i], _ld(g2, i), a * kv, vth, vreset, one, zero, sgargs, reset, detach,
                      surr)
        _put(x2, i, b * kx, stream)
        c = _grad_one(h1[i], _ld(g1, i), b * kv, vth, vreset, one, zero, sgargs, reset, detach,
                      surr)
        _put(x1, i, c * kx, stream)
        d = _grad_one(h0[i], _ld(g0, i), c * kv, vth, vreset, one, zero, sgargs, reset, detach,
                      surr)
        _put(x0, i, d * kx, stream)
        gv[i] = d * kv


# ---------------------------------------------------------------------------
# Specialised row functions. Every option a loop branches on is a compile-time
# constant inside its row function, one compiled function per variant, created and
# compiled on first use: the forward and the backward's recompute per neuron form
# (kind, decay_input, reset: 9 variants), the backward's gradient loops per surrogate.
# With the options as runtime values LLVM kept some branches in the loop and computed
# both charge forms under a mask: measured in cache (1 thread, bf16, T = 4, 64k
# neurons) the four-step forward row took 0.171 ns per element against 0.107
# specialised, the recompute row 0.166 against 0.101. The drivers below are compiled
# once per storage format and call the rows through first-class function pointers
# (one indirect call per row of a chunk, :func:`_call_row`), so a new variant costs
# only its rows' compilation (a second or two), not the drivers'.
# ---------------------------------------------------------------------------

# Storage format -> (numba storage scalar, numba compute scalar, name).
_FMT_TYPES = {
    "float32": (types.float32, types.float32),
    "float64": (types.float64, types.float64),
    "bfloat16": (types.uint16, types.float32),
    "float16": (types.int16, types.float32),
}
_I64 = types.int64
_KIND_NAMES = ("if", "lif")


def _arr(t, ndim: int = 1):
    return types.Array(t, ndim, "C")


def _row_sigs(fmt: str) -> dict:
    """Signatures of the row functions for storage format ``fmt``; the drivers' calls
    (:func:`_call_row`) pass exactly these types."""
    st, ct = _FMT_TYPES[fmt]
    S1, C1 = _arr(st), _arr(ct)
    return {
        "fwd4": types.void(*(S1,) * 8, C1, C1, _I64, C1, st, st, _I64),
        "fwd1": types.void(S1, S1, C1, C1, _I64, C1, st, st),
        "chg4": types.void(*(S1,) * 4, *(C1,) * 4, C1, C1, _I64, C1),
        "chg1": types.void(S1, C1, C1, C1, _I64, C1),
        "grad4": types.void(*(C1,) * 4, *(S1,) * 8, C1, _I64, C1, ct, ct, _I64, _I64, _I64),
        "grad1": types.void(C1, S1, S1, C1, C1, _I64, C1, ct, ct, _I64, _I64, _I64, _I64),
    }


def _compile_rows(fns: dict, sigs: dict, suffix: str) -> dict:
    """``njit`` each ``fns[role]`` with signature ``sigs[role]``, renamed
    ``_<role>_<suffix>`` (numba's disk cache is keyed by the name); returns ``role ->
    dispatcher`` plus ``role + "_addr"`` -> the address of its C-ABI wrapper, which the
    drivers call through :func:`_call_row` (the dispatchers stay referenced here, so
    the code behind the addresses lives as long as the module)."""
    out = {}
    for role, fn in fns.items():
        fn.__name__ = fn.__qualname__ = f"_{role}_{suffix}"
        fn.__doc__ = f"Row function {role} of variant {suffix} (see _form_rows / _grad_rows)."
        out[role] = disp = njit(sigs[role], **_ROW)(fn)
        out[role + "_addr"] = _get_wrapper_address(disp, sigs[role])
    return out


_FORM_ROWS: dict = {}


def _form_key(spec: NeuronSpec) -> tuple[int, int, int]:
    """``(kind, decay, reset)`` of a spec; ``decay`` is 0 for IF, which has no leak."""
    kind = 0 if spec.kind == "if" else 1
    return kind, int(spec.decay_input) if kind == 1 else 0, spec.reset_id


def _form_rows(key: tuple[int, int, int], fmt: str) -> dict:
    """The forward rows (``fwd4``, ``fwd1``) and the backward's recompute rows (``chg4``,
    ``chg1``) of neuron form ``key = (kind, decay, reset)`` for storage ``fmt``, compiled
    on first use. The four-step forward row has two loops, one per store kind (``stream``
    a literal in each): with one loop and a branch around the store, LLVM merges the two
    stores into one that keeps the streaming store's 64-byte alignment claim, which
    faults on rows that are not aligned. The single-step row (the ``T mod 4`` remainder)
    has ordinary stores only, which saves a loop's compilation per variant."""
    rows = _FORM_ROWS.get((key, fmt))
    if rows is not None:
        return rows
    kind, decay, reset = key

    def fwd4(x0, x1, x2, x3, s0, s1, s2, s3, vin, vout, m, p, one_s, zero_s, stream):
        if stream:
            _forward_loop4(x0, x1, x2, x3, s0, s1, s2, s3, vin, vout, m, p, one_s, zero_s,
                           kind, decay, reset, True)
        else:
            _forward_loop4(x0, x1, x2, x3, s0, s1, s2, s3, vin, vout, m, p, one_s, zero_s,
                           kind, decay, reset, False)

    def fwd1(xr, sr, vin, vout, m, p, one_s, zero_s):
        _forward_loop(xr, sr, vin, vout, m, p, one_s, zero_s, kind, decay, reset)

    def chg4(x0, x1, x2, x3, h0, h1, h2, h3, vin, vout, m, p):
        _charge_loop4(x0, x1, x2, x3, h0, h1, h2, h3, vin, vout, m, p, kind, decay, reset)

    def chg1(xr, hr, vin, vout, m, p):
        _charge_loop(xr, hr, vin, vout, m, p, kind, decay, reset)

    name = f"{_KIND_NAMES[kind]}_{'decay_' if decay else ''}{RESET_KINDS[reset]}_{fmt}"
    rows = _compile_rows(dict(fwd4=fwd4, fwd1=fwd1, chg4=chg4, chg1=chg1), _row_sigs(fmt), name)
    _FORM_ROWS[(key, fmt)] = rows
    return rows


_GRAD_ROWS: dict = {}


def _grad_rows(surr: int, fmt: str) -> dict:
    """The backward's gradient rows of surrogate ``surr`` for storage ``fmt`` (``grad1``
    over :func:`_grad_loop`, ``grad4`` over :func:`_grad_loop4`), compiled on first use
    (all five surrogates at once took ~35 s per dtype on a cold cache). The four-step row
    has two loops, one per store kind (see :func:`_form_rows`); the single-step row (the
    ``T mod 4`` remainder and the learnable-leak path) only ordinary stores, which halves
    its compile time. Reset and detach stay runtime switches here: specialising them too
    would multiply the variants by six for a gain measured at 20% of this loop."""
    rows = _GRAD_ROWS.get((surr, fmt))
    if rows is not None:
        return rows

    def grad1(hr, gsr, gxr, ghb, gv, m, p, kx, kv, reset, detach, store_gx, keep_gh):
        _grad_loop(hr, gsr, gxr, ghb, gv, m, p, kx, kv, reset, detach, store_gx, keep_gh, surr)

    def grad4(h3, h2, h1, h0, g3, g2, g1, g0, x3, x2, x1, x0, gv, m, p, kx, kv, reset,
              detach, stream):
        if stream:
            _grad_loop4(h3, h2, h1, h0, g3, g2, g1, g0, x3, x2, x1, x0, gv, m, p, kx, kv, reset,
                        detach, True, surr)
        else:
            _grad_loop4(h3, h2, h1, h0, g3, g2, g1, g0, x3, x2, x1, x0, gv, m, p, kx, kv, reset,
                        detach, False, surr)

    sigs = _row_sigs(fmt)
    # (Reciprocal estimates for the surrogates' divisions were tried: numba emits
    # ``vrcp14ps`` plus a Newton step only with nnan/ninf/nsz/arcp, and with those
    # flags on the backward's rows it ran 6% slower on Zen 5 than with ``vdivps``: in
    # cache, 1 thread, bf16, T = 4, 64k neurons, 0.466 against 0.439 ns per element.
    # FMA contraction (fastmath "contract") sped the sigmoid row up in cache, 0.61 to
    # 0.49 ns per element, but made no difference to the default training run's epoch
    # time and its last-bit changes to the gradients made that run diverge from the
    # reference backend's, which it otherwise reproduces exactly.)
    rows = _compile_rows(dict(grad1=grad1, grad4=grad4), sigs, f"{SURROGATE_NAMES[surr]}_{fmt}")
    _GRAD_ROWS[(surr, fmt)] = rows
    return rows


# A one-pass ``T = 4`` backward with ``H`` in registers instead of the scratch was
# measured no faster (fp32 2.59 vs 2.71 ms, bf16 2.06 vs 1.98 ms forward + backward at
# N = 1M) and doubled the compile time, so it is not here.


@njit(**_ROW)
def _grad_k_row(xr, hpr, vinit, ghb, acc, m, p, first, decay, reset):
    """``acc += gH (X - (V[t-1] - V_rest))`` (decay_input) or ``-gH (V[t-1] - V_rest)``,
    with ``V[t-1] = reset(H[t-1])`` recomputed (``vinit`` at ``t = 0``)."""
    vth, vreset, vrest, zero = p[P_VTH], p[P_VRESET], p[P_VREST], p[P_ZERO]
    for i in range(m):
        if first:
            vp = vinit[i]
        else:
            hp = hpr[i]
            vp = _reset(hp, hp - vth >= zero, zero, vth, vreset, reset)
        if decay:
            acc[i] += ghb[i] * (_ld(xr, i) - (vp - vrest))
        else:
            acc[i] -= ghb[i] * (vp - vrest)


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
    other), starting from ``v0``'s slice or a zero buffer and ending in ``vout``'s slice,
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
        vz = np.zeros(chunk, params.dtype)  # V[-1] without v0; never written
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
    the ``sg`` terms dropped under ``detach_reset``. ``gV[T-1]`` is the gradient of the final
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
    stream = opts[O_STREAM]
    kx = k if (kind == 1 and decay == 1) else one  # gX = kx gH
    kv = omk if kind == 1 else one  # gV[t-1] = kv gH
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
        vz = np.zeros(chunk, params.dtype)  # V[-1] without v0; never written
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
                        m, params, r == 0, decay, reset,
                    )
            if need_gv0:
                gv0[n0:n1] = gv[:m]
            if need_gk:
                acc = zero
                for i in range(m):
                    acc += gk_acc[i]
                gk_part[c] = acc
            c = _claim(counter)


# One compiled copy per storage format and threading mode: small problems run
# serially, as a parallel region costs a thread wake-up and a barrier (milliseconds on
# a busy machine) that a few thousand neurons do not pay back. Each copy wraps its own
# function object with its own name: numba's on-disk cache is keyed by the function's
# name and signature, not by ``parallel=``, so two dispatchers over the same function
# would load each other's code (we measured the "parallel" kernel running
# single-threaded from a cache the serial one had written).


def _named_copy(fn, suffix: str):
    """``fn`` as a new function object named ``fn.__name__ + suffix``."""
    copy = pytypes.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix,
                                fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__ + suffix
    copy.__doc__ = fn.__doc__
    return copy


_SERIAL = dict(cache=True, nogil=True, error_model="numpy")
_PARALLEL = dict(parallel=True, cache=True, nogil=True, error_model="numpy")
_DRIVERS: dict = {}


def _driver(which: str, fmt: str, parallel: bool):
    """The ``"forward"`` or ``"backward"`` driver for storage ``fmt``, serial or parallel,
    created on first use (its rows come as addresses, so one driver serves every
    variant)."""
    key = (which, fmt, parallel)
    fn = _DRIVERS.get(key)
    if fn is None:
        py = _forward_py if which == "forward" else _backward_py
        mode = "parallel" if parallel else "serial"
        fn = _DRIVERS[key] = njit(**(_PARALLEL if parallel else _SERIAL))(
            _named_copy(py, f"_{mode}_{fmt}")
        )
    return fn


# Below this many elements of [T, N] the serial loop is used.
PARALLEL_MIN_ELEMENTS = 1 << 18


# ---------------------------------------------------------------------------
# Host side
# ---------------------------------------------------------------------------

_SPIKE_ONE = {"bfloat16": 0x3F80, "float16": 0x3C00}  # 1.0 in bfloat16 / float16 bits
_FMT_NAMES = {torch.float32: "float32", torch.float64: "float64", torch.bfloat16: "bfloat16",
              torch.float16: "float16"}
_STORAGE_NP = {"float32": np.float32, "float64": np.float64, "bfloat16": np.uint16,
               "float16": np.int16}


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the state and arithmetic use for input ``dtype``: float64 stays float64,
    everything else runs in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _params(spec: NeuronSpec, k: float, np_dtype) -> np.ndarray:
    a = spec.alpha
    vals = [0.0] * N_PARAMS
    vals[P_K], vals[P_VTH], vals[P_VRESET] = k, spec.v_threshold, spec.v_reset
    vals[P_VREST] = spec.v_rest
    vals[P_ALPHA], vals[P_C1], vals[P_C2] = a, np.pi / 2 * a, a / 2
    vals[P_ONE], vals[P_ZERO], vals[P_INV_ALPHA] = 1.0, 0.0, 1.0 / a
    p = np.array(vals, dtype=np_dtype)
    p[P_OMK] = p[P_ONE] - p[P_K]  # 1 - k in the compute dtype
    return p


def _opts(spec: NeuronSpec, has_v0: bool, **flags) -> np.ndarray:
    o = np.zeros(N_OPTS, dtype=np.int64)
    o[O_KIND] = 0 if spec.kind == "if" else 1
    o[O_DECAY] = int(spec.decay_input)
    o[O_RESET] = spec.reset_id
    o[O_DETACH] = int(spec.detach_reset)
    o[O_HAS_V0] = int(has_v0)
    for name, value in flags.items():
        o[globals()["O_" + name.upper()]] = int(value)
    return o


def chunk_size(T: int, N: int, itemsize: int, nthreads: int, backward: bool) -> int:
    """Neurons per chunk (a multiple of 64, at least 1024 unless N is smaller).

    Long rows stream best, so forward chunks are up to 128k neurons. The backward's
    chunks are up to 32k neurons with the ``[T, chunk]`` scratch of ``H`` kept to 8 MiB
    (past that it falls out of the shared 32 MiB L3: 2.4x slower at T = 32 with 256k).
    Measured on a 2-core Zen 5 VM, N = 1M, 2 threads, streaming stores, backward in ms
    for chunks of 4k / 16k / 32k / 128k neurons: T = 4 fp32 1.30 / 1.10 / 1.09 / 1.21,
    bf16 1.10 / 0.98 / 1.00 / 1.10; T = 16 fp32 4.77 / 4.32 / 4.28 / 4.34, bf16 4.23 /
    3.85 / 3.90 / 4.29; T = 32 fp32 9.64 / 8.97 / 8.88 / (64k) 8.83. Every thread gets
    at least one chunk.
    """
    c = 131072
    if backward:
        c = min(32768, (8 << 20) // max(1, T * itemsize))
    per_thread = -(-N // max(1, nthreads))
    c = min(c, -(-per_thread // 64) * 64)
    return int(max(c // 64 * 64, min(1024, -(-N // 64) * 64), 64))


_NUMBA_LAUNCHED = [False]


def numba_threads() -> int:
    """numba's thread count, launching its pool on first use without disturbing torch.

    numba's OpenMP layer shares torch's OpenMP runtime, and launching its pool resets
    the runtime's thread count to numba's (a user's ``torch.set_num_threads(1)`` read
    back as 2 afterwards); torch's setting is restored right after the launch."""
    if not _NUMBA_LAUNCHED[0]:
        torch_threads = torch.get_num_threads()
        n = get_num_threads()
        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)
        _NUMBA_LAUNCHED[0] = True
        return n
    return get_num_threads()


def _pick(T: int, N: int) -> tuple[bool, int]:
    """``(parallel, threads)`` for a ``[T, N]`` problem: the parallel driver with numba's
    threads, but no more than ``torch.get_num_threads()`` so that ``torch.set_num_threads``
    also bounds the fused kernels; the serial one for small problems or one thread."""
    nthreads = max(1, min(numba_threads(), torch.get_num_threads()))
    if nthreads == 1 or T * N < PARALLEL_MIN_ELEMENTS or N < 2048:
        return False, 1
    return True, nthreads


def _l3_bytes() -> int:
    """The last-level cache size from sysfs (Linux), else 32 MiB."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index3/size") as f:
            text = f.read().strip().upper()
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        return int(text.rstrip("KMG")) * scale
    except (OSError, ValueError):
        return 32 << 20


# A cap on the streaming threshold: sysfs reports the whole socket's L3, and a
# small VM on a large socket shares it with many neighbours (our 2-core Xeon VMs
# report 480 MiB, so half the L3 would never stream at all).
STREAM_CAP_BYTES = 32 << 20


def stream_min_bytes(l3_bytes: int) -> int:
    """The output size from which the kernels use non-temporal stores on a machine whose
    last-level cache is ``l3_bytes``: half of it, at most :data:`STREAM_CAP_BYTES`.

    Half the L3 is where the op's own input and output no longer fit in it together;
    below that, ordinary stores keep the output cached for the layer that reads it next.
    Measured as a LIF forward at T = 4 then a sum over its spikes, the input cached,
    interleaved, streaming over ordinary time:

    - 2-core Zen 5 VM, 32 MiB L3: fp32 output 2 MB 1.24, 4 MB 1.29, 8 MB 1.30, 16 MB
      0.99; bf16 8 MB 1.12, 16 MB 1.06. From cold caches (``benchmarks/neurons.py``)
      streaming made the forward 1.5-1.8x faster at 16-64 MB.
    - 2-core Xeon VM, 480 MiB L3 reported (``python benchmarks/stream_threshold.py``,
      ``benchmarks/results/stream_threshold_cpu.json``): fp32 output 2 MB 1.22, 4 MB
      1.51, 8 MB 1.57, 16 MB 1.22, 32 MB 1.01, 64 MB 0.85; bf16 2 MB 1.38, 8 MB 1.40,
      16 MB 1.23, 32 MB 1.06, 64 MB 0.94. Hence the 32 MiB cap. From cold caches, with no
      reader after it (``benchmarks/neurons.py``, T = 4, N = 1M, streaming forced on and
      off with ``SPIKEFORGE_STREAM_MIN_MB``), streaming took the fp32 forward+backward
      from 1.32x to 0.99x the floor there: the cap gives that up below 32 MB for the
      layer that reads the spikes next.
    """
    return min(max(l3_bytes, 0) // 2, STREAM_CAP_BYTES)


# Outputs of at least this many bytes are written with non-temporal stores (see
# :func:`_stream_store` and :func:`stream_min_bytes`). A training step of the default
# model (12.8 MB of spikes) took the same time either way on Zen 5 (27.9 / 27.6 ms).
# ``SPIKEFORGE_STREAM_MIN_MB`` overrides it (0 streams every aligned output, a negative
# value none).
STREAM_MIN_BYTES = (
    int(float(os.environ["SPIKEFORGE_STREAM_MIN_MB"]) * (1 << 20))
    if os.environ.get("SPIKEFORGE_STREAM_MIN_MB")
    else stream_min_bytes(_l3_bytes())
)


def _stream_bytes(T: int, N: int, itemsize: int) -> int:
    """The size of a ``[T, N]`` output if every row starts 64-byte aligned whenever the
    base address is (the row length in bytes is a multiple of 64; chunks start at
    multiples of 64 elements), else -1: the part of :func:`use_stream_stores`' test that
    depends on the shape only (a launch plan keeps it)."""
    return T * N * itemsize if N > 0 and (N * itemsize) % 64 == 0 else -1


def _stream_ok(stream_bytes: int, ptr: int) -> bool:
    """:func:`use_stream_stores` for an output of :func:`_stream_bytes` ``stream_bytes`` at
    address ``ptr``."""
    return 0 <= STREAM_MIN_BYTES <= stream_bytes and ptr % 64 == 0


def use_stream_stores(out: torch.Tensor) -> bool:
    """Whether the kernels may write ``out`` ``[T, N]`` with non-temporal stores: it is
    large (``>= STREAM_MIN_BYTES``, not negative) and every row starts 64-byte aligned
    (the base address and the row length in bytes are multiples of 64; chunks start at
    multiples of 64 elements), as the aligned vector stores require."""
    if out.numel() == 0:
        return False
    n = out.shape[-1]
    return _stream_ok(_stream_bytes(out.numel() // n, n, out.element_size()), out.data_ptr())


def _k_value(k) -> float:
    return float(k.detach().item()) if isinstance(k, torch.Tensor) else float(k)


# Per-call host work, measured from cold caches (the state a layer finds them in after
# the layers before it have streamed their tensors through; 2-core Zen 5 VM, bf16
# T = 4, N = 1M): building numpy views, the parameter and option vectors and the chunk
# plan cost ~0.18 ms before the forward kernel and ~0.25 ms before the backward's,
# a fifth of the kernels' own time. So everything that depends only on the call's
# shape, dtype, spec and thread count is built once into a plan (a tuple) and looked
# up; tensors cross as data addresses (see :func:`_ptr_like`).
_PLANS: dict = {}
_PARAM_CACHE: dict = {}
_CACHE_MAX = 512  # entries; a full cache is emptied (shapes vary little in practice)


def _cached_params(spec: NeuronSpec, k: float, np_cdt) -> np.ndarray:
    """:func:`_params` for ``(spec, k)``, built once (the kernels only read it). Keyed by
    ``id(spec)``, which hashes faster than the dataclass; the entry keeps ``spec`` alive,
    so its id is not reused while the entry exists."""
    hit = _PARAM_CACHE.get((id(spec), k, np_cdt))
    if hit is not None:
        return hit[1]
    if len(_PARAM_CACHE) >= _CACHE_MAX:
        _PARAM_CACHE.clear()
    p = _params(spec, k, np_cdt)
    _PARAM_CACHE[(id(spec), k, np_cdt)] = (spec, p)
    return p


def _plan(key: tuple, spec: NeuronSpec) -> tuple:
    """The cached launch plan of a forward (``key[0] == "forward"``) or backward call
    (``key[1] == id(spec)``, kept valid as in :func:`_cached_params`): ``(driver, opts,
    opts with streaming stores, like, chunk, threads, row addresses, compute dtype,
    numpy compute dtype, :func:`_stream_bytes` of the output, spec)``."""
    plan = _PLANS.get(key)
    if plan is not None:
        return plan
    which, _, dtype, T, N, has_v0 = key[:6]
    name = _FMT_NAMES[dtype]
    cdt = compute_dtype(dtype)
    np_cdt = np.float64 if cdt == torch.float64 else np.float32
    parallel, nthreads = _pick(T, N)
    backward = which == "backward"
    chunk = chunk_size(T, N, cdt.itemsize, nthreads, backward=backward)
    form = _form_rows(_form_key(spec), name)
    if backward:
        has_gv, need_gx, need_gv0, need_gk = key[6:10]
        flags = dict(has_gv=has_gv, need_gk=need_gk, need_gx=need_gx, need_gv0=need_gv0)
        grad = _grad_rows(spec.surrogate_id, name)
        rows = (form["chg4_addr"], form["chg1_addr"], grad["grad4_addr"], grad["grad1_addr"])
    else:
        flags = {}
        rows = (form["fwd4_addr"], form["fwd1_addr"])
    stream_bytes = _stream_bytes(T, N, dtype.itemsize)  # _stream_ok decides per call
    like = np.array([_SPIKE_ONE.get(name, 1), 0], dtype=_STORAGE_NP[name])
    plan = (
        _driver(which, name, parallel),
        _opts(spec, has_v0, stream=False, **flags),
        _opts(spec, has_v0, stream=True, **flags),
        like, chunk, nthreads, rows, cdt, np_cdt, stream_bytes, spec,
    )
    if len(_PLANS) >= _CACHE_MAX:
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def _state_arg(t: torch.Tensor | None, n: int, cdt: torch.dtype) -> torch.Tensor | None:
    """A membrane-shaped tensor as a contiguous ``[n]`` tensor of the compute dtype."""
    if t is None:
        return None
    return t.detach().reshape(n).to(cdt).contiguous()


def forward_v(x2d: torch.Tensor, v0: torch.Tensor | None, k, spec: NeuronSpec,
              need_v: bool = True):
    """Raw fused forward (no autograd) over ``x2d`` ``[T, N]`` on the CPU::

        H[t] = charge(V[t-1], X[t]),  S[t] = H[t] - V_th >= 0,  V[t] = reset(H[t], S[t])

    from ``V[-1] = v0`` (zeros if ``None``), ``k`` the leak (float or one-element tensor).
    Returns ``(spikes [T, N] in x's dtype, v_final = V[T-1] [N] in the compute dtype)``;
    ``v_final`` is ``None`` when ``need_v`` is false (its store is skipped)."""
    if not x2d.is_contiguous():
        x2d = x2d.contiguous()
    T, N = x2d.shape
    drv, opts, opts_stream, sone, chunk, nthreads, rows, cdt, np_cdt, stream_bytes, _ = _plan(
        ("forward", id(spec), x2d.dtype, T, N, v0 is not None, torch.get_num_threads()), spec
    )
    s = _cpu_pool.empty((T, N), x2d.dtype)
    sp = s.data_ptr()
    v = torch.empty(N, dtype=cdt) if need_v else None
    v0c = _state_arg(v0, N, cdt)
    drv(
        x2d.data_ptr(), 0 if v0c is None else v0c.data_ptr(), sp,
        0 if v is None else v.data_ptr(), T, N,
        _cached_params(spec, _k_value(k), np_cdt),
        opts_stream if _stream_ok(stream_bytes, sp) else opts,
        sone, chunk, nthreads, rows[0], rows[1],
    )
    return s, v


def backward_v(
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
    """Raw fused backward of :func:`forward_v` for output gradients ``grad_s`` (``dL/dS``,
    ``None`` = 0) and ``grad_v`` (``dL/dV[T-1]``, ``None`` = 0)::

        gH[t] = gS[t] sg(H[t] - V_th) + gV[t] dV[t]/dH[t],   gX[t] = kx gH[t],
        gV[t-1] = kv gH[t],   gk = sum_t gH[t] dH[t]/dk

    (``kx = k`` for LIF with decay_input else 1, ``kv = 1 - k`` for LIF else 1; details in
    :func:`_backward_py`). Returns ``(grad_x [T, N] in x's dtype or None, grad_v0 [N] in
    the compute dtype or None, grad_k 0-d compute dtype or None)``."""
    if not x2d.is_contiguous():
        x2d = x2d.contiguous()
    T, N = x2d.shape
    dtype = x2d.dtype
    need_gv0 = need_gv0 and v0 is not None
    need_gk = need_gk and spec.kind == "lif"
    if grad_s is None:
        grad_s = torch.zeros_like(x2d)
    elif grad_s.dtype != dtype or grad_s.shape != x2d.shape or not grad_s.is_contiguous():
        grad_s = grad_s.reshape(T, N).to(dtype).contiguous()
    drv, opts, opts_stream, like, chunk, nthreads, rows, cdt, np_cdt, stream_bytes, _ = _plan(
        ("backward", id(spec), dtype, T, N, v0 is not None, grad_v is not None, bool(need_gx),
         need_gv0, need_gk, torch.get_num_threads()), spec
    )
    gx = _cpu_pool.empty((T, N), dtype) if need_gx else None
    gxp = 0 if gx is None else gx.data_ptr()
    gv0 = torch.empty(N, dtype=cdt) if need_gv0 else None
    gk_part = torch.zeros(-(-N // chunk), dtype=cdt) if need_gk else None  # one per chunk
    v0c = _state_arg(v0, N, cdt)
    gvc = _state_arg(grad_v, N, cdt)
    drv(
        x2d.data_ptr(), 0 if v0c is None else v0c.data_ptr(), grad_s.data_ptr(),
        0 if gvc is None else gvc.data_ptr(), gxp, 0 if gv0 is None else gv0.data_ptr(),
        0 if gk_part is None else gk_part.data_ptr(), T, N,
        _cached_params(spec, _k_value(k), np_cdt),
        opts_stream if need_gx and _stream_ok(stream_bytes, gxp) else opts,
        like, chunk, nthreads, *rows,
    )
    return gx, gv0, None if gk_part is None else gk_part.sum()


# The raw entry points of :mod:`spikeforge.ops._autograd` (tuple state and params).
forward, backward = legacy_single_state(forward_v, backward_v)
