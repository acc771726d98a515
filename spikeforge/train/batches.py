"""Seeds and batches of the training engine: every random stream of a run is drawn from
a generator seeded by ``(seed, epoch, stream id)`` (:func:`derived_seed`), never from
state carried across epochs, which is what makes a resumed run end with the weights of
an uninterrupted one; :func:`iterate_batches` yields a dataset's batches in a given order
and :func:`time_first` makes one the model's time-first input.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from spikeforge.functional.encoding import direct_encode, poisson_encode, rate_encode


def derived_seed(seed: int, *parts: int) -> int:
    """A 63-bit seed from the run seed and integers (epoch, stream id)."""
    h = seed & 0xFFFFFFFF
    for p in parts:
        h = (h * 6364136223846793005 + p + 1442695040888963407) & 0x7FFFFFFFFFFFFFFF
    return h


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (e.g. a :func:`derived_seed`)."""
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def iterate_batches(dataset: Dataset, batch_size: int, order: torch.Tensor | None):
    """Yield ``(x, y)`` batches in ``order`` (indices) or in dataset order.

    In-memory ``TensorDataset`` s are sliced directly (no per-sample Python);
    any other dataset goes through a single-process DataLoader.
    """
    n = len(dataset)
    idx = order if order is not None else torch.arange(n)
    if isinstance(dataset, TensorDataset):
        x_all, y_all = dataset.tensors[:2]
        for i in range(0, n, batch_size):
            j = idx[i : i + batch_size]
            yield x_all[j], y_all[j]
        return
    loader = DataLoader(dataset, batch_size=batch_size, sampler=idx.tolist(), num_workers=0)
    yield from loader


def time_first(x: torch.Tensor, time_steps: int, encoding: str, temporal: bool,
               generator: torch.Generator | None) -> torch.Tensor:
    """A batch ``x`` as the model input ``[T, B, ...]`` with ``T = time_steps``: static
    inputs ``[B, ...]`` encoded by ``encoding`` (``direct``, ``rate``, ``poisson``: see
    :mod:`spikeforge.functional.encoding`; ``generator`` draws the spikes); event frames
    (``temporal``, ``[B, T', ...]``) keep their ``T'`` or pass through MTT's communication
    table to ``time_steps`` (:func:`spikeforge.train.mtt.retime`)."""
    if temporal:
        if time_steps == x.shape[1]:
            return x.transpose(0, 1)
        from spikeforge.train.mtt import retime

        return retime(x.transpose(0, 1), time_steps)
    if encoding == "direct":
        return direct_encode(x, time_steps)
    if encoding == "rate":
        return rate_encode(x, time_steps, generator)
    return poisson_encode(x, time_steps, generator)
