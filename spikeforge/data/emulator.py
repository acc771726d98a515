"""A DVS (event-camera) emulator: an image sequence in, ON/OFF events out.

The model is the standard one of the dynamic vision sensor (Lichtsteiner,
Posch & Delbruck, "A 128x128 120 dB 15 us latency asynchronous temporal
contrast vision sensor", IEEE JSSC 2008) as emulated by ESIM (Rebecq et al.,
CoRL 2018) and v2e (Hu, Liu & Delbruck, "v2e: From video frames to realistic
DVS events", CVPRW 2021). Each pixel works on the log intensity

    L(t) = log(I(t) + eps),

holds a reference level ``ref`` (the log intensity at its last event) and
emits an event whenever the change since then crosses its contrast threshold:

    L(t) - ref >= C_on   ->  ON event  (p = 1),  ref <- ref + C_on
    L(t) - ref <= -C_off ->  OFF event (p = 0),  ref <- ref - C_off

Between two frames ``k-1`` and ``k`` the log intensity is taken to move
linearly, so a large change gives several events in one interval, the i-th
at the time the line crosses its level:

    t_i = t_{k-1} + (t_k - t_{k-1}) * (ref + i*C - L_{k-1}) / (L_k - L_{k-1}).

After an event a pixel is blind for its refractory period ``refractory_us``:
a crossing inside it is delayed to ``t_last + refractory_us`` (and dropped
from this interval if that falls after ``t_k``; the reference does not move,
so the pixel fires later if the change persists), as in v2e.

Non-idealities, all seeded (the mismatch map from ``seed``, each sample's
noise from ``(seed, sample id)``):

* threshold mismatch: per-pixel ``C_on ~ N(c_on, sigma_threshold)`` and
  ``C_off ~ N(c_off, sigma_threshold)``, clipped at ``0.01`` (v2e's
  ``sigma_thres``);
* shot noise: each pixel emits spurious events as a Poisson process of rate
  ``shot_noise_rate_hz``, each ON or OFF with probability 1/2 (v2e models shot
  noise this way; refractory is not applied to noise events);
* leak (background activity): the reference of each pixel drifts down by
  ``leak_rate_hz * C_on`` per second, so a static pixel emits ON events at
  about ``leak_rate_hz`` (v2e's ``leak_rate_hz``; each pixel starts at a random
  phase of its leak cycle).

Output: events in Tonic's structured dtype (fields ``x``, ``y``, ``t`` in
microseconds, ``p`` polarity with ``True`` = ON), sorted by time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Tonic's event dtype (``tonic.io.events_struct``), declared here so the
#: emulator does not need Tonic installed.
EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])


@dataclass(frozen=True)
class DVSParams:
    """Parameters of :func:`emulate_events` (see the module docstring for the model).

    ``c_on``/``c_off``: contrast thresholds in log-intensity units (both > 0);
    ``eps``: offset in ``L = log(I + eps)`` (limits the contrast of dark
    pixels, as v2e's linear-below-a-level mapping does); ``refractory_us``:
    per-pixel dead time after an event; ``sigma_threshold``: std of the
    per-pixel threshold mismatch; ``shot_noise_rate_hz`` and
    ``leak_rate_hz``: per-pixel noise event rates.
    """

    c_on: float = 0.2
    c_off: float = 0.2
    eps: float = 0.05
    refractory_us: float = 0.0
    sigma_threshold: float = 0.0
    shot_noise_rate_hz: float = 0.0
    leak_rate_hz: float = 0.0

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad parameter."""
        if not self.c_on > 0:
            raise ValueError(f"c_on must be > 0, got {self.c_on}")
        if not self.c_off > 0:
            raise ValueError(f"c_off must be > 0, got {self.c_off}")
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {self.eps}")
        for name in ("refractory_us", "sigma_threshold", "shot_noise_rate_hz", "leak_rate_hz"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def _check_inputs(frames: np.ndarray, timestamps_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    frames = np.asarray(frames)
    timestamps_us = np.asarray(timestamps_us, dtype=np.float64)
    if frames.ndim < 3:
        raise ValueError(f"frames must be [N, H, W] (or [N, B, H, W]), got shape {frames.shape}")
    if timestamps_us.shape != (frames.shape[0],):
        raise ValueError(
            f"timestamps_us must have one entry per frame ({frames.shape[0]}), "
            f"got shape {timestamps_us.shape}"
        )
    if frames.shape[0] >= 2 and np.any(np.diff(timestamps_us) <= 0):
        raise ValueError("timestamps_us must be strictly increasing")
    if np.issubdtype(frames.dtype, np.floating) and frames.size:
        lo, hi = float(frames.min()), float(frames.max())
        if lo < 0 or hi > 1 or not np.isfinite(lo + hi):
            raise ValueError(f"frames must hold intensities in [0, 1], got range [{lo}, {hi}]")
    elif not np.issubdtype(frames.dtype, np.floating):
        raise ValueError(f"frames must be a float array in [0, 1], got dtype {frames.dtype}")
    return frames, timestamps_us


def _emulate_flat(
    logs,
    timestamps_us: np.ndarray,
    c_on: np.ndarray,
    c_off: np.ndarray,
    params: DVSParams,
    leak_phase: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Core loop over frame intervals, vectorised over the ``P`` pixels.

    ``logs`` yields the log-intensity frames ``[P]`` (float64) in order;
    ``leak_phase`` (``[P]`` in ``[0, 1)``) starts each pixel part-way through its
    leak cycle. Returns
    ``(pixel index, t_us float, polarity bool)`` of the signal events, unsorted.
    """
    it = iter(logs)
    l_prev = next(it)
    ref = l_prev.copy()
    n_pix = ref.shape[0]
    last_t = np.full(n_pix, -np.inf)
    refr = float(params.refractory_us)
    leak_per_us = params.leak_rate_hz * 1e-6 * c_on if params.leak_rate_hz > 0 else None
    if leak_per_us is not None and leak_phase is not None:
        ref = ref - leak_phase * c_on
    out_idx: list[np.ndarray] = []
    out_t: list[np.ndarray] = []
    out_p: list[np.ndarray] = []
    for k in range(1, len(timestamps_us)):
        l_cur = next(it)
        t0, t1 = timestamps_us[k - 1], timestamps_us[k]
        if leak_per_us is not None:
            ref = ref - leak_per_us * (t1 - t0)
        slope = l_cur - l_prev
        # Only pixels whose change can already reach a threshold take part.
        diff = l_cur - ref
        active = np.flatnonzero((diff >= c_on) | (diff <= -c_off))
        while active.size:
            r = ref[active]
            lc = l_cur[active]
            d = lc - r
            on = d >= c_on[active]
            off = d <= -c_off[active]
            keep = on | off
            if not keep.all():
                active, r, lc, on = active[keep], r[keep], lc[keep], on[keep]
                if not active.size:
                    break
            level = np.where(on, r + c_on[active], r - c_off[active])
            s = slope[active]
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = (level - l_prev[active]) / s
            frac = np.where(np.isfinite(frac), np.clip(frac, 0.0, 1.0), 0.0)
            t = t0 + frac * (t1 - t0)
            if refr > 0:
                t = np.maximum(t, last_t[active] + refr)
                fire = t <= t1
                if not fire.all():
                    active, t, on, level = active[fire], t[fire], on[fire], level[fire]
            out_idx.append(active)
            out_t.append(t)
            out_p.append(on)
            ref[active] = level
            last_t[active] = t
        l_prev = l_cur
    if out_idx:
        return np.concatenate(out_idx), np.concatenate(out_t), np.concatenate(out_p)
    return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool)


def _sample_noise(rng: np.random.Generator, hw: int, t_start: float, t_end: float, params):
    """One sample's leak phases ``[hw]`` and shot-noise events ``(pixel, t, p)``."""
    phase = rng.uniform(0.0, 1.0, hw) if params.leak_rate_hz > 0 else None
    if params.shot_noise_rate_hz > 0 and t_end > t_start:
        counts = rng.poisson(params.shot_noise_rate_hz * (t_end - t_start) * 1e-6, hw)
        idx = np.repeat(np.arange(hw), counts)
        t = rng.uniform(t_start, t_end, idx.size)
        p = rng.random(idx.size) < 0.5
    else:
        idx, t, p = np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool)
    return phase, (idx, t, p)


def threshold_maps(
    shape: tuple[int, int], params: DVSParams, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel thresholds ``(C_on, C_off)`` of one sensor, each ``[H, W]``.

    ``C ~ N(c, sigma_threshold)`` clipped at ``0.01`` (v2e), drawn from
    ``numpy.random.default_rng(seed)``; exactly ``c_on``/``c_off`` when
    ``sigma_threshold == 0``.
    """
    if params.sigma_threshold > 0:
        rng = np.random.default_rng(seed)
        c_on = np.maximum(rng.normal(params.c_on, params.sigma_threshold, shape), 0.01)
        c_off = np.maximum(rng.normal(params.c_off, params.sigma_threshold, shape), 0.01)
        return c_on, c_off
    return np.full(shape, float(params.c_on)), np.full(shape, float(params.c_off))


def emulate_events_batch(
    frames: np.ndarray,
    timestamps_us: np.ndarray,
    params: DVSParams | None = None,
    seed: int = 0,
    sample_ids=None,
) -> list[np.ndarray]:
    """Emulate ``B`` recordings with one sensor: ``frames [N, B, H, W]`` -> ``B`` event arrays.

    Same model and output as :func:`emulate_events` (one time-sorted Tonic
    structured array per sample); all ``B * H * W`` pixels run in one
    vectorised pass. The sensor's threshold mismatch map comes from
    :func:`threshold_maps` with ``seed`` and is shared by all samples (one
    camera); the noise of sample ``i`` comes from
    ``numpy.random.default_rng([seed, sample_ids[i]])`` (``sample_ids``
    defaults to ``0..B-1``), so a sample's events do not depend on which
    other samples share its batch.
    """
    params = params or DVSParams()
    params.validate()
    frames, ts = _check_inputs(frames, timestamps_us)
    if frames.ndim != 4:
        raise ValueError(f"frames must be [N, B, H, W], got shape {frames.shape}")
    n, b, h, w = frames.shape
    hw = h * w
    if sample_ids is None:
        sample_ids = range(b)
    sample_ids = [int(i) for i in sample_ids]
    if len(sample_ids) != b:
        raise ValueError(
            f"sample_ids must have {b} entries (one per sample), got {len(sample_ids)}"
        )
    c_on, c_off = threshold_maps((h, w), params, seed)
    c_on, c_off = np.tile(c_on.reshape(-1), b), np.tile(c_off.reshape(-1), b)
    phases, noise = [], []
    if params.leak_rate_hz > 0 or params.shot_noise_rate_hz > 0:
        t_end = ts[-1] if n >= 2 else ts[0]
        for i, sid in enumerate(sample_ids):
            phase, (ni, nt, npol) = _sample_noise(
                np.random.default_rng([int(seed), sid]), hw, ts[0], t_end, params
            )
            phases.append(phase)
            noise.append((ni + i * hw, nt, npol))
    leak_phase = np.concatenate(phases) if params.leak_rate_hz > 0 else None
    eps = float(params.eps)
    logs = (np.log(frames[k].reshape(-1).astype(np.float64) + eps) for k in range(n))
    idx, t, p = _emulate_flat(logs, ts, c_on, c_off, params, leak_phase)
    if noise:
        idx = np.concatenate([idx] + [x[0] for x in noise])
        t = np.concatenate([t] + [x[1] for x in noise])
        p = np.concatenate([p] + [x[2] for x in noise])
    t_int = np.round(t).astype(np.int64)
    sample = idx // hw
    rem = idx % hw
    # One stable sort by (sample, time): same-time events keep their order.
    t_min = int(t_int.min()) if t_int.size else 0
    key = (sample << 40) | (t_int - t_min)
    order = np.argsort(key, kind="stable")
    sample, rem, t_int, p = sample[order], rem[order], t_int[order], p[order]
    bounds = np.searchsorted(sample, np.arange(b + 1))
    out = []
    for i in range(b):
        sl = slice(bounds[i], bounds[i + 1])
        ev = np.empty(bounds[i + 1] - bounds[i], dtype=EVENT_DTYPE)
        ev["x"] = rem[sl] % w
        ev["y"] = rem[sl] // w
        ev["t"] = t_int[sl]
        ev["p"] = p[sl]
        out.append(ev)
    return out


def emulate_events(
    frames: np.ndarray,
    timestamps_us: np.ndarray,
    params: DVSParams | None = None,
    seed: int = 0,
    **kwargs,
) -> np.ndarray:
    """DVS events from an intensity sequence (the model of the module docstring).

    Args:
        frames: ``[N, H, W]`` float intensities in ``[0, 1]``.
        timestamps_us: ``[N]`` strictly increasing frame times in microseconds.
        params: a :class:`DVSParams`; or pass its fields as keyword arguments
            (``c_on=0.1, refractory_us=500, ...``).
        seed: seed of the threshold mismatch (:func:`threshold_maps`) and of
            the noise; the output is a function of ``(frames, params, seed)``.

    Returns:
        A structured array of dtype :data:`EVENT_DTYPE` (Tonic's ``x, y, t, p``;
        ``t`` in integer microseconds, ``p`` True for ON), sorted by ``t``.
    """
    if params is None:
        params = DVSParams(**kwargs)
    elif kwargs:
        raise ValueError("pass either params or keyword parameters, not both")
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise ValueError(f"frames must be [N, H, W], got shape {frames.shape}")
    return emulate_events_batch(frames[:, None], timestamps_us, params, seed)[0]
