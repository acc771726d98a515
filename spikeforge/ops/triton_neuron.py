"""The Triton backend's raw entry points (the signatures of :mod:`spikeforge.ops._autograd`),
over the kernels of :mod:`spikeforge.ops.triton` (CUDA; or Triton's CPU interpreter with
``TRITON_INTERPRET=1``).

One program per block of neurons loops over time for every kind (``"if"``, ``"lif"`` in
:mod:`spikeforge.ops.triton.lif`; ``"alif"``, ``"cubalif"`` in their own files); what the
backend runs is declared in :mod:`spikeforge.ops.triton_support`. Arithmetic follows the
reference's operation order with FMA contraction off, so spikes and final states equal
:mod:`spikeforge.functional` bit for bit; inputs may be float32, bfloat16 or float16
(state and arithmetic in float32) or float64 (all in float64); spikes are stored in the
input dtype. The kernels are jitted lazily, as ``InterpretedFunction`` under
``TRITON_INTERPRET=1`` and as ``triton.jit`` otherwise, so the mode is read at first use.
"""

from __future__ import annotations

import os

import torch

from spikeforge.ops.spec import NeuronSpec
from spikeforge.ops.triton import alif, cubalif, jit, lif

STATE_TUPLES = True  # dispatch: these entry points take and return state tuples
# Triton's autotuner picks block sizes per shape on a GPU; False (or the environment's
# SPIKEFORGE_TRITON_AUTOTUNE=0) uses the fixed blocks of spikeforge.ops.triton.jit.block
AUTOTUNE = os.environ.get("SPIKEFORGE_TRITON_AUTOTUNE", "1") != "0"
_TWO_STATE = {"alif": alif, "cubalif": cubalif}


def _fill_rest(x2d: torch.Tensor, state0: tuple, spec: NeuronSpec):
    """``None`` when every entry of ``state0`` is ``None`` (the kernels start from the rest
    state), else the tuple with missing entries filled with their rest values."""
    if all(s is None for s in state0):
        return None
    cdt = jit.compute_dtype(x2d.dtype)
    n = x2d.shape[1]
    return tuple(
        s if s is not None else torch.full((n,), rest, dtype=cdt, device=x2d.device)
        for s, rest in zip(state0, spec.rest_state())
    )


def forward(x2d: torch.Tensor, state0: tuple, params: tuple, spec: NeuronSpec,
            need_state: bool = True):
    """Raw fused forward over contiguous ``x2d`` ``[T, N]`` from ``state0`` (one ``[N]``
    tensor or ``None`` per state of ``spec.kind``) with ``params`` (a float, or for
    ``"lif"``'s ``k`` a one-element tensor). Returns ``(spikes [T, N] in x's dtype,
    final_state tuple of [N] in the compute dtype, or None without need_state)``."""
    full = _fill_rest(x2d, state0, spec)
    mod = _TWO_STATE.get(spec.kind)
    if mod is not None:
        return mod.forward(x2d, full, params, spec, need_state)
    k = params[0] if params else 1.0
    s, v = lif.forward(x2d, None if full is None else full[0], k, spec, need_state)
    return s, (None if v is None else (v,))


def backward(x2d: torch.Tensor, state0: tuple, params: tuple, spec: NeuronSpec, grad_s,
             grad_state: tuple, need_gx: bool = True, need_gstate: tuple = (True, True),
             need_gparams: tuple = (True, True, True)):
    """Raw fused backward of :func:`forward` for ``grad_s = dL/dS`` and ``grad_state``
    (``dL/d final state``, entries ``None`` = 0). Returns ``(grad_x or None, grad_state0
    tuple, grad_params tuple)``, ``None`` wherever a gradient was not asked for (float
    params never get one)."""
    full = _fill_rest(x2d, state0, spec)
    want = tuple(bool(n) and s is not None for n, s in zip(need_gstate, state0))
    mod = _TWO_STATE.get(spec.kind)
    if mod is not None:
        gx, g0 = mod.backward(x2d, full, params, spec, grad_s,
                              None if all(g is None for g in grad_state) else grad_state,
                              need_gx=need_gx, need_gstate=any(want))
        g0 = (None, None) if g0 is None else tuple(g if w else None for g, w in zip(g0, want))
        return gx, g0, (None,) * len(params)
    k = params[0] if params else 1.0
    need_gk = bool(params) and bool(need_gparams[0]) and isinstance(k, torch.Tensor)
    gx, gv0, gk = lif.backward(x2d, None if full is None else full[0], k, spec, grad_s,
                               grad_state[0] if grad_state else None, need_gx=need_gx,
                               need_gv0=want[0], need_gk=need_gk)
    return gx, (gv0 if want[0] else None,), ((gk,) if params else ())


# re-exported for the benchmark's record and tests
kernels = jit.kernels
tuned_configs = jit.tuned_configs
