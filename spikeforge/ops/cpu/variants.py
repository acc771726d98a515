"""Row functions compiled per variant, called by the drivers through their addresses.

Every option a row loop branches on is a compile-time constant inside its row
function: one compiled function per variant, created and compiled on first use (so a
process compiles only what it runs). IF/LIF: the forward and the backward's recompute
per neuron form ``(kind, decay_input, reset, floor)``, the gradient loops per
``(surrogate, floor)`` (reset and detach stay runtime switches there); ``floor`` is the
membrane floor ``v_min`` (compiled only when a floored spec runs, named ``..._floor``, so
the unfloored rows are the same code as without it). ALIF/CubaLIF: the forward and recompute per
``(kind, decay_input, reset)``, the gradient loop per ``(kind, decay_input, surrogate)``.
The forward, the recompute and the gradient rows are compiled separately (inference
compiles the forward only), and the streaming-store loops only when streaming is on.
The drivers (:mod:`.drivers`, :mod:`.drivers2`) are compiled once per storage format
and call rows by address (:func:`~spikeforge.ops.cpu.intrinsics._call_row`), so a new
variant costs only its rows' compilation, not the drivers'. Rows that store with
non-temporal stores have one loop per store kind (``stream`` a literal in each): with one
loop and a branch around the store, LLVM merges the two stores into one that keeps the
streaming store's 64-byte alignment claim, which faults on rows that are not aligned.
"""

from __future__ import annotations

from numba import njit, types
from numba.experimental.function_type import _get_wrapper_address

from spikeforge.ops.cpu.layout import KIND_CODES, KIND_IF, KIND_LIF, ROW
from spikeforge.ops.cpu.rows import (
    _charge_loop,
    _charge_loop4,
    _forward_loop,
    _forward_loop4,
    _grad_loop,
    _grad_loop4,
)
from spikeforge.ops.cpu.rows2 import charge2_loop, forward2_loop, grad2_loop
from spikeforge.ops.spec import RESET_KINDS, SURROGATE_NAMES, NeuronSpec

# Storage format -> (numba storage scalar, numba compute scalar, name).
_FMT_TYPES = {
    "float32": (types.float32, types.float32),
    "float64": (types.float64, types.float64),
    "bfloat16": (types.uint16, types.float32),
    "float16": (types.int16, types.float32),
}
_I64 = types.int64
_KIND_NAMES = {code: name for name, code in KIND_CODES.items()}


def _arr(t, ndim: int = 1):
    return types.Array(t, ndim, "C")


def _row_sigs(fmt: str) -> dict:
    """Signatures of the row functions for storage format ``fmt``; the drivers' calls
    (:func:`~spikeforge.ops.cpu.intrinsics._call_row`) pass exactly these types."""
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
        out[role] = disp = njit(sigs[role], **ROW)(fn)
        out[role + "_addr"] = _get_wrapper_address(disp, sigs[role])
    return out


_FORM_ROWS: dict = {}
_CHARGE_ROWS: dict = {}


def _form_key(spec: NeuronSpec) -> tuple[int, int, int, int]:
    """``(kind, decay, reset, floor)`` codes of a spec; ``decay`` is 0 for IF, which has no
    leak; ``floor`` 1 when the spec has a membrane floor ``v_min``."""
    kind = KIND_CODES[spec.kind]
    return (kind, int(spec.decay_input) if kind != KIND_IF else 0, spec.reset_id,
            int(spec.v_min is not None))


def _form_name(key: tuple[int, int, int, int], fmt: str, stream: bool) -> str:
    """The variant name of form ``key`` (:func:`_form_key`): numba's disk-cache key."""
    kind, decay, reset, floor = key
    return (f"{_KIND_NAMES[kind]}_{'decay_' if decay else ''}{RESET_KINDS[reset]}"
            f"{'_floor' if floor else ''}_{fmt}{'_stream' if stream else ''}")


