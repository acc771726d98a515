"""Jitting and launching the Triton neuron kernels: the interpreter or the GPU compiler,
the autotuner, fixed fallback block sizes, and cached parameter tensors.

The kernels and the helpers of :mod:`spikeforge.ops.triton.arith` are plain Python
functions. :func:`kernels` copies them into one namespace per mode, where each name is
bound to its jitted form (``triton.jit`` for a GPU, ``InterpretedFunction`` under
``TRITON_INTERPRET=1``), so the mode is read at first use, not at import, and both
modes can live in one process (the tests switch the interpreter on after other modules
imported spikeforge).
"""

from __future__ import annotations

import math
import types
import warnings

import torch
import triton

from spikeforge.ops.spec import NeuronSpec


def interpret() -> bool:
    """Whether ``TRITON_INTERPRET`` asks for Triton's CPU interpreter."""
    from spikeforge.ops.dispatch import triton_interpret

    return triton_interpret()


_KERNELS: dict[bool, dict] = {}


def kernels() -> dict:
    """``{name: kernel}`` of every Triton neuron kernel (the ``KERNELS`` of each module in
    :data:`KERNEL_MODULES`) jitted for the current mode, built once per mode."""
    mode = interpret()
    built = _KERNELS.get(mode)
    if built is None:
        built = _KERNELS[mode] = _build(mode)
    return built


KERNEL_MODULES = ("lif", "alif", "cubalif")


def _build(interpreted: bool) -> dict:
    import importlib

    from spikeforge.ops.triton import arith, surrogates

    if interpreted:
        from triton.runtime.interpreter import InterpretedFunction as wrap
    else:
        wrap = triton.jit
    mods = [importlib.import_module(f"spikeforge.ops.triton.{m}") for m in KERNEL_MODULES]
    ns: dict = {}
    # arith after the formulas: its Triton primitives replace the formulas' placeholders
    for m in (surrogates, arith, *mods):
        ns.update({k: v for k, v in vars(m).items() if not k.startswith("__")})
    funcs = list(arith.HELPERS) + [f for m in mods for f in m.KERNELS]
    for f in funcs:
        # a copy whose globals are the shared namespace: its calls resolve to the jitted
        # helpers of this mode (Triton reads the source through the code object)
        g = types.FunctionType(f.__code__, ns, f.__name__, f.__defaults__)
        g.__module__, g.__qualname__, g.__doc__ = f.__module__, f.__qualname__, f.__doc__
        ns[f.__name__] = wrap(g)
    return {f.__name__: ns[f.__name__] for m in mods for f in m.KERNELS}


# Autotuning on a GPU: (BLOCK, num_warps) candidates, timed by Triton's autotuner once
# per (T, N, dtypes) and cached for the process. The fixed choice of :func:`block` is
# the fallback (the interpreter, ``spikeforge.ops.triton_neuron.AUTOTUNE`` false, which
# SPIKEFORGE_TRITON_AUTOTUNE=0 sets, or a tuning error).
FWD_CONFIGS = ((256, 2), (512, 4), (1024, 4), (2048, 4), (2048, 8), (4096, 8))
BWD_CONFIGS = ((128, 2), (128, 4), (256, 4), (512, 4), (1024, 4), (512, 8))
MIN_BWD_BLOCK = min(b for b, _ in BWD_CONFIGS)
_TUNED: dict = {}


def tuned(name: str):
    """Kernel ``name`` wrapped in ``triton.autotune`` over ``BLOCK`` and ``num_warps`` (key
    ``T``, ``N`` and the tensors' dtypes; a ``gk_ptr`` argument is zeroed between trials),
    or ``None`` where autotuning is off (the interpreter, ``SPIKEFORGE_TRITON_AUTOTUNE=0``,
    or after a tuning error)."""
    from spikeforge.ops import triton_neuron  # the switch lives with the entry points

    if not triton_neuron.AUTOTUNE or interpret() or _TUNED.get("failed"):
        return None
    kern = _TUNED.get(name)
    if kern is None:
        base = kernels()[name]
        bwd = name.endswith("_bwd")
        configs = [triton.Config({"BLOCK": b}, num_warps=w)
                   for b, w in (BWD_CONFIGS if bwd else FWD_CONFIGS)]
        reset = ["gk_ptr"] if "gk_ptr" in base.arg_names else None
        kern = _TUNED[name] = triton.autotune(configs, key=["T", "N"], reset_to_zero=reset)(base)
    return kern


