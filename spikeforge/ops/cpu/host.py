"""Host side of the CPU kernels: per-call parameter and option vectors, chunking,
thread count, the non-temporal-store rule, the compiled drivers, and the launch plans
that cache all of it per call shape.

The host side of a call is a dictionary lookup of a launch plan (driver, options,
chunking, row addresses; :func:`_plan`) and the tensors' data addresses: everything that
depends only on the call's shape, dtype, spec and thread count is built once (from cold
caches, building it per call cost a fifth of a bf16 T = 4 forward+backward; see
benchmarks/README.md).
"""

from __future__ import annotations

import os
import types as pytypes

import numpy as np
import torch
from numba import get_num_threads, njit

from spikeforge.ops.cpu.drivers import _backward_py, _forward_py
from spikeforge.ops.cpu.drivers2 import _backward2_py, _forward2_py
from spikeforge.ops.cpu.layout import (
    KIND_ALIF,
    KIND_CODES,
    KIND_CUBALIF,
    KIND_IF,
    N_OPTS,
    N_PARAMS,
    O_DECAY,
    O_DETACH,
    O_FLOOR,
    O_HAS_GS2,
    O_HAS_GV,
    O_HAS_S2,
    O_HAS_V0,
    O_KIND,
    O_NEED_GK,
    O_NEED_GS2,
    O_NEED_GV0,
    O_NEED_GX,
    O_RESET,
    O_STREAM,
    P_ALPHA,
    P_BETA,
    P_C1,
    P_C2,
    P_INV_ALPHA,
    P_K,
    P_KSYN,
    P_OMK,
    P_OMKSYN,
    P_ONE,
    P_REST1,
    P_REST2,
    P_RHO,
    P_VMIN,
    P_VRESET,
    P_VREST,
    P_VTH,
    P_ZERO,
    PARALLEL,
    SERIAL,
)
from spikeforge.ops.cpu.variants import rows_for
from spikeforge.ops.spec import NeuronSpec

_SPIKE_ONE = {"bfloat16": 0x3F80, "float16": 0x3C00}  # 1.0 in bfloat16 / float16 bits
_FMT_NAMES = {torch.float32: "float32", torch.float64: "float64", torch.bfloat16: "bfloat16",
              torch.float16: "float16"}
# numba views of each storage format: half formats as raw 16-bit words (see .intrinsics)
_STORAGE_NP = {"float32": np.float32, "float64": np.float64, "bfloat16": np.uint16,
               "float16": np.int16}
_OPT_INDEX = dict(has_gv=O_HAS_GV, need_gk=O_NEED_GK, need_gx=O_NEED_GX, need_gv0=O_NEED_GV0,
                  stream=O_STREAM, has_s2=O_HAS_S2, has_gs2=O_HAS_GS2, need_gs2=O_NEED_GS2)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the state and arithmetic use for input ``dtype``: float64 stays float64,
    everything else runs in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _params(spec: NeuronSpec, pvals: tuple, np_dtype) -> np.ndarray:
    """The parameter vector (:mod:`.layout`) of ``spec`` with the kind's float params
    ``pvals`` (``()``, ``(k,)``, ``(k, rho, beta)`` or ``(k_syn, k_mem)``); ``P_VMIN`` holds
    the membrane floor ``v_min`` (0 without one: only floored row variants read it)."""
    kind = KIND_CODES[spec.kind]
    a = spec.alpha
    vals = [0.0] * N_PARAMS
    k = 1.0
    if kind == KIND_CUBALIF:
        vals[P_KSYN], k = pvals
    elif kind != KIND_IF:
        k = pvals[0]
    if kind == KIND_ALIF:
        vals[P_RHO], vals[P_BETA] = pvals[1], pvals[2]
    vals[P_K], vals[P_VTH], vals[P_VRESET] = k, spec.v_threshold, spec.v_reset
    vals[P_VREST] = spec.v_rest
    vals[P_VMIN] = 0.0 if spec.v_min is None else spec.v_min
    vals[P_REST1], vals[P_REST2] = (0.0, spec.v_rest) if kind == KIND_CUBALIF else (spec.v_rest,
                                                                                   0.0)
    vals[P_ALPHA], vals[P_C1], vals[P_C2] = a, np.pi / 2 * a, a / 2
    vals[P_ONE], vals[P_ZERO], vals[P_INV_ALPHA] = 1.0, 0.0, 1.0 / a
    p = np.array(vals, dtype=np_dtype)
    p[P_OMK] = p[P_ONE] - p[P_K]  # 1 - k in the compute dtype
    p[P_OMKSYN] = p[P_ONE] - p[P_KSYN]
    return p


