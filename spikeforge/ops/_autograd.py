"""The one ``torch.autograd.Function`` shape shared by every fused backend, and the raw
entry points each backend provides.

Raw backend entry points (no autograd; every fused backend module, CPU and Triton, and
the custom operators built over them, follow these signatures). ``x2d`` is a
contiguous ``[T, N]`` tensor (float16/bfloat16/float32/float64); ``spec`` a
:class:`~spikeforge.ops.spec.NeuronSpec` whose kind the backend supports (its
:class:`~spikeforge.ops.support.BackendSupport` says so; dispatch has checked);
``state0`` a tuple with one entry per state of the kind (names in
:data:`~spikeforge.ops.spec.STATE_NAMES`), each a ``[N]`` tensor or ``None`` for that
state's rest value (``V_rest`` for ``v``, 0 for ``a`` and ``i``); ``params`` a tuple in
:data:`~spikeforge.ops.spec.PARAM_NAMES` order, each a float or, where the backend
declares it (``"lif"``'s ``k``), a one-element tensor::

    forward(x2d, state0, params, spec, need_state)
        -> (spikes [T, N] in x2d's dtype,
            final_state: tuple of [N] tensors in the compute dtype, or None when not
            need_state, in which case the backend may skip storing it)

    backward(x2d, state0, params, spec, grad_s, grad_state,
             need_gx, need_gstate, need_gparams)
        -> (grad_x [T, N] in x2d's dtype or None,
            grad_state0: tuple (one entry per state: [N] compute dtype, or None),
            grad_params: tuple (one entry per param: 0-d compute dtype, or None))

``grad_s`` is ``dL/dS`` (``[T, N]``, any float dtype, or ``None`` = 0); ``grad_state`` a
tuple of ``dL/dstate[T-1]`` (``[N]`` or ``None`` = 0 each). ``need_gstate`` and
``need_gparams`` are tuples of bools; a backend returns ``None`` where one is false. The
compute dtype is float64 for float64 input, float32 otherwise. Per kind:

=========  ==========  =====================  ==========================================
kind       state       params                 tensor params (CPU and Triton, today)
=========  ==========  =====================  ==========================================
``if``     ``(v,)``    ``()``
``lif``    ``(v,)``    ``(k,)``               ``k`` (PLIF's ``sigmoid(w)``)
``alif``   ``(v, a)``  ``(k, rho, beta)``
``cubalif`` ``(i, v)`` ``(k_syn, k_mem)``
=========  ==========  =====================  ==========================================

:func:`make_function` wraps a ``(forward, backward)`` pair into an autograd Function
whose gradients follow the equations of :mod:`spikeforge.ops.spec`; it saves only the
inputs (the backward recomputes the state), and :func:`legacy_single_state` adapts a
backend that still has the older one-state signature ``forward(x2d, v0, k, spec,
need_v)`` / ``backward(x2d, v0, k, spec, grad_s, grad_v, need_gx, need_gv0, need_gk)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def make_function(name: str, forward: Callable, backward: Callable) -> type:
    """Build ``torch.autograd.Function`` subclass ``name`` over a backend's raw kernels.

    ``apply(spec, need_state, n_state, x2d, *state0, *params)`` (``state0`` entries
    tensors or ``None``; ``params`` floats or tensors) returns ``(S [T, N] in x's dtype,
    *final_state)``, each final state ``[N]`` in the compute dtype or ``None`` when not
    ``need_state``. It back-propagates to ``x2d``, every state0 tensor and every tensor
    param: the gradients of the neuron recurrence with the surrogate derivative in
    place of the Heaviside's. Only the inputs are saved; the backward recomputes the
    state.
    """

    def fwd(ctx, spec, need_state, n_state, x2d, *rest):
        state0, params = tuple(rest[:n_state]), tuple(rest[n_state:])
        s, final = forward(x2d, state0, params, spec, need_state)
        # Save tensors through save_for_backward (autograd checks them for in-place
        # changes); remember where the Nones and the float params were.
        inputs = (x2d,) + state0 + params
        is_tensor = tuple(isinstance(t, torch.Tensor) for t in inputs)
        ctx.save_for_backward(*(t for t, ok in zip(inputs, is_tensor) if ok))
        ctx.others = tuple(None if ok else t for t, ok in zip(inputs, is_tensor))
        ctx.is_tensor = is_tensor
        ctx.spec, ctx.n_state = spec, n_state
        ctx.set_materialize_grads(False)
        if final is None:
            final = (None,) * n_state
        return (s, *final)

    def bwd(ctx, grad_s, *grad_state):
        n_state = ctx.n_state
        saved = iter(ctx.saved_tensors)
        inputs = [next(saved) if ok else other for ok, other in zip(ctx.is_tensor, ctx.others)]
        x2d, state0, params = inputs[0], tuple(inputs[1:1 + n_state]), tuple(inputs[1 + n_state:])
        n_none = 3 + 1 + len(state0) + len(params)
        if grad_s is None and all(g is None for g in grad_state):
            return (None,) * n_none
        needs = ctx.needs_input_grad[3:]
        need_gstate = tuple(bool(n) and s is not None for n, s in zip(needs[1:], state0))
        need_gparams = tuple(
            bool(n) and isinstance(p, torch.Tensor) for n, p in zip(needs[1 + n_state:], params)
        )
        gx, gstate, gparams = backward(
            x2d, state0, params, ctx.spec, grad_s, tuple(grad_state),
            need_gx=bool(needs[0]), need_gstate=need_gstate, need_gparams=need_gparams,
        )
        gstate = tuple(
            None if g is None or not need else g.to(s.dtype).reshape(s.shape)
            for g, s, need in zip(gstate, state0, need_gstate)
        )
        gparams = tuple(
            None if g is None or not need else g.to(p.dtype).reshape(p.shape)
            for g, p, need in zip(gparams, params, need_gparams)
        )
        return (None, None, None, gx, *gstate, *gparams)

    return type(
        name,
        (torch.autograd.Function,),
        {
            "forward": staticmethod(fwd),
            "backward": staticmethod(bwd),
            "__doc__": f"Fused multi-step neuron ({name}); see make_function.",
        },
    )


def rest_tensor(spec, n: int, dtype: torch.dtype, device) -> torch.Tensor | None:
    """``V``'s rest value as an ``[n]`` tensor, or ``None`` when it is 0 (a backend whose
    missing ``v0`` means zeros then needs nothing)."""
    v_rest = spec.v_rest
    if v_rest == 0.0:
        return None
    return torch.full((n,), v_rest, dtype=dtype, device=device)


def legacy_single_state(forward: Callable, backward: Callable) -> tuple[Callable, Callable]:
    """Adapt a one-state backend with the older signatures ``forward(x2d, v0, k, spec,
    need_v)`` and ``backward(x2d, v0, k, spec, grad_s, grad_v, need_gx, need_gv0,
    need_gk)`` (``v0=None`` meaning zeros, ``k`` = 1 for IF) to the raw entry points
    described in the module docstring (kinds ``"if"`` and ``"lif"``)."""

    def _unpack(x2d, state0, params, spec):
        v0 = state0[0]
        if v0 is None:
            cdt = torch.float64 if x2d.dtype == torch.float64 else torch.float32
            v0 = rest_tensor(spec, x2d.shape[1], cdt, x2d.device)
        return v0, (params[0] if params else 1.0)

    def fwd(x2d, state0, params, spec, need_state=True):
        v0, k = _unpack(x2d, state0, params, spec)
        s, v = forward(x2d, v0, k, spec, need_state)
        return s, (None if v is None else (v,))

    def bwd(x2d, state0, params, spec, grad_s, grad_state, need_gx=True,
            need_gstate=(True,), need_gparams=(True,)):
        v0, k = _unpack(x2d, state0, params, spec)
        gx, gv0, gk = backward(
            x2d, v0, k, spec, grad_s, grad_state[0] if grad_state else None,
            need_gx=need_gx,
            need_gv0=bool(need_gstate[0]) and state0[0] is not None,
            need_gk=bool(params) and bool(need_gparams[0]),
        )
        return gx, (gv0 if state0[0] is not None else None,), ((gk,) if params else ())

    return fwd, bwd