def _form_rows(key: tuple[int, int, int, int], fmt: str, stream: bool = False) -> dict:
    """The forward rows (``fwd4``, ``fwd1``) of neuron form ``key = (kind, decay, reset,
    floor)`` for storage ``fmt``, compiled on first use. With ``stream`` the four-step row has a
    second loop with non-temporal stores, taken when its ``stream`` argument is set (one
    loop per store kind, ``stream`` a literal in each: with one loop and a branch around
    the store, LLVM merges the two stores into one that keeps the streaming store's
    64-byte alignment claim, which faults on rows that are not aligned); without it (the
    default, streaming off: :data:`~spikeforge.ops.cpu.host.STREAM_MIN_BYTES`) the
    argument is ignored and only the ordinary loop is compiled, which saves a third of
    the compile time. The single-step row (the ``T mod 4`` remainder) always stores
    normally."""
    rows = _FORM_ROWS.get((key, fmt, stream))
    if rows is not None:
        return rows
    kind, decay, reset, floor = key

    with_stream = stream  # a compile-time constant: without it the streaming loop is pruned

    def fwd4(x0, x1, x2, x3, s0, s1, s2, s3, vin, vout, m, p, one_s, zero_s, stream):
        if with_stream and stream:
            _forward_loop4(x0, x1, x2, x3, s0, s1, s2, s3, vin, vout, m, p, one_s, zero_s,
                           kind, decay, reset, floor, True)
        else:
            _forward_loop4(x0, x1, x2, x3, s0, s1, s2, s3, vin, vout, m, p, one_s, zero_s,
                           kind, decay, reset, floor, False)

    def fwd1(xr, sr, vin, vout, m, p, one_s, zero_s):
        _forward_loop(xr, sr, vin, vout, m, p, one_s, zero_s, kind, decay, reset, floor)

    rows = _compile_rows(dict(fwd4=fwd4, fwd1=fwd1), _row_sigs(fmt),
                         _form_name(key, fmt, stream))
    _FORM_ROWS[(key, fmt, stream)] = rows
    return rows


def _charge_rows(key: tuple[int, int, int, int], fmt: str) -> dict:
    """The backward's recompute rows (``chg4``, ``chg1``: ``H`` and ``V`` again from ``X``)
    of neuron form ``key`` for storage ``fmt``, compiled on first backward, so that a
    process that only runs forward (inference) compiles only :func:`_form_rows`."""
    rows = _CHARGE_ROWS.get((key, fmt))
    if rows is not None:
        return rows
    kind, decay, reset, floor = key

    def chg4(x0, x1, x2, x3, h0, h1, h2, h3, vin, vout, m, p):
        _charge_loop4(x0, x1, x2, x3, h0, h1, h2, h3, vin, vout, m, p, kind, decay, reset,
                      floor)

    def chg1(xr, hr, vin, vout, m, p):
        _charge_loop(xr, hr, vin, vout, m, p, kind, decay, reset, floor)

    rows = _compile_rows(dict(chg4=chg4, chg1=chg1), _row_sigs(fmt),
                         _form_name(key, fmt, False))
    _CHARGE_ROWS[(key, fmt)] = rows
    return rows


_GRAD_ROWS: dict = {}


def _grad_rows(surr: int, fmt: str, stream: bool = False, floor: int = 0) -> dict:
    """The backward's gradient rows of surrogate ``surr`` (with the membrane floor's clip
    mask when ``floor``) for storage ``fmt`` (``grad1``
    over :func:`_grad_loop`, ``grad4`` over :func:`_grad_loop4`), compiled on first use
    (all five surrogates at once took ~35 s per dtype on a cold cache). The four-step row
    has a streaming-store loop only with ``stream`` (see :func:`_form_rows`); the
    single-step row (the ``T mod 4`` remainder and the learnable-leak path) only ordinary
    stores. Reset and detach stay runtime switches here: specialising them too would
    multiply the variants by six for a gain measured at 20% of this loop."""
    rows = _GRAD_ROWS.get((surr, fmt, stream, floor))
    if rows is not None:
        return rows

    def grad1(hr, gsr, gxr, ghb, gv, m, p, kx, kv, reset, detach, store_gx, keep_gh):
        _grad_loop(hr, gsr, gxr, ghb, gv, m, p, kx, kv, reset, detach, store_gx, keep_gh, surr,
                  floor)

    with_stream = stream  # a compile-time constant: without it the streaming loop is pruned

    def grad4(h3, h2, h1, h0, g3, g2, g1, g0, x3, x2, x1, x0, gv, m, p, kx, kv, reset,
              detach, stream):
        if with_stream and stream:
            _grad_loop4(h3, h2, h1, h0, g3, g2, g1, g0, x3, x2, x1, x0, gv, m, p, kx, kv,
                        reset, detach, True, surr, floor)
        else:
            _grad_loop4(h3, h2, h1, h0, g3, g2, g1, g0, x3, x2, x1, x0, gv, m, p, kx, kv,
                        reset, detach, False, surr, floor)

    name = f"{SURROGATE_NAMES[surr]}{'_floor' if floor else ''}_{fmt}{'_stream' if stream else ''}"
    rows = _compile_rows(dict(grad1=grad1, grad4=grad4), _row_sigs(fmt), name)
    _GRAD_ROWS[(surr, fmt, stream, floor)] = rows
    return rows


def _row2_sigs(fmt: str) -> dict:
    """Signatures of the two-state kinds' row functions for storage format ``fmt``."""
    st, ct = _FMT_TYPES[fmt]
    S1, C1 = _arr(st), _arr(ct)
    return {
        "fwd": types.void(S1, S1, C1, C1, _I64, C1, st, st, _I64),
        "chg": types.void(S1, C1, C1, C1, C1, _I64, C1),
        "grad": types.void(C1, C1, S1, S1, C1, C1, _I64, C1, _I64, _I64, _I64),
    }