def _opts(spec: NeuronSpec, has_v0: bool, **flags) -> np.ndarray:
    """The option vector (:mod:`.layout`); ``has_v0`` says the first state is given."""
    o = np.zeros(N_OPTS, dtype=np.int64)
    o[O_KIND] = KIND_CODES[spec.kind]
    o[O_DECAY] = int(spec.decay_input)
    o[O_RESET] = spec.reset_id
    o[O_DETACH] = int(spec.detach_reset)
    o[O_HAS_V0] = int(has_v0)
    o[O_FLOOR] = int(spec.v_min is not None)
    for name, value in flags.items():
        o[_OPT_INDEX[name]] = int(value)
    return o


def chunk_size(T: int, N: int, itemsize: int, nthreads: int, backward: bool,
               scratch_rows: int = 1) -> int:
    """Neurons per chunk (a multiple of 64, at least 1024 unless N is smaller).

    Long rows stream best, so forward chunks are up to 128k neurons. The backward's
    chunks are up to 32k neurons with its ``[T, chunk]`` scratch (``scratch_rows`` of
    them: ALIF keeps two) kept to 8 MiB, so that it stays in the last-level cache
    (measurements in benchmarks/README.md). Every thread gets at least one chunk.
    """
    c = 131072
    if backward:
        c = min(32768, (8 << 20) // max(1, T * itemsize * scratch_rows))
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


# Outputs of at least this many bytes are written with non-temporal stores (see
# :func:`~spikeforge.ops.cpu.intrinsics._stream_store`); ``SPIKEFORGE_STREAM_MIN_MB``
# sets it (0 streams every aligned output). Off by default: on a 2-core AMD EPYC VM
# streaming made LIF forward+backward at T = 16-32, N = 1M about 4x slower, and where it
# helped (a Xeon VM, outputs of 64 MB and more) it saved 6-15% (benchmarks/README.md,
# "CPU kernel design notes"; ``benchmarks/stream_threshold.py`` finds a machine's value).
def stream_min_bytes_from_env(environ=os.environ) -> int:
    """``SPIKEFORGE_STREAM_MIN_MB`` in bytes (0: stream every aligned output), or -1
    (never stream) when it is unset or empty."""
    text = environ.get("SPIKEFORGE_STREAM_MIN_MB", "").strip()
    return int(float(text) * (1 << 20)) if text else -1


STREAM_MIN_BYTES = stream_min_bytes_from_env()


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



def _named_copy(fn, suffix: str):
    """``fn`` as a new function object named ``fn.__name__ + suffix``."""
    copy = pytypes.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix,
                                fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__ + suffix
    copy.__doc__ = fn.__doc__
    return copy


# Below this many elements of [T, N] the serial driver is used.
PARALLEL_MIN_ELEMENTS = 1 << 18
_DRIVER_PY = {"forward": _forward_py, "backward": _backward_py, "forward2": _forward2_py,
              "backward2": _backward2_py}
_DRIVERS: dict = {}


def _driver(which: str, fmt: str, parallel: bool):
    """The driver ``which`` (``"forward"``/``"backward"`` for IF/LIF, ``"forward2"`` /
    ``"backward2"`` for the two-state kinds) for storage ``fmt``, serial or parallel,
    created on first use (its rows come as addresses, so one driver serves every
    variant). One compiled copy per format and threading mode, each its own function
    object with its own name: numba's on-disk cache is keyed by the function's name and
    signature, not by ``parallel=``, so two dispatchers over the same function would load
    each other's code (the "parallel" kernel then ran single-threaded)."""
    key = (which, fmt, parallel)
    fn = _DRIVERS.get(key)
    if fn is None:
        mode = "parallel" if parallel else "serial"
        fn = _DRIVERS[key] = njit(**(PARALLEL if parallel else SERIAL))(
            _named_copy(_DRIVER_PY[which], f"_{mode}_{fmt}")
        )
    return fn


def _param_values(params: tuple) -> tuple[float, ...]:
    """The params as floats (a tensor param's value; its gradient is the backward's)."""
    return tuple(float(p.detach().item()) if isinstance(p, torch.Tensor) else float(p)
                 for p in params)


_PLANS: dict = {}
_PARAM_CACHE: dict = {}
_CACHE_MAX = 512  # entries; a full cache is emptied (shapes vary little in practice)


def cached_params(spec: NeuronSpec, pvals: tuple, np_cdt) -> np.ndarray:
    """:func:`_params` for ``(spec, pvals)``, built once (the kernels only read it). Keyed
    by ``id(spec)``, which hashes faster than the dataclass; the entry keeps ``spec``
    alive, so its id is not reused while the entry exists."""
    key = (id(spec), pvals, np_cdt)
    hit = _PARAM_CACHE.get(key)
    if hit is not None:
        return hit[1]
    if len(_PARAM_CACHE) >= _CACHE_MAX:
        _PARAM_CACHE.clear()
    p = _params(spec, pvals, np_cdt)
    _PARAM_CACHE[key] = (spec, p)
    return p


def plan(key: tuple, spec: NeuronSpec) -> tuple:
    """The cached launch plan of a call: ``key = (which, id(spec), dtype, T, N, has_s1,
    *flags, threads)`` with ``which`` a driver name (:func:`_driver`) and ``flags`` the
    option flags of that driver (``id(spec)`` kept valid as in :func:`cached_params`).
    Returns ``(driver, opts, opts with streaming stores, like, chunk, threads, row
    addresses, compute dtype, numpy compute dtype, the output's _stream_bytes, spec)``;
    ``like`` is ``[1, 0]`` in the storage format (the spike values)."""
    streaming = STREAM_MIN_BYTES >= 0  # rows with streaming loops only when it is on
    hit = _PLANS.get((key, streaming))
    if hit is not None:
        return hit
    which, _, dtype, T, N, has_v0 = key[:6]
    name = _FMT_NAMES[dtype]
    cdt = compute_dtype(dtype)
    np_cdt = np.float64 if cdt == torch.float64 else np.float32
    parallel, nthreads = _pick(T, N)
    backward = which.startswith("backward")
    two = which.endswith("2")
    scratch_rows = 2 if KIND_CODES[spec.kind] == KIND_ALIF else 1
    chunk = chunk_size(T, N, cdt.itemsize, nthreads, backward, scratch_rows)
    if which == "backward":
        has_gv, need_gx, need_gv0, need_gk = key[6:10]
        flags = dict(has_gv=has_gv, need_gk=need_gk, need_gx=need_gx, need_gv0=need_gv0)
    elif which == "backward2":
        has_s2, has_gv, has_gs2, need_gv0, need_gs2 = key[6:11]
        flags = dict(has_s2=has_s2, has_gv=has_gv, has_gs2=has_gs2, need_gv0=need_gv0,
                     need_gs2=need_gs2, need_gx=True)
    elif two:
        flags = dict(has_s2=key[6])
    else:
        flags = {}
    rows = rows_for(spec, name, backward, streaming)
    # _stream_ok decides per call; -1: never, as these rows may lack the streaming loops
    stream_bytes = _stream_bytes(T, N, dtype.itemsize) if streaming else -1
    like = np.array([_SPIKE_ONE.get(name, 1), 0], dtype=_STORAGE_NP[name])
    hit = (
        _driver(which, name, parallel),
        _opts(spec, has_v0, stream=False, **flags),
        _opts(spec, has_v0, stream=True, **flags),
        like, chunk, nthreads, rows, cdt, np_cdt, stream_bytes, spec,
    )
    if len(_PLANS) >= _CACHE_MAX:
        _PLANS.clear()
    _PLANS[(key, streaming)] = hit
    return hit


def state_arg(t: torch.Tensor | None, n: int, cdt: torch.dtype) -> torch.Tensor | None:
    """A state-shaped tensor as a contiguous ``[n]`` tensor of the compute dtype."""
    if t is None:
        return None
    return t.detach().reshape(n).to(cdt).contiguous()
