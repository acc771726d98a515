"""Per-step arithmetic every Triton neuron kernel shares: charge, fire, reset, and the
surrogate derivative, written once for all kinds.

The functions are plain Python over Triton values; :mod:`spikeforge.ops.triton.jit`
jits them (or hands them to Triton's interpreter) together with the kernels, which call
them by name. Option switches are ``tl.constexpr`` and are compared with the named
constants below (the values of :class:`spikeforge.ops.spec.Reset` and
:class:`spikeforge.ops.spec.Surrogate`), never with bare positions, so a kernel compiled
for one option holds only that option's code. Every formula keeps the reference's
operation order (the kernels are compiled without FMA contraction) so that spikes and
states equal :mod:`spikeforge.functional` bit for bit::

    H = V + k (X - (V - V_rest))     decay_input        H = V - k (V - V_rest) + X   otherwise
    H = V + X                        IF
    S = H - theta >= 0               (> 0 with fire_strict)
    V' = H (1 - S) + V_reset S  |  H - theta S  |  H        hard | soft | none reset
"""

from __future__ import annotations

import triton.language as tl

from spikeforge.ops.spec import Reset, SurrogateId
from spikeforge.ops.triton.surrogates import (
    FORMULAS,
    atan_grad,
    fast_sigmoid_grad,
    rectangle_grad,
    sigmoid_grad,
    triangle_grad,
)

# named option values as Triton compile-time constants (the kernels compare against these)
HARD = tl.constexpr(int(Reset.HARD))
SOFT = tl.constexpr(int(Reset.SOFT))
NO_RESET = tl.constexpr(int(Reset.NONE))
SIGMOID = tl.constexpr(int(SurrogateId.SIGMOID))
ATAN = tl.constexpr(int(SurrogateId.ATAN))
FAST_SIGMOID = tl.constexpr(int(SurrogateId.FAST_SIGMOID))
RECTANGLE = tl.constexpr(int(SurrogateId.RECTANGLE))
TRIANGLE = tl.constexpr(int(SurrogateId.TRIANGLE))


def charge(v, x, k, vrest, LEAK: tl.constexpr, DECAY: tl.constexpr):
    """``H[t]`` from ``V[t-1]`` and the input ``x``: ``V + x`` without ``LEAK`` (IF), else
    ``V + k (x - (V - V_rest))`` (``DECAY``, decay_input) or ``V - k (V - V_rest) + x``."""
    if not LEAK:
        h = v + x
    elif DECAY:
        h = v + k * (x - (v - vrest))
    else:
        h = v - k * (v - vrest) + x
    return h


def fire(z, STRICT: tl.constexpr):
    """The spike of ``z = H - theta`` as 0/1 in ``z``'s dtype: ``z >= 0``, or ``z > 0``
    with ``STRICT`` (fire_strict: snnTorch's and Norse's tie rule)."""
    if STRICT:
        s = tl.where(z > 0.0, 1.0, 0.0).to(z.dtype)
    else:
        s = tl.where(z >= 0.0, 1.0, 0.0).to(z.dtype)
    return s


def reset(h, s, theta, vreset, RESET: tl.constexpr):
    """``V[t]`` from ``H[t]``, the spike ``s`` and the threshold ``theta``:
    ``H (1 - S) + V_reset S`` (hard), ``H - theta S`` (soft), ``H`` (none)."""
    if RESET == HARD:
        v = h * (1.0 - s) + vreset * s
    elif RESET == SOFT:
        v = h - theta * s
    else:
        v = h
    return v


# The primitives the surrogate formulas (spikeforge.ops.triton.surrogates) call,
# bound to Triton's. They call tl.* through the module (not a captured reference) so that
# Triton's interpreter, which patches triton.language, sees them too.
def exp(x):
    """``exp`` for the surrogate formulas."""
    return tl.exp(x)


def fabs(x):
    """``|x|`` for the surrogate formulas."""
    return tl.abs(x)


def select(cond, a, b):
    """``a`` where ``cond`` else ``b``, for the surrogate formulas."""
    return tl.where(cond, a, b)


def fmax(a, b):
    """Elementwise maximum, for the surrogate formulas."""
    return tl.maximum(a, b)


