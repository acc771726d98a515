"""Losses over time-first network outputs ``[T, B, classes]``."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


def _check(outputs: torch.Tensor, target: torch.Tensor) -> None:
    if outputs.dim() != 3:
        raise ValueError(f"outputs must be [T, B, classes], got shape {tuple(outputs.shape)}")
    if target.shape != outputs.shape[1:2]:
        raise ValueError(
            f"target must be [B] = [{outputs.shape[1]}] class indices, got {tuple(target.shape)}"
        )


def mean_output_cross_entropy(
    outputs: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Cross-entropy of the time-averaged output: ``CE((1/T) sum_t O[t], y)``;
    ``label_smoothing`` as in :func:`torch.nn.functional.cross_entropy` (Szegedy
    et al. 2016: target ``(1 - eps) onehot(y) + eps / classes``)."""
    _check(outputs, target)
    return F.cross_entropy(outputs.mean(0), target, label_smoothing=label_smoothing)


def tet_loss(
    outputs: torch.Tensor,
    target: torch.Tensor,
    lam: float = 0.0,
    phi: float = 1.0,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Temporal efficient training (Deng et al., ICLR 2022, eq. 11)::

        L = (1 - lam) (1/T) sum_t CE(O[t], y) + lam (1/T) sum_t MSE(O[t], phi)

    Supervising every step, not the mean, lets the net recover momentum from
    steps that are already right; ``lam`` (the paper's lambda, 0.05 in its
    CIFAR10-DVS runs) weights the MSE regulariser that pulls outputs towards
    ``phi`` (the paper's phi, = V_th = 1). ``label_smoothing`` applies to each
    step's cross-entropy.
    """
    _check(outputs, target)
    t, b, c = outputs.shape
    ce = F.cross_entropy(
        outputs.reshape(t * b, c), target.repeat(t), label_smoothing=label_smoothing
    )
    if lam == 0:
        return ce
    return (1 - lam) * ce + lam * F.mse_loss(outputs, torch.full_like(outputs, phi))


def mse_rate_loss(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE between the time-averaged output and the one-hot target:
    ``mean((1/T sum_t O[t] - onehot(y))^2)`` (the loss of SpikingJelly's tutorials)."""
    _check(outputs, target)
    onehot = F.one_hot(target, outputs.shape[-1]).to(outputs.dtype)
    return F.mse_loss(outputs.mean(0), onehot)


LOSSES = {"ce": mean_output_cross_entropy, "tet": tet_loss, "mse_rate": mse_rate_loss}
"""Losses by name (``loss.name``): ``fn(outputs [T, B, C], target [B], **params)``."""

LOSS_PARAMS: dict[str, dict[str, tuple[float, float, bool]]] = {
    "ce": {"label_smoothing": (0.0, 1.0, False)},
    "tet": {
        "lam": (0.0, 1.0, True),
        "phi": (-1e9, 1e9, True),
        "label_smoothing": (0.0, 1.0, False),
    },
    "mse_rate": {},
}
"""The parameters each loss accepts, as ``name: (low, high, high_inclusive)``
(``low`` inclusive): :func:`check_loss_params` validates a config against it."""


def check_loss_params(name: str, params: dict[str, float], defaults: dict[str, float]) -> None:
    """Raise ``ValueError`` naming ``loss.<key>`` when ``name`` is not registered, a
    parameter set away from its default is not one of ``name``'s, or a value is
    out of its range."""
    if name not in LOSSES:
        raise ValueError(f"loss.name must be one of {', '.join(LOSSES)}; got {name!r}")
    spec = LOSS_PARAMS.get(name, {})
    for key, value in params.items():
        if key not in spec:
            if value != defaults[key]:
                own = ", ".join(spec) or "none"
                raise ValueError(
                    f"loss.{key} is not a parameter of loss {name!r} (its parameters: {own})"
                )
            continue
        low, high, incl = spec[key]
        if not (low <= value <= high if incl else low <= value < high):
            bracket = "]" if incl else ")"
            raise ValueError(f"loss.{key} must be in [{low}, {high}{bracket}, got {value}")


def build_loss(name: str, **params: float):
    """``fn(outputs, target)``: loss ``name`` with those of ``params`` it takes."""
    fn = LOSSES[name]
    own = {k: v for k, v in params.items() if k in LOSS_PARAMS.get(name, {})}
    if not own:
        return fn
    return functools.partial(fn, **own)
