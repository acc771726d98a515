"""Time-first layer wrappers."""

import pytest
import torch
from torch import nn

from spikeforge.functional.encoding import direct_encode
from spikeforge.layers import Flatten, MeanOverTime, TimeDistributed


def test_time_distributed_equals_per_step_loop():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(5, 2, 3, 6, 6)
    y = TimeDistributed(conv)(x)
    assert y.shape == (5, 2, 4, 6, 6)
    for t in range(5):
        torch.testing.assert_close(y[t], conv(x[t]))


def test_direct_input_shortcut_is_exact_with_batchnorm():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 6, 6)
    a = TimeDistributed(nn.Sequential(nn.Conv2d(4, 5, 3), nn.BatchNorm2d(5)))
    b = TimeDistributed(nn.Sequential(nn.Conv2d(4, 5, 3), nn.BatchNorm2d(5)))
    b.load_state_dict(a.state_dict())
    fast = a(direct_encode(x, 4))  # broadcast view: runs once
    slow = b(direct_encode(x, 4).contiguous())  # a real copy: runs on all T*B
    assert fast.shape == slow.shape == (4, 3, 5, 4, 4)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.layer[1].running_mean, b.layer[1].running_mean)
    # running_var: unbiased correction over n = B*H*W = 48 instead of T*B*H*W = 192;
    # running_var = 0.9 * 1 + 0.1 * var * n / (n - 1)
    var_fast = (a.layer[1].running_var - 0.9) / 0.1 * 47 / 48
    var_slow = (b.layer[1].running_var - 0.9) / 0.1 * 191 / 192
    torch.testing.assert_close(var_fast, var_slow, rtol=1e-5, atol=1e-6)


def test_flatten_and_mean():
    x = torch.randn(2, 3, 4, 5)
    assert Flatten()(x).shape == (2, 3, 20)
    torch.testing.assert_close(MeanOverTime()(x), x.mean(0))
    with pytest.raises(ValueError, match="Flatten expects"):
        Flatten()(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"TimeDistributed\(Linear\) expects time-first"):
        TimeDistributed(nn.Linear(3, 3))(torch.randn(3))
