"""Encoder modules: thin shells over :mod:`spikeforge.functional.encoding`.

Each holds only its parameters and maps an input to a time-first train
``[T, *x.shape]`` (or ``[T, *x.shape, N]`` for the population code). The
stochastic ones take an optional ``generator`` in ``forward``; without one
they draw from a private generator seeded at construction (``seed``), so a
freshly built encoder always produces the same sequence of spike trains.
"""

from __future__ import annotations

import torch
from torch import nn

from spikeforge.functional import encoding as F


class _Seeded(nn.Module):
    def __init__(self, seed: int | None) -> None:
        super().__init__()
        self.seed = seed
        self._gen: torch.Generator | None = None

    def _generator(self, generator: torch.Generator | None, device) -> torch.Generator | None:
        if generator is not None or self.seed is None:
            return generator
        if self._gen is None or self._gen.device != torch.device(device):
            self._gen = torch.Generator(device=device)
            self._gen.manual_seed(int(self.seed))
        return self._gen


class DirectEncoder(nn.Module):
    """``X[t] = x`` for ``t < T`` (:func:`~spikeforge.functional.encoding.direct_encode`)."""

    def __init__(self, time_steps: int) -> None:
        super().__init__()
        F._check_steps(time_steps)
        self.time_steps = time_steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.direct_encode(x, self.time_steps)

    def extra_repr(self) -> str:
        return f"time_steps={self.time_steps}"


class RateEncoder(_Seeded):
    """``S[t] ~ Bernoulli(clamp(gain * x, 0, 1))`` i.i.d. over ``t``
    (:func:`~spikeforge.functional.encoding.rate_encode`)."""

    def __init__(self, time_steps: int, gain: float = 1.0, seed: int | None = None) -> None:
        super().__init__(seed)
        F._check_steps(time_steps)
        self.time_steps, self.gain = time_steps, gain

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        g = self._generator(generator, x.device)
        return F.rate_encode(x, self.time_steps, g, self.gain)

    def extra_repr(self) -> str:
        return f"time_steps={self.time_steps}, gain={self.gain}, seed={self.seed}"


class PoissonEncoder(_Seeded):
    """``S[t] ~ Bernoulli(1 - exp(-max_rate * x))``
    (:func:`~spikeforge.functional.encoding.poisson_encode`)."""

    def __init__(self, time_steps: int, max_rate: float = 1.0, seed: int | None = None) -> None:
        super().__init__(seed)
        F._check_steps(time_steps)
        self.time_steps, self.max_rate = time_steps, max_rate

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        g = self._generator(generator, x.device)
        return F.poisson_encode(x, self.time_steps, g, self.max_rate)

    def extra_repr(self) -> str:
        return f"time_steps={self.time_steps}, max_rate={self.max_rate}, seed={self.seed}"


class LatencyEncoder(nn.Module):
    """One spike per input at ``t* = round((T-1)(1 - x))`` (``linear``) or
    ``round((T-1) ln x / ln threshold)`` (``log``)
    (:func:`~spikeforge.functional.encoding.latency_encode`)."""

    def __init__(
        self, time_steps: int, method: str = "linear", threshold: float | None = None
    ) -> None:
        super().__init__()
        F._check_steps(time_steps)
        if method not in ("linear", "log"):
            raise ValueError(f"LatencyEncoder: method must be 'linear' or 'log', got {method!r}")
        self.time_steps, self.method, self.threshold = time_steps, method, threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.latency_encode(x, self.time_steps, self.method, self.threshold)

    def extra_repr(self) -> str:
        return f"time_steps={self.time_steps}, method={self.method!r}, threshold={self.threshold}"


class DeltaEncoder(nn.Module):
    """ON/OFF events of a time-first signal ``[T, ...]``: finite differences
    (``tracking=False``, :func:`~spikeforge.functional.encoding.delta_encode`)
    or a tracking reference moved by ``threshold`` per event (``tracking=True``,
    :func:`~spikeforge.functional.encoding.delta_modulation_encode`)."""

    def __init__(self, threshold: float = 0.1, off_spike: bool = True, tracking: bool = False):
        super().__init__()
        F._check_threshold(threshold)
        self.threshold, self.off_spike, self.tracking = threshold, off_spike, tracking

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tracking:
            return F.delta_modulation_encode(x, self.threshold, self.off_spike)
        return F.delta_encode(x, self.threshold, self.off_spike)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, off_spike={self.off_spike}, tracking={self.tracking}"


class PopulationEncoder(_Seeded):
    """Gaussian receptive fields over ``n_neurons`` per value, then spikes
    (:func:`~spikeforge.functional.encoding.population_encode`): ``[T, ..., N]``."""

    def __init__(
        self,
        n_neurons: int,
        time_steps: int,
        x_min: float = 0.0,
        x_max: float = 1.0,
        beta: float = 1.5,
        method: str = "rate",
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        F._check_steps(time_steps)
        if method not in ("rate", "latency", "direct"):
            raise ValueError(
                f"PopulationEncoder: method must be 'rate', 'latency' or 'direct', got {method!r}"
            )
        self.n_neurons, self.time_steps = n_neurons, time_steps
        self.x_min, self.x_max, self.beta, self.method = x_min, x_max, beta, method
        F.gaussian_receptive_fields(torch.zeros(1), n_neurons, x_min, x_max, beta)  # validate

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        g = self._generator(generator, x.device) if self.method == "rate" else None
        return F.population_encode(
            x,
            self.n_neurons,
            self.time_steps,
            self.x_min,
            self.x_max,
            self.beta,
            self.method,
            g,
        )

    def extra_repr(self) -> str:
        return (
            f"n_neurons={self.n_neurons}, time_steps={self.time_steps}, "
            f"range=({self.x_min}, {self.x_max}), beta={self.beta}, method={self.method!r}"
        )
