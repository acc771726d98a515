"""The fused neurons as PyTorch custom operators, for ``torch.compile`` and ``torch.export``.

``spikeforge::multistep`` runs a backend's raw forward (:mod:`spikeforge.ops._autograd`
documents the entry points) and ``spikeforge::multistep_backward`` its raw backward;
both are declared with :func:`torch.library.custom_op`, with fake (meta)
implementations that give the output shapes and dtypes without running a kernel, and
the backward is registered as the forward's autograd formula
(:meth:`~torch.library.CustomOpDef.register_autograd`). A traced graph (Dynamo,
``torch.export``, ``torch.jit.trace``) therefore holds one opaque call per neuron layer
instead of tracing into numba or Triton code, which Dynamo cannot follow (the error
this replaces: ``NameError: name 'torch' is not defined`` inside the CPU kernel's
Python driver when a model that had run eagerly was compiled).

Eager calls keep the plain ``torch.autograd.Function`` of :mod:`spikeforge.ops._autograd`:
going through the dispatcher costs about 0.3 ms of host time per call with a gradient
(measured: 34 us for the Function, 330 us for the custom op, torch 2.13 CPU), more than
the CPU kernel's own host work. ``dispatch._tracing`` tells the two apart, and both call the
same raw kernels, so spikes and gradients are the same either way.

The :class:`~spikeforge.ops.spec.NeuronSpec` travels as its fields (strings, floats,
bools: schema types that an exported program stores), float parameters as a float
list, tensor parameters (PLIF's ``k``) and the initial state as tensor lists in which
an empty tensor stands for "none" (the rest state; the float parameter), since
``torch.jit.trace`` takes no ``Tensor?[]``; the op's outputs are ``[spikes,
*final_state]`` (the state only with ``need_state``).
"""

import dataclasses
import functools

import torch

from spikeforge.ops.spec import PARAM_NAMES, STATE_NAMES, NeuronSpec

Tensor = torch.Tensor


@functools.lru_cache(maxsize=256)
def _spec(kind: str, v_threshold: float, v_reset: float, reset: str, detach_reset: bool,
          decay_input: bool, surrogate: str, alpha: float, v_leak: float | None,
          reset_delay: bool, fire_strict: bool, v_min: float | None = None) -> NeuronSpec:
    return NeuronSpec(kind=kind, v_threshold=v_threshold, v_reset=v_reset, reset=reset,
                      detach_reset=detach_reset, decay_input=decay_input, surrogate=surrogate,
                      alpha=alpha, v_leak=v_leak, reset_delay=reset_delay,
                      fire_strict=fire_strict, v_min=v_min)


_SPEC_FIELDS = ("kind", "v_threshold", "v_reset", "reset", "detach_reset", "decay_input",
                "surrogate", "alpha", "v_leak", "reset_delay", "fire_strict", "v_min")
# a field added to NeuronSpec must be added to the operators' schema too
assert tuple(f.name for f in dataclasses.fields(NeuronSpec)) == _SPEC_FIELDS, (
    "spikeforge.ops.custom_op: NeuronSpec's fields changed; update the operator schema")


def _spec_args(spec: NeuronSpec) -> tuple:
    return (spec.kind, float(spec.v_threshold), float(spec.v_reset), spec.reset,
            bool(spec.detach_reset), bool(spec.decay_input), spec.surrogate, float(spec.alpha),
            None if spec.v_leak is None else float(spec.v_leak), bool(spec.reset_delay),
            bool(spec.fire_strict), None if spec.v_min is None else float(spec.v_min))


def _entry_points(backend: str):
    from spikeforge.ops import dispatch

    return dispatch._entry_points(backend)


def _present(ts) -> list:
    """A list input of the forward operator with its empty placeholders (what stands for
    ``None``: ``torch.jit.trace`` takes no ``Tensor?[]``) back to ``None``."""
    return [t if t is not None and t.numel() else None for t in ts]