def tuned_configs() -> dict:
    """The configurations the autotuner chose so far, ``{kernel: {key: config}}`` (for the
    benchmark's record)."""
    out = {}
    for name, kern in _TUNED.items():
        if name != "failed":
            out[name] = {str(key): str(cfg) for key, cfg in getattr(kern, "cache", {}).items()}
    if _TUNED.get("failed"):
        out["failed"] = _TUNED["failed"]
    return out


LAUNCH = dict(enable_fp_fusion=False)  # no FMA contraction: spikes match the reference


def launch(name: str, N: int, fixed: tuple[int, int], args: tuple, consts: dict,
           zero_on_fallback: tuple = ()) -> None:
    """Launch kernel ``name`` over ``N`` neurons: autotuned where :func:`tuned` is on, else
    with ``fixed = (BLOCK, num_warps)``. Every kernel rewrites all its outputs from its
    inputs, so a failed tuning launch is redone with the fixed configuration
    (``zero_on_fallback`` zeroed first; tuning switched off for the process, with a
    warning)."""
    kern = tuned(name)
    if kern is not None:
        try:
            kern[lambda meta: (triton.cdiv(N, meta["BLOCK"]),)](*args, **consts, **LAUNCH)
            return
        except Exception as e:  # noqa: BLE001 - any tuning failure falls back
            _TUNED["failed"] = f"{type(e).__name__}: {e}"[:500]
            warnings.warn(f"spikeforge: Triton autotuning failed ({_TUNED['failed']}); "
                          "using the fixed block sizes", RuntimeWarning, stacklevel=3)
            for t in zero_on_fallback:
                t.zero_()
    BLOCK, warps = fixed
    kernels()[name][(triton.cdiv(N, BLOCK),)](*args, **consts, BLOCK=BLOCK, num_warps=warps,
                                              **LAUNCH)


def block(N: int, T: int = 1, backward: bool = False, scratch: int = 1) -> tuple[int, int]:
    """``(BLOCK, num_warps)`` (4 warps = 128 threads per program).

    Forward: 1024 neurons per program (8 per thread: enough loads in flight). Backward:
    the ``scratch`` arrays written by all resident programs should still be in L2 when
    they are read back; with about 270k resident threads on an H100 and a 50 MB L2 that
    means ``threads x (neurons per thread) x T x 4 B x scratch`` of about 32 MB, so for
    one array 8 neurons per thread at T <= 4, 2 at T = 16, 1 at T >= 32. On a GPU this is
    the fallback of the autotuner (:func:`tuned`), which times the alternatives per
    shape. In the interpreter one program per block of up to 4096 neurons keeps numpy
    calls few."""
    if interpret():
        return max(16, min(4096, triton.next_power_of_2(max(N, 1)))), 4
    if not backward:
        return 1024, 4
    per_thread = max(1, min(8, 32 // max(1, T * scratch)))
    per_thread = 1 << (per_thread.bit_length() - 1)  # power of two
    return 128 * per_thread, 4


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """State/arithmetic dtype: float64 for float64 input, float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


_CACHE: dict = {}
_CACHE_MAX = 512  # entries; a full cache is emptied (specs and parameters vary little)


def cached_tensor(key: tuple, values, dtype: torch.dtype, device) -> torch.Tensor:
    """``torch.tensor(values)`` on ``device``, cached under ``key`` (no host-to-device copy
    per call)."""
    key = (key, dtype, str(device))
    t = _CACHE.get(key)
    if t is None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        t = _CACHE[key] = torch.tensor([float(v) for v in values], dtype=dtype, device=device)
    return t


def spec_params(spec: NeuronSpec, dtype: torch.dtype, device) -> torch.Tensor:
    """``[V_th, V_reset, V_rest, alpha, pi/2 alpha, alpha/2, 1/alpha]`` in the compute dtype
    on ``device`` (read by every kernel as ``p_ptr``)."""
    a = spec.alpha
    vals = (spec.v_threshold, spec.v_reset, spec.v_rest, a, math.pi / 2 * a, a / 2, 1 / a)
    return cached_tensor(("spec", spec), vals, dtype, device)


def kind_params(values: tuple, dtype: torch.dtype, device) -> torch.Tensor:
    """A kind's float parameters (e.g. ALIF's ``(k, rho, beta)``) as a cached tensor in the
    compute dtype (read by the kernel as ``q_ptr``)."""
    return cached_tensor(("q", tuple(float(v) for v in values)), values, dtype, device)
