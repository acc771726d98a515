"""Encoders from static inputs to time-first spike or current trains ``[T, B, ...]``.

All stochastic encoders take a ``torch.Generator`` (or a seed) so that a run is
reproducible.
"""

from __future__ import annotations

import torch


def _generator(generator: torch.Generator | int | None, device) -> torch.Generator | None:
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    g = torch.Generator(device=device)
    g.manual_seed(int(generator))
    return g


def _check_steps(time_steps: int) -> None:
    if not isinstance(time_steps, int) or time_steps < 1:
        raise ValueError(f"time_steps must be a positive int, got {time_steps!r}")


def direct_encode(x: torch.Tensor, time_steps: int) -> torch.Tensor:
    """Direct (analog) encoding: ``X[t] = x`` for every ``t`` (Rathi & Roy, 2020).

    Returns an expanded view ``[T, *x.shape]`` (no copy).
    """
    _check_steps(time_steps)
    return x.unsqueeze(0).expand(time_steps, *x.shape)


def rate_encode(
    x: torch.Tensor,
    time_steps: int,
    generator: torch.Generator | int | None = None,
    gain: float = 1.0,
) -> torch.Tensor:
    """Bernoulli rate encoding: ``S[t] ~ Bernoulli(clamp(gain * x, 0, 1))`` i.i.d. over ``t``.

    ``x`` holds intensities in ``[0, 1]``; the expected spike count over ``T``
    steps is ``T * gain * x`` (Poisson-like rate code, Diehl & Cook 2015).
    """
    _check_steps(time_steps)
    p = (gain * x).clamp(0, 1).unsqueeze(0).expand(time_steps, *x.shape)
    g = _generator(generator, x.device)
    return torch.bernoulli(p, generator=g).to(x.dtype)


def poisson_encode(
    x: torch.Tensor,
    time_steps: int,
    generator: torch.Generator | int | None = None,
    max_rate: float = 1.0,
) -> torch.Tensor:
    """Poisson encoding with spike probability ``1 - exp(-max_rate * x)`` per step.

    For a Poisson process of rate ``max_rate * x`` spikes per step, this is the
    probability of at least one event in a step (counts above 1 are clipped).
    """
    _check_steps(time_steps)
    p = 1 - torch.exp(-max_rate * x.clamp(min=0))
    p = p.unsqueeze(0).expand(time_steps, *x.shape)
    return torch.bernoulli(p, generator=_generator(generator, x.device)).to(x.dtype)