def surrogate_grad(z, alpha, c1, c2, inv_alpha, SURR: tl.constexpr):
    """The surrogate derivative ``g'(z)`` named by ``SURR`` (formulas in
    :mod:`spikeforge.ops.triton.surrogates`, with ``c1 = pi/2 alpha``, ``c2 = alpha/2``,
    ``inv_alpha = 1/alpha`` precomputed on the host)."""
    if SURR == SIGMOID:
        sg = sigmoid_grad(z, alpha, c1, c2, inv_alpha)
    elif SURR == ATAN:
        sg = atan_grad(z, alpha, c1, c2, inv_alpha)
    elif SURR == FAST_SIGMOID:
        sg = fast_sigmoid_grad(z, alpha, c1, c2, inv_alpha)
    elif SURR == RECTANGLE:
        sg = rectangle_grad(z, alpha, c1, c2, inv_alpha)
    else:
        sg = triangle_grad(z, alpha, c1, c2, inv_alpha)
    return sg


def reset_grads(h, s, sg, theta, vreset, RESET: tl.constexpr, DETACH: tl.constexpr):
    """``(dV'/dH, dV'/dtheta)`` of :func:`reset` with the spike's surrogate slope ``sg``
    (``dS/dH = sg``, ``dS/dtheta = -sg``; ``DETACH``: the spike in the reset is a
    constant)::

        hard  dV'/dH = (1 - S) + (V_reset - H) sg    dV'/dtheta = -(V_reset - H) sg
        soft  dV'/dH = 1 - theta sg                  dV'/dtheta = -S + theta sg
        none  dV'/dH = 1                             dV'/dtheta = 0

    (without the ``sg`` terms when ``DETACH``)."""
    if RESET == HARD:
        if DETACH:
            dh = 1.0 - s
            dth = s * 0.0
        else:
            dh = (1.0 - s) + (vreset - h) * sg
            dth = -(vreset - h) * sg
    elif RESET == SOFT:
        if DETACH:
            dh = s * 0.0 + 1.0
            dth = -s
        else:
            dh = 1.0 - theta * sg
            dth = theta * sg - s
    else:
        dh = s * 0.0 + 1.0
        dth = s * 0.0
    return dh, dth


def fire_reset(h, theta, vreset, STRICT: tl.constexpr, RESET: tl.constexpr):
    """``(S[t], V[t])`` from ``H[t]`` and the threshold ``theta``: :func:`fire` of
    ``H - theta``, then :func:`reset`."""
    s = fire(h - theta, STRICT)
    return s, reset(h, s, theta, vreset, RESET)


# The prologue every kernel shares: its block of neurons, the spec's parameters (the
# layout of spikeforge.ops.triton.jit.spec_params) and the initial state or gradient.
def block_offsets(N, BLOCK: tl.constexpr):
    """This program's block of neurons: offsets ``pid BLOCK + [0, BLOCK)`` (64-bit, as
    ``t N + offs`` may pass 2^31) and the mask of those ``< N``."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    return offs, offs < N


def spec_values(p_ptr):
    """``(V_th, V_reset, V_rest)``: entries 0-2 of the spec parameters."""
    return tl.load(p_ptr + 0), tl.load(p_ptr + 1), tl.load(p_ptr + 2)


def surrogate_values(p_ptr):
    """``(alpha, c1, c2, inv_alpha)`` of :func:`surrogate_grad`: entries 3-6 of the spec
    parameters."""
    return tl.load(p_ptr + 3), tl.load(p_ptr + 4), tl.load(p_ptr + 5), tl.load(p_ptr + 6)


def load_or(ptr, offs, mask, default, HAS: tl.constexpr):
    """``ptr[offs]`` in ``default``'s dtype when ``HAS`` (the caller gave that initial
    state or final-state gradient), else ``default`` (its rest value, or zero)."""
    if HAS:
        out = tl.load(ptr + offs, mask=mask, other=0.0).to(default.dtype)
    else:
        out = default
    return out


HELPERS = (exp, fabs, select, fmax, *FORMULAS.values(), charge, fire, reset, fire_reset,
           surrogate_grad, reset_grads, block_offsets, spec_values, surrogate_values, load_or)
