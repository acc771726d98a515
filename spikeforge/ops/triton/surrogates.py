"""The surrogate derivatives of the Triton kernels: the one place they define each formula,
tested against :mod:`spikeforge.functional.surrogate` (``tests/test_ops_triton_kinds.py``).
The CPU kernels have theirs in :mod:`spikeforge.ops.cpu.surrogates` (numba-specific: a
vectorisable ``exp``).

The formulas are plain scalar Python over four primitives: ``exp``, ``fabs``,
``select(cond, a, b)`` (``a`` where ``cond``, else ``b``) and ``fmax``.
:mod:`spikeforge.ops.triton.arith` binds them to ``tl.exp``, ``tl.abs``, ``tl.where`` and
``tl.maximum`` when the kernels are jitted; the definitions below are for Python floats,
so the same source can be checked on the host.

Arguments: ``z = H - theta``; ``alpha`` the surrogate's parameter and, precomputed on the
host, ``c1 = pi/2 alpha``, ``c2 = alpha/2``, ``inv_alpha = 1/alpha``.
"""

from __future__ import annotations

import math

from spikeforge.ops.spec import SurrogateId


def exp(x):
    """Placeholder primitive (Python floats); backends bind their own."""
    return math.exp(x)


def fabs(x):
    """Placeholder primitive (Python floats); backends bind their own."""
    return abs(x)


def select(cond, a, b):
    """Placeholder primitive (Python floats): ``a`` where ``cond`` else ``b``."""
    return a if cond else b


def fmax(a, b):
    """Placeholder primitive (Python floats); backends bind their own."""
    return max(a, b)


def sigmoid_grad(z, alpha, c1, c2, inv_alpha):
    """``alpha sig(alpha z) (1 - sig(alpha z))`` (SpikingJelly's sigmoid surrogate)."""
    sig = 1.0 / (1.0 + exp(-alpha * z))
    return alpha * sig * (1.0 - sig)


def atan_grad(z, alpha, c1, c2, inv_alpha):
    """``(alpha/2) / (1 + (pi/2 alpha z)^2)`` (Fang et al., ICCV 2021)."""
    u = c1 * z
    return c2 / (1.0 + u * u)


def fast_sigmoid_grad(z, alpha, c1, c2, inv_alpha):
    """``1 / (1 + alpha |z|)^2`` (SuperSpike, Zenke & Ganguli 2018)."""
    d = 1.0 + alpha * fabs(z)
    return 1.0 / (d * d)


def rectangle_grad(z, alpha, c1, c2, inv_alpha):
    """``1/alpha`` where ``|z| < alpha/2``, else 0 (Wu et al., STBP 2018)."""
    return select(fabs(z) < c2, inv_alpha, 0.0 * z)


def triangle_grad(z, alpha, c1, c2, inv_alpha):
    """``max(1 - |z|/alpha, 0) / alpha`` (Bellec et al., 2018)."""
    return fmax(1.0 - fabs(z) / alpha, 0.0) / alpha


FORMULAS = {
    SurrogateId.SIGMOID: sigmoid_grad,
    SurrogateId.ATAN: atan_grad,
    SurrogateId.FAST_SIGMOID: fast_sigmoid_grad,
    SurrogateId.RECTANGLE: rectangle_grad,
    SurrogateId.TRIANGLE: triangle_grad,
}
PRIMITIVES = ("exp", "fabs", "select", "fmax")


def constants(alpha: float) -> tuple[float, float, float, float]:
    """``(alpha, c1, c2, inv_alpha)``: the arguments after ``z``, computed on the host."""
    return alpha, math.pi / 2 * alpha, alpha / 2, 1 / alpha
