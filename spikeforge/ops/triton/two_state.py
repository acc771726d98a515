"""Host side of the kernels of the two-variable neurons (ALIF's ``(V, A)``, CubaLIF's
``(I, V)``): buffers, parameter tensors and the launch, written once for both.

Their kernels take the same arguments in the same order (forward: ``x, state0[0],
state0[1], S, state[0], state[1], q, p, T, N``; backward: ``x, state0[0], state0[1],
gS, gstate[0], gstate[1], gX, H scratch, further scratch, gstate0[0], gstate0[1], q, p,
T, N, (T-1) N``); only the names of the final-state gradient switches and the number
of ``[T, N]`` scratch arrays differ. A pointer the kernel does not read gets the
parameter tensor ``p`` (valid, never dereferenced).
"""

from __future__ import annotations

import torch

from spikeforge.ops.spec import NeuronSpec
from spikeforge.ops.triton import jit


def flat(t: torch.Tensor | None, n: int) -> torch.Tensor | None:
    """``t`` detached as a contiguous ``[n]`` tensor (``None`` stays ``None``)."""
    return None if t is None else t.detach().reshape(n).contiguous()


def _pair(state, n: int):
    return (None, None) if state is None else (flat(state[0], n), flat(state[1], n))


def forward(kernel: str, x2d: torch.Tensor, state0, params, spec: NeuronSpec,
            need_state: bool = True):
    """Launch forward ``kernel`` over contiguous ``x2d`` ``[T, N]`` from ``state0`` (a pair
    of ``[N]`` tensors, or ``None`` for the rest state) with the float ``params``. Returns
    ``(spikes [T, N] in x's dtype, final state pair [N] in the compute dtype or None)``."""
    T, N = x2d.shape
    dev = x2d.device
    cdt = jit.compute_dtype(x2d.dtype)
    s = torch.empty_like(x2d)
    st = [torch.empty(N, dtype=cdt, device=dev) for _ in range(2)] if need_state else None
    if N == 0:
        return s, (None if st is None else (st[0], st[1]))
    p = jit.spec_params(spec, cdt, dev)
    q = jit.kind_params(params, cdt, dev)
    s0, s1 = _pair(state0, N)
    jit.launch(
        kernel, N, jit.block(N),
        (x2d, p if s0 is None else s0, p if s1 is None else s1, s,
         st[0] if need_state else p, st[1] if need_state else p, q, p, T, N),
        dict(HAS_S0=state0 is not None, DECAY=bool(spec.decay_input), RESET=int(spec.reset_id),
             STRICT=bool(spec.fire_strict), WRITE_STATE=need_state),
    )
    return s, (None if st is None else (st[0], st[1]))


def backward(kernel: str, grad_flags: tuple[str, str], x2d, state0, params,
             spec: NeuronSpec, grad_s, grad_state, need_gx: bool = True,
             need_gstate: bool = True, scratch: int = 1):
    """Launch backward ``kernel`` of :func:`forward` for ``grad_s = dL/dS`` and
    ``grad_state`` (the final state's gradient pair, ``None`` entries = 0).

    Args:
        grad_flags: the kernel's names of the switches "that final-state gradient was
            given", in state order (e.g. ``("HAS_GV", "HAS_GA")``).
        scratch: ``[T, N]`` compute-dtype scratch arrays the kernel takes: the first holds
            ``H`` (the ``grad_x`` buffer itself when it has the compute dtype).

    Returns ``(grad_x [T, N] in x's dtype or None, initial state gradient pair [N] in the
    compute dtype or None)``."""
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
    more = [torch.empty((T, N), dtype=cdt, device=dev) for _ in range(scratch - 1)]
    p = jit.spec_params(spec, cdt, dev)
    q = jit.kind_params(params, cdt, dev)
    if grad_s is None:
        grad_s = torch.zeros_like(x2d)
    gs = grad_s.reshape(T, N).contiguous()
    g_0, g_1 = _pair(grad_state, N)
    s0, s1 = _pair(state0, N)
    args = (x2d, p if s0 is None else s0, p if s1 is None else s1, gs,
            p if g_0 is None else g_0, p if g_1 is None else g_1,
            gx if gx is not None else hbuf, hbuf, *more,
            g0[0] if need_gstate else p, g0[1] if need_gstate else p, q, p, T, N, (T - 1) * N)
    consts = {
        "HAS_S0": state0 is not None, grad_flags[0]: g_0 is not None,
        grad_flags[1]: g_1 is not None, "DECAY": bool(spec.decay_input),
        "RESET": int(spec.reset_id), "DETACH": bool(spec.detach_reset),
        "SURR": int(spec.surrogate_id), "STRICT": bool(spec.fire_strict),
        "NEED_GX": gx is not None, "NEED_GS0": need_gstate,
    }
    jit.launch(kernel, N, jit.block(N, T, backward=True, scratch=scratch), args, consts)
    return gx, (None if g0 is None else (g0[0], g0[1]))