_FORM2_ROWS: dict = {}
_CHARGE2_ROWS: dict = {}
_GRAD2_ROWS: dict = {}


def _form2_rows(key: tuple[int, int, int, int], fmt: str, stream: bool = False) -> dict:
    """The forward row (``fwd``) of two-state form ``key = (kind, decay, reset)`` for
    storage ``fmt``, compiled on first use; its streaming-store loop only with ``stream``
    (see :func:`_form_rows`)."""
    rows = _FORM2_ROWS.get((key, fmt, stream))
    if rows is not None:
        return rows
    kind, decay, reset = key[:3]  # the two-state kernels run no floor (cpu/support.py)

    with_stream = stream  # a compile-time constant: without it the streaming loop is pruned

    def fwd(xr, sr, s1, s2, m, p, one_s, zero_s, stream):
        if with_stream and stream:
            forward2_loop(xr, sr, s1, s2, m, p, one_s, zero_s, kind, decay, reset, True)
        else:
            forward2_loop(xr, sr, s1, s2, m, p, one_s, zero_s, kind, decay, reset, False)

    rows = _compile_rows(dict(fwd=fwd), _row2_sigs(fmt),
                         _form_name(key, fmt, stream))
    _FORM2_ROWS[(key, fmt, stream)] = rows
    return rows


def _charge2_rows(key: tuple[int, int, int, int], fmt: str) -> dict:
    """The backward's recompute row (``chg``) of two-state form ``key`` for storage
    ``fmt``, compiled on first backward."""
    rows = _CHARGE2_ROWS.get((key, fmt))
    if rows is not None:
        return rows
    kind, decay, reset = key[:3]

    def chg(xr, h1r, h2r, s1, s2, m, p):
        charge2_loop(xr, h1r, h2r, s1, s2, m, p, kind, decay, reset)

    rows = _compile_rows(dict(chg=chg), _row2_sigs(fmt),
                         _form_name(key, fmt, False))
    _CHARGE2_ROWS[(key, fmt)] = rows
    return rows


def _grad2_rows(key: tuple[int, int, int], fmt: str, stream: bool = False) -> dict:
    """The gradient row (``grad``) of two-state ``key = (kind, decay, surrogate)`` for
    storage ``fmt`` (reset and detach runtime switches), compiled on first use; its
    streaming-store loop only with ``stream``."""
    rows = _GRAD2_ROWS.get((key, fmt, stream))
    if rows is not None:
        return rows
    kind, decay, surr = key

    with_stream = stream  # a compile-time constant: without it the streaming loop is pruned

    def grad(h1r, h2r, gsr, gxr, g1, g2, m, p, reset, detach, stream):
        if with_stream and stream:
            grad2_loop(h1r, h2r, gsr, gxr, g1, g2, m, p, kind, decay, reset, detach, True, surr)
        else:
            grad2_loop(h1r, h2r, gsr, gxr, g1, g2, m, p, kind, decay, reset, detach, False, surr)

    name = (f"{_KIND_NAMES[kind]}_{'decay_' if decay else ''}{SURROGATE_NAMES[surr]}_{fmt}"
            f"{'_stream' if stream else ''}")
    rows = _compile_rows(dict(grad=grad), _row2_sigs(fmt), name)
    _GRAD2_ROWS[(key, fmt, stream)] = rows
    return rows


def rows_for(spec: NeuronSpec, fmt: str, backward: bool, stream: bool) -> tuple[int, ...]:
    """Addresses of the row functions a driver of ``spec``'s kind needs, in its argument
    order: IF/LIF forward ``(fwd4, fwd1)``, backward ``(chg4, chg1, grad4, grad1)``;
    ALIF/CubaLIF forward ``(fwd,)``, backward ``(chg, grad)``. ``stream``: rows that can
    store with non-temporal stores (when the driver asks; see :func:`_form_rows`)."""
    key = _form_key(spec)
    if key[0] in (KIND_IF, KIND_LIF):
        if not backward:
            form = _form_rows(key, fmt, stream)
            return form["fwd4_addr"], form["fwd1_addr"]
        chg = _charge_rows(key, fmt)
        grad = _grad_rows(spec.surrogate_id, fmt, stream, key[3])
        return chg["chg4_addr"], chg["chg1_addr"], grad["grad4_addr"], grad["grad1_addr"]
    if key[3]:
        raise ValueError(f"the CPU kernel runs the membrane floor v_min for IF/LIF only, not "
                         f"neuron kind {spec.kind!r}")
    if not backward:
        return (_form2_rows(key, fmt, stream)["fwd_addr"],)
    grad = _grad2_rows((key[0], key[1], spec.surrogate_id), fmt, stream)
    return _charge2_rows(key, fmt)["chg_addr"], grad["grad_addr"]
