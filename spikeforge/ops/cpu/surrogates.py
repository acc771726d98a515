"""The surrogate derivatives ``g'(z)`` of the CPU kernels: the one place the kernels
define each formula, tested against :mod:`spikeforge.functional.surrogate`
(``tests/test_ops_cpu.py``). Every constant comes from the parameter vector in the
compute dtype (``c1 = pi/2 alpha``, ``c2 = alpha/2``, ``inv_alpha = 1/alpha``), so
float32 arithmetic is never widened by a float64 literal.

==============  ============================================  ==========================
surrogate       ``g'(z)``                                      paper
==============  ============================================  ==========================
sigmoid         ``alpha sig(alpha z) (1 - sig(alpha z))``      SpikingJelly (Fang 2021)
atan            ``alpha/2 / (1 + (pi/2 alpha z)^2)``           Fang et al., ICCV 2021
fast_sigmoid    ``1 / (1 + alpha |z|)^2``                      Zenke & Ganguli, 2018
rectangle       ``1/alpha`` if ``|z| < alpha/2`` else 0        Wu et al., 2018
triangle        ``max(0, 1 - |z|/alpha) / alpha``              Bellec et al., 2018
==============  ============================================  ==========================
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from spikeforge.ops.cpu.intrinsics import _bits_from_f32, _f32_from_bits
from spikeforge.ops.cpu.layout import INLINE
from spikeforge.ops.spec import SurrogateId

SIGMOID = int(SurrogateId.SIGMOID)
ATAN = int(SurrogateId.ATAN)
FAST_SIGMOID = int(SurrogateId.FAST_SIGMOID)
RECTANGLE = int(SurrogateId.RECTANGLE)
TRIANGLE = int(SurrogateId.TRIANGLE)



def _vexp(x):
    """``exp(x)`` in the compute dtype (stub; compiled by the overload below)."""
    raise NotImplementedError


@overload(_vexp, inline="always")
def _vexp_impl(x):
    """float32: a vectorisable ``exp`` (numba's ``np.exp`` is a libm call per element, which
    kept the sigmoid surrogate's gradient loop scalar: 2.2 ns per element against 0.1 for
    the other surrogates). Cephes' ``expf``: ``n = round(x log2 e)``, ``r = x - n ln 2`` in
    two parts, ``exp(r) = 1 + r + r^2 P(r)`` with ``P`` of degree 5, and ``2^n`` added to
    the exponent bits; ``x`` is clamped to [-87, 87] (so ``2^n`` stays a normal float;
    ``exp(87)`` is 6e37, and the sigmoid it feeds is then within 1e-38 of its limit).
    Relative error below 1e-7 (8e-8 measured over [-87, 87]).
    float64: ``np.exp``."""
    if x == types.float32:

        def exp32(x):
            x = min(max(x, np.float32(-87.0)), np.float32(87.0))
            n = np.floor(x * np.float32(1.44269504088896341) + np.float32(0.5))
            r = x - n * np.float32(0.693359375) - n * np.float32(-2.12194440e-4)
            q = np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)
            q = q * r + np.float32(8.3334519073e-3)
            q = q * r + np.float32(4.1665795894e-2)
            q = q * r + np.float32(1.6666665459e-1)
            q = q * r + np.float32(5.0000001201e-1)
            y = q * (r * r) + r + np.float32(1.0)
            shift = np.uint32(np.int32(n) << np.int32(23))
            return _f32_from_bits(_bits_from_f32(y) + shift)

        return exp32

    def exp64(x):
        return np.exp(x)

    return exp64



@njit(**INLINE)
def sigmoid_grad(z, alpha, one):
    """``alpha sig(alpha z) (1 - sig(alpha z))``."""
    sig = one / (one + _vexp(-alpha * z))
    return alpha * sig * (one - sig)


@njit(**INLINE)
def atan_grad(z, c1, c2, one):
    """``c2 / (1 + (c1 z)^2)`` with ``c1 = pi/2 alpha``, ``c2 = alpha/2``."""
    u = c1 * z
    return c2 / (one + u * u)


@njit(**INLINE)
def fast_sigmoid_grad(z, alpha, one):
    """``1 / (1 + alpha |z|)^2``."""
    d = one + alpha * abs(z)
    return one / (d * d)


@njit(**INLINE)
def rectangle_grad(z, c2, inv_alpha, zero):
    """``1/alpha`` where ``|z| < alpha/2`` (``c2``), else 0."""
    return inv_alpha if abs(z) < c2 else zero


@njit(**INLINE)
def triangle_grad(z, alpha, one, zero):
    """``max(0, 1 - |z|/alpha) / alpha``."""
    r = one - abs(z) / alpha
    return (r if r > zero else zero) / alpha


@njit(**INLINE)
def surrogate_grad(z, surr, alpha, c1, c2, one, zero, inv_alpha):
    """``g'(z)`` of surrogate ``surr`` (a :class:`~spikeforge.ops.spec.SurrogateId` code;
    a compile-time constant in every row function, so only its formula is compiled)."""
    if surr == SIGMOID:
        return sigmoid_grad(z, alpha, one)
    if surr == ATAN:
        return atan_grad(z, c1, c2, one)
    if surr == FAST_SIGMOID:
        return fast_sigmoid_grad(z, alpha, one)
    if surr == RECTANGLE:
        return rectangle_grad(z, c2, inv_alpha, zero)
    return triangle_grad(z, alpha, one, zero)