def _params(tparams, fparams) -> tuple:
    """The params tuple of the raw entry points: the tensor where one was given, else the
    float."""
    return tuple(t if t is not None else f for t, f in zip(_present(tparams), fparams))


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _unaliased(outs: list, inputs: list) -> list:
    """``outs`` with every tensor that shares memory with an input or an earlier output
    copied (an operator's outputs may alias neither; a backend may return views of one
    buffer). Empty placeholders are exempt."""
    seen = {t.untyped_storage().data_ptr() for t in inputs if t is not None and t.numel()}
    res = []
    for t in outs:
        if t.numel():
            ptr = t.untyped_storage().data_ptr()
            if ptr in seen:
                t = t.clone()
                ptr = t.untyped_storage().data_ptr()
            seen.add(ptr)
        res.append(t)
    return res


@torch.library.custom_op("spikeforge::multistep", mutates_args=())
def multistep_op(
    x2d: Tensor, state0: list[Tensor], tparams: list[Tensor],
    fparams: list[float], backend: str, need_state: bool,
    kind: str, v_threshold: float, v_reset: float, reset: str, detach_reset: bool,
    decay_input: bool, surrogate: str, alpha: float, v_leak: float | None,
    reset_delay: bool, fire_strict: bool, v_min: float | None,
) -> list[Tensor]:
    """Fused multi-step neuron forward over contiguous ``x2d`` ``[T, N]``: ``[spikes [T, N]
    in x's dtype, *final_state ([N] each, compute dtype; only with need_state)]``. An empty
    tensor in ``state0`` means that state's rest value; in ``tparams``, that the float in
    ``fparams`` is the parameter."""
    spec = _spec(kind, v_threshold, v_reset, reset, detach_reset, decay_input, surrogate,
                 alpha, v_leak, reset_delay, fire_strict, v_min)
    forward, _ = _entry_points(backend)
    s, final = forward(x2d, tuple(_present(state0)), _params(tparams, fparams), spec,
                       need_state)
    return _unaliased([s, *(final if need_state else ())], [x2d, *state0, *tparams])


@multistep_op.register_fake
def _multistep_fake(x2d, state0, tparams, fparams, backend, need_state, kind, *spec_rest):
    n = x2d.shape[1]
    cdt = _compute_dtype(x2d.dtype)
    states = [x2d.new_empty((n,), dtype=cdt) for _ in STATE_NAMES[kind]] if need_state else []
    return [torch.empty_like(x2d), *states]


@torch.library.custom_op("spikeforge::multistep_backward", mutates_args=())
def multistep_backward_op(
    x2d: Tensor, state0: list[Tensor | None], tparams: list[Tensor | None],
    fparams: list[float], backend: str, grad_s: Tensor | None,
    grad_state: list[Tensor | None], need_gx: bool, need_gstate: list[bool],
    need_gparams: list[bool],
    kind: str, v_threshold: float, v_reset: float, reset: str, detach_reset: bool,
    decay_input: bool, surrogate: str, alpha: float, v_leak: float | None,
    reset_delay: bool, fire_strict: bool, v_min: float | None,
) -> list[Tensor]:
    """Fused multi-step neuron backward: ``[grad_x, *grad_state0, *grad_params]``, each an
    empty ``[0]`` tensor where its ``need_*`` flag is false (operators return no ``None``);
    ``grad_state0`` entries ``[N]`` and ``grad_params`` entries 0-d, in the compute
    dtype."""
    spec = _spec(kind, v_threshold, v_reset, reset, detach_reset, decay_input, surrogate,
                 alpha, v_leak, reset_delay, fire_strict, v_min)
    _, backward = _entry_points(backend)
    gx, gstate, gparams = backward(
        x2d, tuple(state0), _params(tparams, fparams), spec, grad_s, tuple(grad_state),
        need_gx=need_gx, need_gstate=tuple(need_gstate), need_gparams=tuple(need_gparams))
    out = [gx if need_gx and gx is not None else x2d.new_empty((0,))]
    for g, need in zip(list(gstate) + list(gparams), list(need_gstate) + list(need_gparams)):
        if not need:
            out.append(x2d.new_empty((0,)))
        elif g is None:  # asked for but the kernel had nothing to flow back: zeros
            out.append(None)
        else:
            out.append(g)
    cdt = _compute_dtype(x2d.dtype)
    n = x2d.shape[1]
    shapes = [(n,)] * len(need_gstate) + [()] * len(need_gparams)
    for j, g in enumerate(out[1:]):
        if g is None:
            out[1 + j] = torch.zeros(shapes[j], dtype=cdt, device=x2d.device)
    return _unaliased(out, [x2d, *state0, *tparams, grad_s, *grad_state])


