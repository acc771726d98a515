"""Encoders from inputs to time-first spike or current trains ``[T, B, ...]``.

- :func:`direct_encode`: the analog input at every step;
- :func:`rate_encode` / :func:`poisson_encode`: Bernoulli / Poisson rate codes;
- :func:`latency_encode`: time-to-first-spike, one spike per input, brighter
  earlier (linear or logarithmic time scale);
- :func:`delta_encode` / :func:`delta_modulation_encode`: ON/OFF events where a
  signal ``[T, ...]`` changes by more than a threshold;
- :func:`gaussian_receptive_fields` / :func:`population_encode`: a value
  spread over ``N`` neurons with Gaussian tuning curves.

All stochastic encoders take a ``torch.Generator`` (or a seed) so that a run is
reproducible; the same seed gives the same spikes.
"""

from __future__ import annotations

import math

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


def _check_threshold(threshold: float, name: str = "threshold") -> None:
    if not isinstance(threshold, (int, float)) or not threshold > 0:
        raise ValueError(f"{name} must be a number > 0, got {threshold!r}")


def latency_times(
    x: torch.Tensor,
    time_steps: int,
    method: str = "linear",
    threshold: float | None = None,
) -> torch.Tensor:
    """Spike step of each input for :func:`latency_encode` (``-1`` = no spike).

    With ``x`` clamped to ``[0, 1]`` and ``T = time_steps``:

    - ``linear``: ``t* = round((T - 1) * (1 - x))`` (``x = 1`` at step 0,
      ``x -> 0`` at step ``T - 1``); inputs with ``x <= threshold`` (default 0)
      do not spike.
    - ``log``: ``t* = round((T - 1) * ln(x) / ln(threshold))`` for
      ``threshold <= x <= 1`` (default ``threshold = 0.01``): equal intensity
      ratios take equal time (``x = 1`` at step 0, ``x = threshold`` at
      ``T - 1``); inputs below ``threshold`` do not spike.

    Rounding is to the nearest step (halves to even, as ``torch.round``).
    """
    _check_steps(time_steps)
    xc = x.clamp(0, 1)
    if method == "linear":
        thr = 0.0 if threshold is None else float(threshold)
        if not 0 <= thr < 1:
            raise ValueError(f"latency_encode: threshold for 'linear' must be in [0, 1), got {thr}")
        t = torch.round((time_steps - 1) * (1 - xc))
        fires = xc > thr
    elif method == "log":
        thr = 0.01 if threshold is None else float(threshold)
        if not 0 < thr < 1:
            raise ValueError(f"latency_encode: threshold for 'log' must be in (0, 1), got {thr}")
        fires = xc >= thr
        ratio = torch.log(xc.double().clamp(min=thr)) / math.log(thr)
        t = torch.round((time_steps - 1) * ratio).clamp(0, time_steps - 1)
    else:
        raise ValueError(f"latency_encode: method must be 'linear' or 'log', got {method!r}")
    return torch.where(fires, t.long(), torch.full_like(t, -1, dtype=torch.long))


def latency_encode(
    x: torch.Tensor,
    time_steps: int,
    method: str = "linear",
    threshold: float | None = None,
) -> torch.Tensor:
    """Latency (time-to-first-spike) code: one spike per input, brighter earlier.

    ``S[t] = 1`` iff ``t = t*(x)`` with ``t*`` from :func:`latency_times`
    (``linear``: ``t* = round((T-1)(1 - x))``; ``log``:
    ``t* = round((T-1) ln x / ln threshold)``). Inputs at or below the
    threshold never spike. Deterministic. Returns ``[T, *x.shape]`` in
    ``x.dtype`` (Thorpe et al. 2001, rank-order / first-spike codes; the
    linear/log variants follow snnTorch's ``spikegen.latency``).
    """
    t = latency_times(x, time_steps, method, threshold)
    steps = torch.arange(time_steps, device=x.device).view(-1, *([1] * x.dim()))
    return (steps == t.unsqueeze(0)).to(x.dtype if x.is_floating_point() else torch.float32)


def delta_encode(
    x: torch.Tensor,
    threshold: float = 0.1,
    off_spike: bool = True,
    padding: bool = False,
) -> torch.Tensor:
    """Delta encoding of a time-first signal ``x [T, ...]`` by finite differences.

    ``d[t] = x[t] - x[t-1]`` (with ``x[-1] = x[0]`` if ``padding`` else
    ``x[-1] = 0``); ``S[t] = +1`` if ``d[t] >= threshold``, ``-1`` if
    ``off_spike`` and ``d[t] <= -threshold``, else 0. As snnTorch's
    ``spikegen.delta`` (time-first). Returns ``[T, ...]`` in ``x.dtype``.
    """
    _check_threshold(threshold)
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(f"delta_encode: x must be time-first [T, ...], got {tuple(x.shape)}")
    prev = torch.cat([x[:1] if padding else torch.zeros_like(x[:1]), x[:-1]], 0)
    d = x - prev
    on = (d >= threshold).to(x.dtype)
    if not off_spike:
        return on
    return on - (d <= -threshold).to(x.dtype)


