"""The one ``torch.autograd.Function`` shape shared by every fused backend.

Each backend module provides ``forward(x2d, v0, k, spec, need_v) -> (spikes, v_final
or None)`` and ``backward(x2d, v0, k, spec, grad_s, grad_v, need_gx, need_gv0, need_gk)
-> (grad_x, grad_v0, grad_k)`` over a contiguous ``[T, N]`` input;
:func:`make_function` wraps the pair into an autograd Function whose gradients
follow the equations of :mod:`spikeforge.ops.spec`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def make_function(name: str, forward: Callable, backward: Callable) -> type:
    """Build ``torch.autograd.Function`` subclass ``name`` over a backend's raw kernels.

    ``apply(x2d, v0, k, spec, need_v)`` returns ``(S [T, N] in x's dtype, V[T-1] [N] in
    the compute dtype, or None when not ``need_v``)`` and back-propagates to ``x2d``,
    ``v0`` (a tensor or ``None``) and ``k`` (when it is a tensor): ``dL/dx``, ``dL/dv0``
    and ``dL/dk`` of the neuron recurrence with the surrogate derivative in place of the
    Heaviside's. Only ``x`` (and ``v0``, ``k``) are saved; the backward recomputes the
    membrane.
    """

    def fwd(ctx, x2d, v0, k, spec, need_v):
        s, v = forward(x2d, v0, k, spec, need_v)
        if isinstance(k, torch.Tensor):
            ctx.save_for_backward(x2d, v0, k)
            ctx.k_value = None
        else:
            ctx.save_for_backward(x2d, v0)
            ctx.k_value = k
        ctx.spec = spec
        ctx.set_materialize_grads(False)
        return s, v

    def bwd(ctx, grad_s, grad_v):
        if ctx.k_value is None:
            x2d, v0, k = ctx.saved_tensors
        else:
            (x2d, v0), k = ctx.saved_tensors, ctx.k_value
        if grad_s is None and grad_v is None:
            return None, None, None, None, None
        need_gx, need_gv0, need_gk = ctx.needs_input_grad[:3]
        gx, gv0, gk = backward(
            x2d, v0, k, ctx.spec, grad_s, grad_v,
            need_gx=need_gx,
            need_gv0=need_gv0 and v0 is not None,
            need_gk=need_gk and ctx.k_value is None,
        )
        if gv0 is not None:
            gv0 = gv0.to(v0.dtype)
        if gk is not None:
            gk = gk.to(k.dtype).reshape(k.shape)
        return gx, gv0, gk, None, None

    return type(
        name,
        (torch.autograd.Function,),
        {
            "forward": staticmethod(fwd),
            "backward": staticmethod(bwd),
            "__doc__": f"Fused multi-step neuron ({name}); see make_function.",
        },
    )
