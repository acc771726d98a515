"""Batch augmentations for event frames ``x [B, T, C, H, W]`` (or static ``[B, C, H, W]``).

These are the augmentations used on neuromorphic frame data (e.g. NDA, Li et
al., ECCV 2022; the DVS-CIFAR10 / DVS-Gesture recipes of Fang et al. 2021):
random translation, horizontal flip and cutout (DeVries & Taylor 2017). Each
draws one transform per sample from a ``torch.Generator`` and applies it to
all time steps and channels of that sample, so the motion in the clip stays
consistent. All work batch-wise without Python loops over the samples.

Config strings (``data.augment``): ``"flip"``, ``"translate:4"`` (max shift in
pixels), ``"cutout:8"`` (square side in pixels); see
:func:`build_batch_augment`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


def _check_x(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() < 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name}: x must be a tensor [B, ..., H, W], got {shape}")


def _gdev(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _per_sample(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a ``[B]`` (or ``[B, H, W]``) tensor to broadcast against ``x [B, ..., H, W]``."""
    extra = x.dim() - mask.dim() if mask.dim() == 1 else x.dim() - 3
    if mask.dim() == 1:
        return mask.view(-1, *([1] * extra))
    return mask.view(mask.shape[0], *([1] * extra), *mask.shape[1:])