def delta_modulation_encode(
    x: torch.Tensor,
    threshold: float = 0.1,
    off_spike: bool = True,
    initial: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """Delta modulation with a tracking reference (send-on-delta, the DVS pixel rule).

    A reference ``r`` starts at ``initial`` (default ``x[0]``) and per step:

        ``x[t] - r >= threshold``  ->  ``S[t] = +1``, ``r <- r + threshold``
        ``x[t] - r <= -threshold`` ->  ``S[t] = -1``, ``r <- r - threshold``

    (at most one event per step, so a jump of ``k * threshold`` is sent as
    ``k`` events on consecutive steps; with ``off_spike=False`` decreases move
    ``r`` silently). Unlike :func:`delta_encode` a slow drift accumulates into
    events. Returns ``[T, ...]`` of ``{-1, 0, +1}`` in ``x.dtype``
    (Lichtsteiner et al. 2008; delta modulation, de Jager 1952).
    """
    _check_threshold(threshold)
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(
            f"delta_modulation_encode: x must be time-first [T, ...], got {tuple(x.shape)}"
        )
    if initial is None:
        ref = x[0].clone()
    else:
        ref = torch.as_tensor(initial, dtype=x.dtype, device=x.device).expand_as(x[0]).clone()
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        d = x[t] - ref
        on = d >= threshold
        off = d <= -threshold
        ref = ref + threshold * on.to(x.dtype) - threshold * off.to(x.dtype)
        out[t] = on.to(x.dtype) - (off.to(x.dtype) if off_spike else 0)
    return out


def gaussian_receptive_fields(
    x: torch.Tensor,
    n_neurons: int,
    x_min: float = 0.0,
    x_max: float = 1.0,
    beta: float = 1.5,
) -> torch.Tensor:
    """Population responses ``[..., N]`` of Gaussian tuning curves (Bohte et al. 2002).

    Neuron ``i = 0..N-1`` has centre ``mu_i = x_min + i * (x_max - x_min) / (N - 1)``
    and width ``sigma = (x_max - x_min) / (beta * (N - 1))``; its response is
    ``r_i(x) = exp(-(x - mu_i)^2 / (2 sigma^2))`` in ``(0, 1]``, 1 at the centre.
    """
    if not isinstance(n_neurons, int) or n_neurons < 2:
        raise ValueError(f"n_neurons must be an int >= 2, got {n_neurons!r}")
    if not x_max > x_min:
        raise ValueError(f"x_max must be > x_min, got x_min={x_min}, x_max={x_max}")
    _check_threshold(beta, "beta")
    dtype = x.dtype if x.is_floating_point() else torch.float32
    mu = torch.linspace(x_min, x_max, n_neurons, dtype=dtype, device=x.device)
    sigma = (x_max - x_min) / (beta * (n_neurons - 1))
    return torch.exp(-((x.to(dtype).unsqueeze(-1) - mu) ** 2) / (2 * sigma**2))


def population_encode(
    x: torch.Tensor,
    n_neurons: int,
    time_steps: int,
    x_min: float = 0.0,
    x_max: float = 1.0,
    beta: float = 1.5,
    method: str = "rate",
    generator: torch.Generator | int | None = None,
) -> torch.Tensor:
    """Population code: each value drives ``N`` Gaussian-tuned neurons, ``[T, ..., N]``.

    The responses ``r_i(x)`` of :func:`gaussian_receptive_fields` become spikes:
    ``rate`` -> ``S_i[t] ~ Bernoulli(r_i)`` (seeded), ``latency`` -> one spike
    at ``round((T - 1)(1 - r_i))`` for ``r_i > 0.1`` (Bohte et al. 2002: the
    best-tuned neuron fires first), ``direct`` -> ``r_i`` at every step.
    """
    r = gaussian_receptive_fields(x, n_neurons, x_min, x_max, beta)
    if method == "rate":
        return rate_encode(r, time_steps, generator)
    if method == "latency":
        return latency_encode(r, time_steps, "linear", threshold=0.1)
    if method == "direct":
        return direct_encode(r, time_steps)
    raise ValueError(
        f"population_encode: method must be 'rate', 'latency' or 'direct', got {method!r}"
    )
