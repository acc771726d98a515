"""``nmnist-sim``: a simulated N-MNIST made offline from the embedded MNIST digits.

N-MNIST (Orchard, Jayawant, Cohen & Thakor, "Converting static image datasets
to spiking neuromorphic datasets using saccades", Front. Neurosci. 2015) was
recorded by an ATIS event camera on a pan-tilt unit looking at MNIST digits
on a monitor; the camera made three linear saccades of about 100 ms each,
tracing an isosceles triangle (down-right, left, up-right back to the start),
and the 28x28 digits landed on a 34x34 pixel crop.

This module replays that recording with the DVS emulator
(:mod:`spikeforge.data.emulator`):

1. each digit ``I`` (the 5,000 digits of ``mnist5k``, same 4,000/1,000
   split) is centred on a 34x34 sensor and moved along the triangle with
   vertices ``(0, -s/2)``, ``(s/2, s/2)``, ``(-s/2, s/2)`` (``s`` =
   ``saccade_px``; x right, y down), one saccade per ``saccade_ms``,
   rendered every ``saccade_ms / frames_per_saccade`` with sub-pixel shifts
   by bilinear interpolation:
   ``I_k(y, x) = sum_{a,b in {0,1}} w_a(dy) w_b(dx) I(y - floor(dy) - a, x - floor(dx) - b)``;
2. the frames go through the DVS model (log intensity, contrast thresholds,
   refractory period, threshold mismatch, shot noise; fixed seed);
3. the events are binned by :func:`spikeforge.data.frames.events_to_frames`
   into ``T = data.time_steps`` bins of 2 polarity channels: frames
   ``[T, 2, 34, 34]`` (channel 0 OFF, 1 ON) of event counts.

Generation is deterministic and vectorised (all digits of a batch run through
the emulator together). The raw events of each split are cached under
``data.cache_dir`` or ``$SPIKEFORGE_CACHE`` or ``~/.cache/spikeforge``, in
``nmnist-sim/<hash of the parameters>-events-<split>.npz`` (one array of
every event of the split and the offsets of each sample, uncompressed so the
1,000 test samples load in well under a second); the frames are binned from
them and cached beside them as ``<hash>.npz``, so a second run loads either.

Raw events: ``get_raw_events("nmnist-sim", cfg, split)`` (``train``/``test``)
gives :class:`NMNISTSimEvents`, ``(events, label)`` with events of
:data:`spikeforge.data.events.VISION_EVENT_DTYPE`: ``t`` microseconds from
the start of the first saccade, ``p`` 1 = ON, on the 34x34x2 sensor.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from spikeforge.data.augment import build_batch_augment
from spikeforge.data.embedded import load_mnist5k, stratified_split
from spikeforge.data.emulator import DVSParams, emulate_events_batch
from spikeforge.data.events import VISION_EVENT_DTYPE, EventDataset, register_raw_events
from spikeforge.data.frames import events_to_frames
from spikeforge.data.registry import DatasetBundle, register_dataset
from spikeforge.io import atomic_write

#: Bump when the generator changes in a way that changes its output.
VERSION = 1
SENSOR = 34


@dataclass(frozen=True)
class NMNISTSimParams:
    """Rendering and sensor parameters of ``nmnist-sim`` (see the module docstring).

    ``saccade_px``: side of the saccade triangle in pixels; ``saccade_ms``:
    duration of one saccade; ``frames_per_saccade``: rendered frames per
    saccade (the emulator interpolates log intensity linearly between them);
    ``dvs``: the emulator's :class:`spikeforge.data.emulator.DVSParams`; ``seed``
    seeds the threshold mismatch and the noise.
    """

    saccade_px: float = 4.0
    saccade_ms: float = 100.0
    frames_per_saccade: int = 20
    dvs: DVSParams = field(
        default_factory=lambda: DVSParams(
            c_on=0.25,
            c_off=0.25,
            eps=0.1,
            refractory_us=500.0,
            sigma_threshold=0.03,
            shot_noise_rate_hz=0.5,
        )
    )
    seed: int = 0


def saccade_path(params: NMNISTSimParams) -> tuple[np.ndarray, np.ndarray]:
    """Offsets ``[F, 2]`` (dx, dy in pixels) and times ``[F]`` (us) of the three saccades.

    Triangle ``A=(0, -s/2) -> B=(s/2, s/2) -> C=(-s/2, s/2) -> A``, each leg
    linear in time over ``saccade_ms`` (Orchard et al. 2015, Fig. 2);
    ``F = 3 * frames_per_saccade + 1``.
    """
    if params.frames_per_saccade < 1:
        raise ValueError(f"frames_per_saccade must be >= 1, got {params.frames_per_saccade}")
    if not params.saccade_ms > 0:
        raise ValueError(f"saccade_ms must be > 0, got {params.saccade_ms}")
    s = float(params.saccade_px)
    v = np.array([[0.0, -s / 2], [s / 2, s / 2], [-s / 2, s / 2], [0.0, -s / 2]])
    n = params.frames_per_saccade
    frac = np.arange(n) / n
    legs = [v[i] + (v[i + 1] - v[i]) * frac[:, None] for i in range(3)]
    offsets = np.concatenate(legs + [v[3:]])
    times = np.arange(len(offsets)) * (params.saccade_ms * 1000.0 / n)
    return offsets, times


def render_shifted(digits: np.ndarray, dx: float, dy: float, size: int = SENSOR) -> np.ndarray:
    """Digits ``[B, h, w]`` in [0, 1], centred on a ``size x size`` sensor and shifted
    by ``(dx, dy)`` pixels with bilinear interpolation (zero outside the digit):
    ``out(y, x) = I(y - dy, x - dx)``."""
    b, h, w = digits.shape
    margin = int(np.ceil(max(abs(dx), abs(dy)))) + 2
    oy, ox = (size - h) // 2, (size - w) // 2
    pad = np.zeros((b, size + 2 * margin, size + 2 * margin), np.float32)
    pad[:, margin + oy : margin + oy + h, margin + ox : margin + ox + w] = digits
    return _shift_padded(pad, margin, dx, dy, size)


def _shift_padded(pad: np.ndarray, margin: int, dx: float, dy: float, size: int) -> np.ndarray:
    sx, sy = -float(dx), -float(dy)  # sample the source at (y + sy, x + sx)
    x0, y0 = int(np.floor(sx)), int(np.floor(sy))
    ax, ay = sx - x0, sy - y0

    def tap(oy: int, ox: int) -> np.ndarray:
        r, c = margin + y0 + oy, margin + x0 + ox
        return pad[:, r : r + size, c : c + size]

    out = (1 - ay) * (1 - ax) * tap(0, 0)
    if ax:
        out += (1 - ay) * ax * tap(0, 1)
    if ay:
        out += ay * (1 - ax) * tap(1, 0)
    if ax and ay:
        out += ay * ax * tap(1, 1)
    return np.clip(out, 0.0, 1.0, out=out)


def saccade_frames(digits: np.ndarray, params: NMNISTSimParams) -> tuple[np.ndarray, np.ndarray]:
    """Render digits ``[B, 28, 28]`` (uint8 or [0, 1] float) along the saccades:
    frames ``[F, B, 34, 34]`` float32 in [0, 1] and their times ``[F]`` (us)."""
    d = np.asarray(digits)
    d = d.astype(np.float32) / 255.0 if d.dtype == np.uint8 else d.astype(np.float32)
    offsets, times = saccade_path(params)
    margin = int(np.ceil(np.abs(offsets).max())) + 2
    b, h, w = d.shape
    oy, ox = (SENSOR - h) // 2, (SENSOR - w) // 2
    pad = np.zeros((b, SENSOR + 2 * margin, SENSOR + 2 * margin), np.float32)
    pad[:, margin + oy : margin + oy + h, margin + ox : margin + ox + w] = d
    frames = np.stack([_shift_padded(pad, margin, dx, dy, SENSOR) for dx, dy in offsets])
    return frames, times


def simulate_events(
    digits: np.ndarray, params: NMNISTSimParams, sample_ids=None, batch_size: int = 256
) -> list[np.ndarray]:
    """Tonic-style event arrays, one per digit, of the simulated N-MNIST recording.

    ``sample_ids`` (default ``0..B-1``) key each digit's noise, so a digit's
    events do not depend on the batching or on which other digits are made.
    """
    n = len(digits)
    ids = np.arange(n) if sample_ids is None else np.asarray(sample_ids)
    out: list[np.ndarray] = []
    for s in range(0, n, batch_size):
        frames, times = saccade_frames(digits[s : s + batch_size], params)
        out.extend(
            emulate_events_batch(
                frames, times, params.dvs, seed=params.seed, sample_ids=ids[s : s + batch_size]
            )
        )
    return out


def bin_events(events: list[np.ndarray], time_steps: int) -> np.ndarray:
    """Events -> uint8 count frames ``[N, T, 2, 34, 34]`` via ``events_to_frames``
    with ``n_time_bins=T`` (Tonic's ``ToFrame``: ``T`` equal bins over each
    recording's span; counts above 255 saturate)."""
    out = np.zeros((len(events), time_steps, 2, SENSOR, SENSOR), np.uint8)
    for i, ev in enumerate(events):
        if len(ev) == 0:
            continue
        fr = events_to_frames(ev, (SENSOR, SENSOR, 2), n_time_bins=time_steps)
        out[i] = np.clip(np.asarray(fr), 0, 255)
    return out


def default_cache_root() -> str:
    """``$SPIKEFORGE_CACHE``, else ``$XDG_CACHE_HOME/spikeforge``, else ``~/.cache/spikeforge``."""
    if os.environ.get("SPIKEFORGE_CACHE"):
        return os.environ["SPIKEFORGE_CACHE"]
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "spikeforge")


