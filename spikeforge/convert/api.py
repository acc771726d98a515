"""Convert a user's ANN (any ``nn.Module`` of supported layers) into an SNN in one call."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from spikeforge.convert.calibrate import calibrate
from spikeforge.convert.thresholds import estimate_thresholds
from spikeforge.models.converted import ConvertedSNN, ann_core, ann_graph, snn_from_graph


def calibration_tensor(data, limit: int | None = None) -> torch.Tensor:
    """Calibration inputs as one tensor ``[N, ...]`` from a tensor, or an iterable of
    tensors or of ``(x, y)`` batches (a DataLoader), taking at most ``limit`` samples."""
    if isinstance(data, torch.Tensor):
        x = data
    elif isinstance(data, Iterable):
        parts, n = [], 0
        for item in data:
            xb = item[0] if isinstance(item, (tuple, list)) else item
            if not isinstance(xb, torch.Tensor):
                raise TypeError(f"calibration batches must hold tensors, got {type(xb).__name__}")
            parts.append(xb)
            n += len(xb)
            if limit is not None and n >= limit:
                break
        if not parts:
            raise ValueError("calibration data is empty")
        x = torch.cat(parts)
    else:
        raise TypeError(f"calibration data must be a tensor or an iterable of batches, "
                        f"got {type(data).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"calibration inputs must be floating point, got {x.dtype}")
    return x[:limit] if limit is not None else x


def convert(model: nn.Module, calib_data, time_steps: int = 32, calibration: str = "none",
            threshold: str = "percentile", percentile: float = 99.9,
            calib_samples: int | None = None, weight_iters: int = 100,
            log=None) -> ConvertedSNN:
    """ANN -> SNN of IF neurons with reset by subtraction.

    Steps: trace ``model`` and fold its BatchNorms (:func:`~spikeforge.models.converted.
    ann_graph`); thresholds from the activations on ``calib_data``
    (:func:`~spikeforge.convert.thresholds.estimate_thresholds`: ``max`` or the
    ``percentile``-th percentile, 99.9 by default; the bound of a QCFS layer);
    every ReLU/QCFS becomes a :class:`~spikeforge.models.converted.ConvertedIF`
    with that threshold and an initial membrane of half of it; then layer-wise
    ``calibration`` (``none``, ``light``, ``advanced``, ``advanced_bn``; see
    :mod:`spikeforge.convert.calibrate`) for ``time_steps``.

    Args:
        model: the ANN, per-sample ``[B, ...] -> [B, K]`` (a zoo ANN's time
            wrapper is unwrapped). Not modified.
        calib_data: inputs ``[N, ...]`` (tensor, or batches / a DataLoader).
        time_steps: T the calibration targets (the SNN runs at any T).
        calib_samples: use at most this many calibration samples.

    Returns a :class:`~spikeforge.models.converted.ConvertedSNN` mapping
    ``[T, B, ...]`` to output currents ``[T, B, K]``; predict with ``out.mean(0)``.

    Example::

        snn = convert(my_cnn, train_images[:256], time_steps=32, calibration="light")
        logits = snn(images.unsqueeze(0).expand(32, *images.shape)).mean(0)
    """
    if isinstance(time_steps, bool) or not isinstance(time_steps, int) or time_steps < 1:
        raise ValueError(f"time_steps must be a positive integer, got {time_steps!r}")
    x = calibration_tensor(calib_data, calib_samples)
    ann, folded = ann_graph(ann_core(model))
    device = next(ann.parameters(), torch.empty(0)).device
    x = x.to(device)
    thresholds = estimate_thresholds(ann, x, threshold, percentile)
    snn = snn_from_graph(ann, x.shape[1:], thresholds).to(device)
    calibrate(snn, ann, x, time_steps, calibration, folded, weight_iters=weight_iters, log=log)
    return snn
