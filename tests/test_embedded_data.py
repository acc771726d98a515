"""The embedded datasets: real digits, a fixed stratified split."""

import numpy as np
import torch

from spikeforge.data import get_dataset
from spikeforge.data.embedded import load_mnist5k, stratified_split
from spikeforge.functional.encoding import direct_encode, rate_encode


def test_mnist5k_split():
    b = get_dataset("mnist5k", None)
    assert (len(b.train), len(b.test)) == (4000, 1000)
    assert b.input_shape == (1, 28, 28) and b.num_classes == 10 and not b.temporal
    xtr, ytr = b.train.tensors
    xte, yte = b.test.tensors
    assert torch.equal(torch.bincount(yte), torch.full((10,), 100))
    assert torch.equal(torch.bincount(ytr), torch.full((10,), 400))
    assert xtr.dtype == torch.float32 and 0 <= xtr.min() and xtr.max() <= 1
    # real digits: the mean image of each class differs, and the ink covers ~10-25%
    assert 0.05 < (xte > 0.5).float().mean() < 0.3
    # train and test are disjoint rows of the file
    images, labels = load_mnist5k()
    tr, te = stratified_split(labels, 0.2)
    assert not set(tr) & set(te) and len(set(tr) | set(te)) == 5000
    np.testing.assert_array_equal(xte[0, 0].numpy(), images[te[0]] / np.float32(255))


def test_split_is_fixed():
    labels = np.repeat(np.arange(3), 10)
    a = stratified_split(labels, 0.2)
    b = stratified_split(labels, 0.2)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_digits8x8():
    b = get_dataset("digits8x8", None)
    assert b.input_shape == (1, 8, 8) and len(b.train) + len(b.test) == 1797


def test_direct_and_rate_encoding():
    x = torch.rand(3, 5)
    d = direct_encode(x, 4)
    assert d.shape == (4, 3, 5) and torch.equal(d[2], x) and d.stride(0) == 0
    r1 = rate_encode(x, 200, generator=7)
    r2 = rate_encode(x, 200, generator=7)
    assert torch.equal(r1, r2) and set(r1.unique().tolist()) <= {0.0, 1.0}
    assert (r1.mean(0) - x).abs().max() < 0.15