def cache_path(
    params: NMNISTSimParams, time_steps: int, limit: int | None, cache_dir: str | None
) -> str:
    """``<root>/nmnist-sim/<sha256 of (version, params, T, limit)>.npz``."""
    key = json.dumps(
        {"version": VERSION, "params": asdict(params), "time_steps": time_steps, "limit": limit},
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return os.path.join(cache_dir or default_cache_root(), "nmnist-sim", f"{digest}.npz")


_SPLITS = ("train", "test")
_KEYS = ("train_frames", "train_labels", "test_frames", "test_labels", "train_idx", "test_idx")


def load_or_generate(
    time_steps: int,
    params: NMNISTSimParams | None = None,
    cache_dir: str | None = None,
    limit: int | None = None,
) -> dict:
    """The binned splits of ``nmnist-sim``, from the cache or generated (then cached).

    Returns a dict with ``train_frames``/``test_frames`` (uint8 count frames
    ``[N, T, 2, 34, 34]``), ``train_labels``/``test_labels``,
    ``train_idx``/``test_idx`` (rows of ``mnist5k``: its 4,000/1,000
    stratified split, or the first ``limit`` of each), ``events`` (total
    events), ``cache`` (the file) and ``cache_hit``.
    """
    params = params or NMNISTSimParams()
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    path = cache_path(params, time_steps, limit, cache_dir)
    if os.path.exists(path):
        try:
            with np.load(path) as z:
                out = {k: z[k] for k in _KEYS}
                out["events"] = int(z["events"])
            if out["train_frames"].shape[1:] == (time_steps, 2, SENSOR, SENSOR):
                return {**out, "cache": path, "cache_hit": True}
        except (OSError, KeyError, ValueError):
            pass  # unreadable or stale: regenerate and overwrite
    ev = {split: load_or_generate_events(split, params, cache_dir, limit) for split in _SPLITS}
    frames = {
        split: bin_events([e["events"][a:b] for a, b in zip(e["offsets"][:-1], e["offsets"][1:])],
                          time_steps)
        for split, e in ev.items()
    }  # fmt: skip
    out = {
        "train_frames": frames["train"],
        "train_labels": ev["train"]["labels"],
        "test_frames": frames["test"],
        "test_labels": ev["test"]["labels"],
        "train_idx": ev["train"]["idx"],
        "test_idx": ev["test"]["idx"],
        "events": int(sum(len(e["events"]) for e in ev.values())),
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write(path, lambda f: np.savez_compressed(f, **out))
    return {**out, "cache": path, "cache_hit": False}


def events_cache_path(
    params: NMNISTSimParams, split: str, limit: int | None, cache_dir: str | None
) -> str:
    """``<root>/nmnist-sim/<sha256 of (version, params, limit)>-events-<split>.npz``."""
    key = json.dumps({"version": VERSION, "params": asdict(params), "limit": limit},
                     sort_keys=True)  # fmt: skip
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    root = cache_dir or default_cache_root()
    return os.path.join(root, "nmnist-sim", f"{digest}-events-{split}.npz")


def to_vision_events(ev: np.ndarray) -> np.ndarray:
    """The emulator's events (Tonic's dtype, ``p`` bool) as
    :data:`~spikeforge.data.events.VISION_EVENT_DTYPE`."""
    out = np.empty(len(ev), dtype=VISION_EVENT_DTYPE)
    out["t"], out["x"], out["y"], out["p"] = ev["t"], ev["x"], ev["y"], ev["p"]
    return out


def load_or_generate_events(
    split: str,
    params: NMNISTSimParams | None = None,
    cache_dir: str | None = None,
    limit: int | None = None,
) -> dict:
    """The raw events of split ``split`` from the cache, or simulated (then
    cached): ``events`` (every event of the split, sample after sample),
    ``offsets`` (``[N + 1]``: sample ``i`` is ``events[offsets[i]:offsets[i+1]]``),
    ``labels``, ``idx`` (rows of ``mnist5k``), ``cache`` (the file)."""
    if split not in _SPLITS:
        raise ValueError(f"nmnist-sim has splits train and test, got {split!r}")
    params = params or NMNISTSimParams()
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    path = events_cache_path(params, split, limit, cache_dir)
    if os.path.exists(path):
        try:
            with np.load(path) as z:
                out = {k: z[k] for k in ("events", "offsets", "labels", "idx")}
            if out["events"].dtype == VISION_EVENT_DTYPE and len(out["offsets"]) == len(
                out["labels"]
            ) + 1 == len(out["idx"]) + 1 and out["offsets"][-1] == len(out["events"]):
                return {**out, "cache": path}
        except (OSError, KeyError, ValueError):
            pass  # unreadable or stale: regenerate and overwrite
    images, labels = _mnist5k()
    tr, te = stratified_split(labels, 0.2)
    idx = tr if split == "train" else te
    if limit is not None:
        idx = idx[:limit]
    events = [to_vision_events(e) for e in simulate_events(images[idx], params, sample_ids=idx)]
    offsets = np.zeros(len(events) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in events], out=offsets[1:])
    out = {
        "events": np.concatenate(events) if events else np.zeros(0, VISION_EVENT_DTYPE),
        "offsets": offsets,
        "labels": labels[idx].astype(np.int64),
        "idx": np.asarray(idx),
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write(path, lambda f: np.savez(f, **out))
    return {**out, "cache": path}


class NMNISTSimEvents(EventDataset):
    """The raw events of one ``nmnist-sim`` split: ``ds[i] -> (events, label)``
    (events of :data:`~spikeforge.data.events.VISION_EVENT_DTYPE` in time
    order, a view into one array of the whole split)."""

    sensor_size = (SENSOR, SENSOR, 2)
    num_classes = 10

    def __init__(self, events: np.ndarray, offsets: np.ndarray, labels: np.ndarray):
        self.events = events
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        n = len(self.labels)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} samples")
        i %= n
        return self.events[self.offsets[i] : self.offsets[i + 1]], int(self.labels[i])


@register_raw_events("nmnist-sim")
def nmnist_sim_events(cfg, split: str, params: NMNISTSimParams | None = None,
                      limit: int | None = None) -> NMNISTSimEvents:
    """Raw events of ``nmnist-sim`` split ``split`` (``train``/``test``) for ``cfg``
    (its ``cache_dir``); ``limit`` keeps the first ``limit`` digits (tests)."""
    d = load_or_generate_events(split, params, getattr(cfg, "cache_dir", None), limit)
    return NMNISTSimEvents(d["events"], d["offsets"], d["labels"])


@functools.lru_cache(maxsize=1)
def _mnist5k() -> tuple[np.ndarray, np.ndarray]:
    return load_mnist5k()  # parsing the CSV takes ~1 s: once per process


class EventFrameDataset(Dataset):
    """Count frames kept as uint8 ``[N, T, C, H, W]``; item ``i`` is
    ``(float32 [T, C, H, W], label)`` (4x less memory than storing float32)."""

    def __init__(self, frames: np.ndarray, labels: np.ndarray) -> None:
        self.frames = torch.from_numpy(np.ascontiguousarray(frames))
        self.labels = torch.from_numpy(np.asarray(labels, np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.frames[i].float(), self.labels[i]


@register_dataset(
    "nmnist-sim",
    "mnist5k digits through a DVS emulator along N-MNIST's 3 saccades, [T, 2, 34, 34]",
)
def nmnist_sim(
    cfg, params: NMNISTSimParams | None = None, limit: int | None = None
) -> DatasetBundle:
    """Build ``nmnist-sim`` (see the module docstring) for ``cfg`` (a ``DataConfig``).

    ``limit`` keeps only the first ``limit`` digits of each split (tests);
    ``params`` overrides the rendering/sensor defaults.
    """
    params = params or NMNISTSimParams()
    time_steps = int(getattr(cfg, "time_steps", 4))
    d = load_or_generate(time_steps, params, getattr(cfg, "cache_dir", None), limit)
    n = len(d["train_labels"]) + len(d["test_labels"])
    return DatasetBundle(
        train=EventFrameDataset(d["train_frames"], d["train_labels"]),
        test=EventFrameDataset(d["test_frames"], d["test_labels"]),
        input_shape=(2, SENSOR, SENSOR),
        num_classes=10,
        temporal=True,
        info={
            "name": "nmnist-sim",
            "train_size": len(d["train_labels"]),
            "test_size": len(d["test_labels"]),
            "params": asdict(params),
            "events_per_sample": d["events"] / max(1, n),
            "cache": d["cache"],
            "cache_hit": d["cache_hit"],
        },
        train_transform=build_batch_augment(list(getattr(cfg, "augment", []) or [])),
    )
