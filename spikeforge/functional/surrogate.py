"""Surrogate gradients: the Heaviside spike in forward, a smooth derivative in backward.

Each surrogate is defined once here: its smooth primal ``g(x)`` (whose
derivative replaces the Dirac delta of the step), its derivative ``g'(x)`` and
its width/sharpness parameter ``alpha``. The fused kernels in
:mod:`spikeforge.ops` implement the same ``g'`` per backend and are tested
against :meth:`Surrogate.grad`.

Forward: ``S = Heaviside(x) = 1 if x >= 0 else 0`` (SpikingJelly's tie rule), or, with
``strict=True`` (:meth:`Surrogate.spike`), ``1 if x > 0 else 0`` (snnTorch's and Norse's).
The backward is the same for both.
"""

from __future__ import annotations

import math

import torch

from spikeforge.ops.spec import SURROGATE_NAMES


class _SpikeFunction(torch.autograd.Function):
    """Heaviside forward, ``grad_out * g'(x)`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate, strict: bool = False) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return ((x > 0) if strict else (x >= 0)).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(x), None, None


class Surrogate:
    """Base class: a spike function with a surrogate gradient.

    Subclasses set ``name`` and implement :meth:`primal` (the smooth function
    ``g``) and :meth:`grad` (its derivative ``g'``). Calling the object on a
    tensor returns ``Heaviside(x)`` whose gradient is ``g'(x)``.
    """

    name: str = ""
    default_alpha: float = 1.0

    def __init__(self, alpha: float | None = None) -> None:
        alpha = self.default_alpha if alpha is None else float(alpha)
        if not math.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"{type(self).__name__}: alpha must be a positive number, got {alpha}")
        self.alpha = alpha

    def primal(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """The smooth function ``g`` whose derivative is the surrogate."""
        raise NotImplementedError

    def grad(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """The surrogate derivative ``g'(x)`` used in place of the Dirac delta."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _SpikeFunction.apply(x, self, False)

    def spike(self, x: torch.Tensor, strict: bool = False) -> torch.Tensor:
        """``Heaviside(x)`` with this surrogate's gradient; ``strict`` fires at ``x > 0``
        instead of ``x >= 0`` (the tie rule of snnTorch and Norse)."""
        return self(x) if not strict else _SpikeFunction.apply(x, self, True)

    @property
    def fused(self) -> bool:
        """True when the fused kernels in :mod:`spikeforge.ops` implement this surrogate."""
        return self.name in SURROGATE_NAMES and type(self) is SURROGATES.get(self.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.alpha == self.alpha  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self.alpha))


class Sigmoid(Surrogate):
    """``g(x) = sigmoid(alpha x)``, ``g'(x) = alpha sigmoid(alpha x)(1 - sigmoid(alpha x))``.

    The sigmoid surrogate of SpikingJelly (Fang et al., 2021); ``alpha = 4``.
    """

    name = "sigmoid"
    default_alpha = 4.0

    def primal(self, x):
        return torch.sigmoid(self.alpha * x)

    def grad(self, x):
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1 - s)


class ATan(Surrogate):
    """``g(x) = arctan(pi/2 alpha x)/pi + 1/2``, ``g'(x) = alpha / (2 (1 + (pi/2 alpha x)^2))``.

    The arctan surrogate (Fang et al., ICCV 2021); ``alpha = 2``.
    """

    name = "atan"
    default_alpha = 2.0

    def primal(self, x):
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5

    def grad(self, x):
        return self.alpha / 2 / (1 + (math.pi / 2 * self.alpha * x) ** 2)


class FastSigmoid(Surrogate):
    """SuperSpike (Zenke & Ganguli, 2018): ``g(x) = x / (1 + alpha |x|)``,
    ``g'(x) = 1 / (1 + alpha |x|)^2``; ``alpha = 10``."""

    name = "fast_sigmoid"
    default_alpha = 10.0

    def primal(self, x):
        return x / (1 + self.alpha * x.abs())

    def grad(self, x):
        return 1 / (1 + self.alpha * x.abs()) ** 2


class Rectangle(Surrogate):
    """Rectangular window (Wu et al., STBP 2018): ``g'(x) = 1/alpha`` for ``|x| < alpha/2``,
    else 0; ``g(x) = clamp(x/alpha + 1/2, 0, 1)``; width ``alpha = 1``."""

    name = "rectangle"
    default_alpha = 1.0

    def primal(self, x):
        return (x / self.alpha + 0.5).clamp(0, 1)

    def grad(self, x):
        return (x.abs() < self.alpha / 2).to(x.dtype) / self.alpha


class Triangle(Surrogate):
    """Triangle (Bellec et al., 2018): ``g'(x) = max(0, 1 - |x|/alpha) / alpha``;
    ``g`` is the matching piecewise-quadratic ramp from 0 to 1; half-width ``alpha = 1``."""

    name = "triangle"
    default_alpha = 1.0

    def primal(self, x):
        u = (x / self.alpha).clamp(-1, 1)
        return torch.where(u < 0, 0.5 * (1 + u) ** 2, 1 - 0.5 * (1 - u) ** 2)

    def grad(self, x):
        return (1 - x.abs() / self.alpha).clamp(min=0) / self.alpha


SURROGATES: dict[str, type[Surrogate]] = {
    cls.name: cls for cls in (Sigmoid, ATan, FastSigmoid, Rectangle, Triangle)
}
assert tuple(SURROGATES) == SURROGATE_NAMES, "functional and ops disagree on surrogate names"


def get_surrogate(surrogate: str | Surrogate, alpha: float | None = None) -> Surrogate:
    """Return a :class:`Surrogate` from a name (``"atan"``, ...) or pass an instance through."""
    if isinstance(surrogate, Surrogate):
        if alpha is not None:
            raise ValueError("pass alpha either in the surrogate object or as alpha, not both")
        return surrogate
    if not isinstance(surrogate, str) or surrogate not in SURROGATES:
        raise ValueError(
            f"unknown surrogate {surrogate!r}; choose one of {sorted(SURROGATES)} "
            "or pass a spikeforge.functional.surrogate.Surrogate instance"
        )
    return SURROGATES[surrogate](alpha)


def heaviside(x: torch.Tensor, surrogate: str | Surrogate = "atan") -> torch.Tensor:
    """``Heaviside(x)`` (1 where ``x >= 0``) with the surrogate's gradient."""
    return get_surrogate(surrogate)(x)