def random_translate(
    x: torch.Tensor, max_shift: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shift each sample by integers ``(dy, dx) ~ U{-max_shift..max_shift}^2``, zero fill.

    ``y[b, ..., i, j] = x[b, ..., i - dy_b, j - dx_b]`` where the source index
    is inside the image, else 0 (a roll without wrap-around).
    """
    _check_x(x, "random_translate")
    if not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"random_translate: max_shift must be an int >= 0, got {max_shift!r}")
    if max_shift == 0:
        return x
    b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    shifts = torch.randint(
        -max_shift, max_shift + 1, (2, b), generator=generator, device=_gdev(generator)
    )
    shifts = shifts.to(x.device)
    dy, dx = shifts[0], shifts[1]
    rows = torch.arange(h, device=x.device).unsqueeze(0) - dy.unsqueeze(1)  # [B, H] source row
    cols = torch.arange(w, device=x.device).unsqueeze(0) - dx.unsqueeze(1)  # [B, W]
    valid = ((rows >= 0) & (rows < h)).unsqueeze(2) & ((cols >= 0) & (cols < w)).unsqueeze(1)
    rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    lead = x.shape[1:-2]
    xf = x.reshape(b, -1, h, w)
    idx_r = rows.view(b, 1, h, 1).expand(b, xf.shape[1], h, w)
    out = torch.gather(xf, 2, idx_r)
    idx_c = cols.view(b, 1, 1, w).expand(b, xf.shape[1], h, w)
    out = torch.gather(out, 3, idx_c)
    out = out * valid.unsqueeze(1).to(out.dtype)
    return out.reshape(b, *lead, h, w)


def random_flip(
    x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Mirror each sample left-right (``y[..., j] = x[..., W-1-j]``) with probability ``p``."""
    _check_x(x, "random_flip")
    if not 0 <= p <= 1:
        raise ValueError(f"random_flip: p must be in [0, 1], got {p}")
    flip = torch.rand(x.shape[0], generator=generator, device=_gdev(generator)).to(x.device) < p
    return torch.where(_per_sample(flip, x), x.flip(-1), x)


def random_cutout(
    x: torch.Tensor, size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017): zero a ``size x size`` square per sample.

    The square's centre ``(cy, cx)`` is uniform over the image; the square is
    ``[cy - size//2, cy - size//2 + size) x [cx - size//2, ...)`` clipped to the
    image, so near the border less than ``size^2`` pixels are removed.
    """
    _check_x(x, "random_cutout")
    if not isinstance(size, int) or size < 0:
        raise ValueError(f"random_cutout: size must be an int >= 0, got {size!r}")
    if size == 0:
        return x
    b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    cy = torch.randint(0, h, (b,), generator=generator, device=_gdev(generator)).to(x.device)
    cx = torch.randint(0, w, (b,), generator=generator, device=_gdev(generator)).to(x.device)
    y0, x0 = cy - size // 2, cx - size // 2
    r = torch.arange(h, device=x.device).unsqueeze(0)
    c = torch.arange(w, device=x.device).unsqueeze(0)
    in_r = (r >= y0.unsqueeze(1)) & (r < (y0 + size).unsqueeze(1))  # [B, H]
    in_c = (c >= x0.unsqueeze(1)) & (c < (x0 + size).unsqueeze(1))  # [B, W]
    cut = in_r.unsqueeze(2) & in_c.unsqueeze(1)  # [B, H, W]
    return x * (~_per_sample(cut, x)).to(x.dtype)


@dataclass(frozen=True)
class Translate:
    """Random integer translation up to ``max_shift`` pixels (:func:`random_translate`)."""

    max_shift: int

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return random_translate(x, self.max_shift, generator)


@dataclass(frozen=True)
class Flip:
    """Random horizontal flip with probability ``p`` (:func:`random_flip`)."""

    p: float = 0.5

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return random_flip(x, self.p, generator)


@dataclass(frozen=True)
class Cutout:
    """Random ``size x size`` cutout (:func:`random_cutout`)."""

    size: int

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return random_cutout(x, self.size, generator)


@dataclass(frozen=True)
class Compose:
    """Apply ``transforms`` in order, all drawing from the same generator."""

    transforms: tuple

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for t in self.transforms:
            x = t(x, generator)
        return x


def _int_arg(entry: str, arg: str | None, what: str) -> int:
    if arg is None or arg == "":
        raise ValueError(f"augment entry {entry!r}: needs {what}, e.g. '{entry.split(':')[0]}:4'")
    try:
        v = int(arg)
    except ValueError:
        raise ValueError(
            f"augment entry {entry!r}: {what} must be an integer, got {arg!r}"
        ) from None
    if v < 1:
        raise ValueError(f"augment entry {entry!r}: {what} must be >= 1, got {v}")
    return v


AUGMENTATIONS = ("flip", "flip:P", "translate:N", "cutout:N")


def parse_augment(entry: str):
    """One config string -> a transform: ``flip`` / ``flip:0.3``, ``translate:N``, ``cutout:N``."""
    if not isinstance(entry, str):
        raise ValueError(f"augment entry {entry!r} must be a string like 'translate:4'")
    name, _, arg = entry.strip().partition(":")
    name = name.strip().lower()
    arg = arg.strip() if _ else None
    if name == "flip":
        if arg is None:
            return Flip()
        try:
            p = float(arg)
        except ValueError:
            raise ValueError(
                f"augment entry {entry!r}: flip probability must be a number"
            ) from None
        if not 0 <= p <= 1:
            raise ValueError(f"augment entry {entry!r}: flip probability must be in [0, 1]")
        return Flip(p)
    if name == "translate":
        return Translate(_int_arg(entry, arg, "a max shift in pixels"))
    if name == "cutout":
        return Cutout(_int_arg(entry, arg, "a square size in pixels"))
    raise ValueError(f"unknown augment entry {entry!r}; valid: {', '.join(AUGMENTATIONS)}")


def build_batch_augment(names: Sequence[str] | None) -> Callable | None:
    """``data.augment`` strings -> ``fn(x [B, ...], generator) -> x``, or None if empty.

    Example: ``["translate:4", "flip", "cutout:8"]`` applies those in order.
    A bad entry is a ``ValueError`` that quotes it.
    """
    if not names:
        return None
    if isinstance(names, str):
        raise ValueError(f"augment must be a list of strings, got the string {names!r}")
    transforms = tuple(parse_augment(n) for n in names)
    return transforms[0] if len(transforms) == 1 else Compose(transforms)