@multistep_backward_op.register_fake
def _multistep_backward_fake(x2d, state0, tparams, fparams, backend, grad_s, grad_state,
                             need_gx, need_gstate, need_gparams, *spec_args):
    n = x2d.shape[1]
    cdt = _compute_dtype(x2d.dtype)
    out = [torch.empty_like(x2d) if need_gx else x2d.new_empty((0,))]
    out += [x2d.new_empty((n,) if need else (0,), dtype=cdt if need else x2d.dtype)
            for need in need_gstate]
    out += [x2d.new_empty(() if need else (0,), dtype=cdt if need else x2d.dtype)
            for need in need_gparams]
    return out


def _setup_context(ctx, inputs, output):
    x2d, state0, tparams, fparams, backend, _need_state, *spec_args = inputs
    state0, tparams = _present(state0), _present(tparams)
    ctx.save_for_backward(x2d, *[s for s in state0 if s is not None],
                          *[t for t in tparams if t is not None])
    ctx.state_none = [s is None for s in state0]
    ctx.tparam_none = [t is None for t in tparams]
    ctx.fparams, ctx.backend, ctx.spec_args = list(fparams), backend, list(spec_args)


def _per_entry(need, items: list) -> list[bool]:
    """``needs_input_grad`` of a list input as one bool per entry (torch gives a list for
    a list holding tensors, one bool otherwise)."""
    if isinstance(need, (list, tuple)):
        return [bool(n) and t is not None for n, t in zip(need, items)]
    return [bool(need) and t is not None for t in items]


def _list_grad(grads: list):
    """The gradient of a list input (a list of tensors, placeholders included): a list,
    or ``None`` for an empty one (the structure torch.library expects back)."""
    return grads if grads else None


def _backward(ctx, grads):
    grad_s, *grad_state = grads
    saved = iter(ctx.saved_tensors)
    x2d = next(saved)
    state0 = [None if none else next(saved) for none in ctx.state_none]
    tparams = [None if none else next(saved) for none in ctx.tparam_none]
    needs = ctx.needs_input_grad
    need_gx = bool(needs[0])
    need_gstate = _per_entry(needs[1], state0)
    need_gparams = _per_entry(needs[2], tparams)
    if not grad_state:  # forward without need_state: no state gradient
        grad_state = [None] * len(state0)
    out = multistep_backward_op(x2d, state0, tparams, ctx.fparams, ctx.backend, grad_s,
                                list(grad_state), need_gx, need_gstate, need_gparams,
                                *ctx.spec_args)
    gx = out[0] if need_gx else None
    k = len(state0)
    gstate = [g.to(s.dtype).reshape(s.shape) if need else None
              for g, s, need in zip(out[1:1 + k], state0, need_gstate)]
    gparams = [g.to(t.dtype).reshape(t.shape) if need else None
               for g, t, need in zip(out[1 + k:], tparams, need_gparams)]
    return (gx, _list_grad(gstate), _list_grad(gparams)) + (None,) * (
        3 + len(ctx.spec_args))


multistep_op.register_autograd(_backward, setup_context=_setup_context)


def apply(backend: str, spec: NeuronSpec, need_state: bool, n_state: int, x2d: Tensor,
          *rest):
    """The custom-operator counterpart of ``make_function(...).apply(spec, need_state,
    n_state, x2d, *state0, *params)`` (:mod:`spikeforge.ops._autograd`): returns
    ``(spikes, *final_state)`` with ``None`` for each final state when not
    ``need_state``."""
    empty = x2d.new_empty((0,))
    state0 = [empty if s is None else s for s in rest[:n_state]]
    params = rest[n_state:]
    tparams = [p if isinstance(p, Tensor) else empty for p in params]
    fparams = [0.0 if isinstance(p, Tensor) else float(p) for p in params]
    out = multistep_op(x2d, state0, tparams, fparams, backend, bool(need_state),
                       *_spec_args(spec))
    if need_state:
        return tuple(out)
    return (out[0],) + (None,) * n_state


assert len(PARAM_NAMES) == len(STATE_NAMES)  # every kernel kind has both tables
