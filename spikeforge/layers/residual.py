"""Residual joins of spiking ResNets, over time-first tensors ``[T, B, ...]``.

A join ``g(a, s)`` combines the residual branch's output ``a`` with the
shortcut ``s``. The connect functions of SEW-ResNet (Fang et al., "Deep
Residual Learning in Spiking Neural Networks", NeurIPS 2021, Table 1)::

    ADD:  g(a, s) = a + s
    AND:  g(a, s) = a * s                    (a AND s on spikes)
    IAND: g(a, s) = (1 - a) * s              ((NOT a) AND s on spikes)

the OR residual of SynA-ResNet (Chen et al., "SynA-ResNet: Spike-driven ResNet
achieved through OR Residual Connection", 2023)::

    OR:   g(a, s) = a + s - a * s            (a OR s on spikes, stays binary)

and the membrane shortcut of MS-ResNet (Hu et al., "Advancing Spiking Neural
Networks Towards Deep Residual Learning", TNNLS 2024): the block adds
real-valued membrane inputs, ``x_{l+1} = x_l + F(SN(x_l))``, so the spiking
neuron sits at the start of the branch (:class:`MembraneShortcut`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def sew_add(a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """SEW ADD: ``a + s`` (counts, not spikes: up to 2 per step)."""
    return a + s


def sew_and(a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """SEW AND: ``a * s``."""
    return a * s


def sew_iand(a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """SEW IAND: ``(1 - a) * s``, with ``a`` the residual branch and ``s`` the shortcut.

    The SEW paper defines IAND as ``(NOT A) AND S``. SpikingJelly's
    ``sew_resnet.py`` computes ``identity * (1 - out)`` in its BasicBlock (the
    same) but ``out * (1 - identity)`` in its Bottleneck; we follow the paper in both.
    """
    return (1.0 - a) * s


def or_residual(a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """OR residual of SynA-ResNet: ``a + s - a * s`` (logical OR on binary spikes)."""
    return a + s - a * s


JOINS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "add": sew_add,
    "and": sew_and,
    "iand": sew_iand,
    "or": or_residual,
}
"""Residual joins by name (``model.connect``)."""


class ResidualJoin(nn.Module):
    """``g(a, s)`` of :data:`JOINS` as a module: ``forward(a, s)``, both ``[T, B, ...]``.

    Example::

        >>> ResidualJoin("iand")(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]))
        tensor([0., 1.])
    """

    def __init__(self, kind: str = "add") -> None:
        super().__init__()
        kind = kind.lower()
        if kind not in JOINS:
            raise ValueError(f"unknown residual join {kind!r}; choose one of {', '.join(JOINS)}")
        self.kind = kind
        self.fn = JOINS[kind]

    def forward(self, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if a.shape != s.shape:
            raise ValueError(
                f"residual join {self.kind}: branch {tuple(a.shape)} and shortcut "
                f"{tuple(s.shape)} differ"
            )
        return self.fn(a, s)

    def extra_repr(self) -> str:
        return self.kind


class MembraneShortcut(nn.Module):
    """MS-ResNet's block shape (Hu et al., TNNLS 2024, eq. 9)::

        x_{l+1} = x_l + F(SN(x_l)),     F = the branch (conv-BN, SN, conv-BN, ...)

    ``x`` are membrane inputs (real values, not spikes): the neuron opens the
    branch and the shortcut skips it, so the identity path never passes a
    threshold. ``shortcut`` (e.g. a strided ``SN -> conv1x1 -> BN``) replaces
    the identity where the shape changes. The authors' code
    (``Ariande1/MS-ResNet``) writes the same with the neuron inside the branch;
    the shortcut there too takes the membrane input.

    Shape: ``[T, B, ...]`` -> ``[T, B, ...]`` of ``branch``'s output shape.
    """

    def __init__(self, branch: nn.Module, shortcut: nn.Module | None = None) -> None:
        super().__init__()
        self.branch = branch
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.branch(x)
