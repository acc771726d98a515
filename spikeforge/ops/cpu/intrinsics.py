"""numba intrinsics of the CPU kernels: 16-bit float conversions, typed loads and
stores in a tensor's storage format, non-temporal stores, the atomic chunk counter,
raw data addresses and calls of compiled row functions by address.

Half tensors cross into numba as raw 16-bit words (numba has no float16/bfloat16
type): bfloat16 as uint16, float16 as int16, so the element type of the view says the
format and every load and store is resolved when the loop is compiled (no per-element
branch). Loads widen to float32 exactly (as torch's ``.float()``); stores narrow with
round-to-nearest-even (as torch's ``.to(half)``).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload


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
# as uint16, float16 as int16 (see host._STORAGE_NP).


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
    at element 0 (checked on the host:
    :func:`spikeforge.ops.cpu.host.use_stream_stores`); a remainder element stored by a
    scalar instruction has no alignment requirement on x86."""
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

