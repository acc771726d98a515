"""tdBN, MA-SNN / TCJA attention, residual joins and the transformers' attention:
each layer's defining equation on a hand-made input, shapes, gradients, errors."""

import math

import pytest
import torch
from torch import nn

from spikeforge.functional.encoding import direct_encode
from spikeforge.layers import (
    MembraneShortcut,
    MultiDimensionalAttention,
    ResidualJoin,
    SpikeDrivenSelfAttention,
    SpikingPatchSplitting,
    SpikingSelfAttention,
    TemporalChannelJointAttention,
    ThresholdDependentBatchNorm,
)
from spikeforge.neurons import LIF


def _grads_reach_all(module: nn.Module, *inputs) -> None:
    out = module(*inputs)
    g = torch.Generator().manual_seed(1)
    (out.float() * torch.randn(out.shape, generator=g)).sum().backward()
    missing = [n for n, p in module.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, f"no gradient reached {missing}"


# -- tdBN ------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha, v_th", [(1.0, 1.0), (1 / math.sqrt(2), 0.5)])
def test_tdbn_output_statistics_are_alpha_vth(alpha, v_th):
    torch.manual_seed(0)
    x = torch.randn(4, 8, 3, 5, 5) * torch.tensor([1.0, 3.0, 0.2]).view(1, 1, 3, 1, 1) + 7
    bn = ThresholdDependentBatchNorm(3, alpha=alpha, v_threshold=v_th, eps=1e-10)
    y = bn(x)
    # statistics over time, batch and space per channel: mean 0, std alpha * V_th
    mean = y.transpose(0, 2).reshape(3, -1).mean(1)
    std = y.transpose(0, 2).reshape(3, -1).std(1, unbiased=False)
    torch.testing.assert_close(mean, torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(std, torch.full((3,), alpha * v_th), atol=1e-5, rtol=1e-5)
    # eq. 8 by hand on one channel
    c = x[:, :, 1]
    want = alpha * v_th * (c - c.mean()) / c.var(unbiased=False).sqrt()
    torch.testing.assert_close(y[:, :, 1], want, atol=1e-5, rtol=1e-5)
    # lambda and beta act after the alpha * V_th scaling
    with torch.no_grad():
        bn.weight.fill_(2.0)
        bn.bias.fill_(0.25)
    torch.testing.assert_close(bn(x), 2 * y + 0.25, atol=1e-5, rtol=1e-5)


def test_tdbn_direct_input_and_eval_and_errors():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 4, 4)
    a, b = ThresholdDependentBatchNorm(2, 0.5), ThresholdDependentBatchNorm(2, 0.5)
    torch.testing.assert_close(a(direct_encode(x, 4)), b(direct_encode(x, 4).contiguous()))
    a.eval()
    y = a(direct_encode(x, 2))
    want = 0.5 * (x - a.running_mean.view(2, 1, 1)) / (a.running_var.view(2, 1, 1) + 1e-5).sqrt()
    torch.testing.assert_close(y[1], want, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"\[T, B, 2, \.\.\.\]"):
        a(torch.randn(2, 3, 5, 4, 4))
    _grads_reach_all(ThresholdDependentBatchNorm(2), torch.randn(2, 3, 2, 4, 4))


# -- residual joins -----------------------------------------------------------------------


def test_residual_joins_on_every_spike_pair():
    a = torch.tensor([0.0, 0.0, 1.0, 1.0]).view(4, 1)  # [T, B]: all four pairs
    s = torch.tensor([0.0, 1.0, 0.0, 1.0]).view(4, 1)
    assert ResidualJoin("add")(a, s).flatten().tolist() == [0, 1, 1, 2]
    assert ResidualJoin("and")(a, s).flatten().tolist() == [0, 0, 0, 1]
    assert ResidualJoin("iand")(a, s).flatten().tolist() == [0, 1, 0, 0]  # (1 - a) * s
    assert ResidualJoin("or")(a, s).flatten().tolist() == [0, 1, 1, 1]  # a + s - a s
    torch.manual_seed(0)
    x, y = torch.rand(3, 2, 5), torch.rand(3, 2, 5)
    torch.testing.assert_close(ResidualJoin("iand")(x, y), (1 - x) * y)
    torch.testing.assert_close(ResidualJoin("or")(x, y), x + y - x * y)
    with pytest.raises(ValueError, match="unknown residual join 'xor'"):
        ResidualJoin("xor")
    with pytest.raises(ValueError, match="differ"):
        ResidualJoin("add")(x, y[:, :1])


def test_membrane_shortcut_adds_membrane_around_a_branch_that_opens_with_the_neuron():
    torch.manual_seed(0)
    lin = nn.Linear(3, 3)
    sn = LIF(tau=2.0, backend="reference")
    block = MembraneShortcut(nn.Sequential(sn, lin))
    u = torch.randn(4, 2, 3) * 2
    # x_{l+1} = x_l + F(SN(x_l)): the shortcut carries the real-valued input itself
    torch.testing.assert_close(block(u), u + lin(sn(u)))
    assert not torch.equal(block(u) - lin(sn(u)), sn(u))


# -- attention ----------------------------------------------------------------------------


def test_ma_snn_equations_on_a_hand_made_input():
    torch.manual_seed(0)
    att = MultiDimensionalAttention(T=3, channels=4, reduction_t=1, reduction_c=2,
                                    zero_init=False)
    u = torch.randn(3, 2, 4, 5, 5)
    f_t = torch.sigmoid(att.temporal(u.mean((2, 3, 4)).t()) + att.temporal(u.amax((2, 3, 4)).t()))
    u1 = u * f_t.t()[:, :, None, None, None]
    f_c = torch.sigmoid(att.channel(u1.mean((0, 3, 4))) + att.channel(u1.amax((0, 3, 4))))
    u2 = u1 * f_c[None, :, :, None, None]
    pooled = torch.stack([u2.mean((0, 2)), u2.amax((0, 2))], 1)
    f_s = torch.sigmoid(att.spatial(pooled))  # [B, 1, H, W]
    want = torch.relu(u2 * f_s[None])
    torch.testing.assert_close(att(u), want)
    _grads_reach_all(att, u)
    # temporal attention alone on a constant input: one weight per (t, b) in (0, 1)
    only_t = MultiDimensionalAttention(3, 4, dims=("temporal",), zero_init=False)
    y = only_t(torch.ones(3, 1, 4, 2, 2))
    w = y[:, 0, 0, 0, 0]
    assert torch.all((w > 0) & (w < 1)) and torch.allclose(y, w.view(3, 1, 1, 1, 1).expand_as(y))
    with pytest.raises(ValueError, match=r"\[3, B, 4, H, W\]"):
        att(torch.randn(2, 2, 4, 5, 5))


def test_ma_snn_gates_start_at_one_half_whatever_the_input_scale():
    # The regression: with random gates, a tiny VGGSNN-MA's temporal gate started at
    # ~1e-9 on its x8 membrane input and silenced the network. Zero-initialised gate
    # logits start every gate at 1/2, so the block is exactly ReLU(u) / 8 at any scale.
    torch.manual_seed(0)
    att = MultiDimensionalAttention(T=2, channels=8, reduction_t=4, reduction_c=16)
    u = torch.randn(2, 3, 8, 6, 6) * 40
    torch.testing.assert_close(att(u), torch.relu(u) / 8)
    for f in (att.temporal_weights(u), att.channel_weights(u), att.spatial_weights(u)):
        assert torch.equal(f, torch.full_like(f, 0.5))
    # the zero logit layers learn at once; the layers before them from the next step on
    (att(u) * torch.randn_like(u)).sum().backward()
    assert all(m.weight.grad.any() for m in (att.temporal.net[2], att.channel.net[2], att.spatial))
    torch.optim.SGD(att.parameters(), lr=1e-5).step()
    att.zero_grad()
    _grads_reach_all(att, u)
    # PyTorch's random initialisation on the same input: gates far from 1/2, so the
    # block's gain at initialisation depends on the draw and the input's scale
    random = MultiDimensionalAttention(T=2, channels=8, reduction_t=4, reduction_c=16,
                                       zero_init=False)
    assert (random.temporal_weights(u) - 0.5).abs().max() > 0.3


def test_tcja_equations_on_a_hand_made_input():
    torch.manual_seed(0)
    att = TemporalChannelJointAttention(T=4, channels=3, kernel_t=3, kernel_c=3)
    x = torch.randn(4, 2, 3, 2, 2)
    z = x.mean((3, 4))  # [T, B, C]
    wt, wc = att.tla.weight, att.cla.weight  # [C, C, kt], [T, T, kc]
    tla = torch.zeros(4, 2, 3)
    cla = torch.zeros(4, 2, 3)
    for t in range(4):
        for c in range(3):
            for j in range(3):  # 'same' padding of an odd kernel: offsets -1, 0, 1
                if 0 <= t + j - 1 < 4:  # TLA: slide along time, mix all channels
                    tla[t, :, c] += (wt[c, :, j] * z[t + j - 1]).sum(-1)
                if 0 <= c + j - 1 < 3:  # CLA: slide along channels, mix all steps
                    cla[t, :, c] += (wc[t, :, j] * z[:, :, c + j - 1].t()).sum(-1)
    want = x * torch.sigmoid(tla * cla)[..., None, None]
    torch.testing.assert_close(att(x), want, atol=1e-5, rtol=1e-5)
    _grads_reach_all(att, x)
    with pytest.raises(ValueError, match="TemporalChannelJointAttention"):
        att(torch.randn(4, 2, 5, 2, 2))


@pytest.mark.parametrize("kt, kc", [(2, 2), (1, 2), (4, 5)])
def test_tcja_even_kernels_pad_as_pytorch_same_without_a_warning(kt, kc, recwarn):
    # the authors' VGGSNN-TCJA uses kernels 2 and 2; 'same' puts the odd zero at the end
    torch.manual_seed(0)
    att = TemporalChannelJointAttention(T=3, channels=5, kernel_t=kt, kernel_c=kc)
    x = torch.randn(3, 2, 5, 2, 2)
    got = att.weights(x)
    assert not [w for w in recwarn if "padding='same'" in str(w.message)]
    tla = nn.Conv1d(5, 5, kt, padding="same", bias=False)
    cla = nn.Conv1d(3, 3, kc, padding="same", bias=False)
    tla.weight.data, cla.weight.data = att.tla.weight.data, att.cla.weight.data
    z = x.mean((3, 4))
    want = torch.sigmoid(tla(z.permute(1, 2, 0)).permute(2, 0, 1)
                         * cla(z.transpose(0, 1)).transpose(0, 1))
    torch.testing.assert_close(got, want)


# -- spiking transformers ---------------------------------------------------------------


def _neurons():
    return (lambda: LIF(backend="reference", detach_reset=True),
            lambda: LIF(v_threshold=0.5, backend="reference", detach_reset=True))


def test_ssa_is_q_kt_v_times_scale_without_softmax():
    torch.manual_seed(0)
    sn, attn_sn = _neurons()
    ssa = SpikingSelfAttention(8, 2, sn, attn_sn)
    q, k, v = ((torch.rand(2, 3, 8, 5) < 0.5).float() for _ in range(3))
    got = ssa.attention(q, k, v)
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        qh, kh, vh = (z[:, :, sl].transpose(-1, -2) for z in (q, k, v))  # [T, B, N, d]
        want = (qh @ kh.transpose(-1, -2)) @ vh * 0.125  # (Q K^T) V s, as in the paper
        torch.testing.assert_close(got[:, :, sl].transpose(-1, -2), want)  # exact on spikes
    x = (torch.rand(2, 3, 8, 5) < 0.5).float()
    assert ssa(x).shape == (2, 3, 8, 5)
    assert set(ssa(x).unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match=r"\[T, B, 8, N\]"):
        ssa(torch.rand(2, 3, 5, 8))


def test_sdsa_is_q_masked_by_spiking_column_sums_of_k_and_v():
    torch.manual_seed(0)
    sn, attn_sn = _neurons()
    sdsa = SpikeDrivenSelfAttention(4, 2, sn, attn_sn)
    q, k, v = ((torch.rand(3, 1, 4, 6) < 0.5).float() for _ in range(3))
    got = sdsa.attention(q, k, v)
    for h in range(2):
        sl = slice(2 * h, 2 * h + 2)
        col = (k[:, :, sl] * v[:, :, sl]).sum(-1, keepdim=True)  # SUM_c over the 6 tokens
        gate = attn_sn()(col)  # SN with threshold 0.5, over time
        torch.testing.assert_close(got[:, :, sl], q[:, :, sl] * gate)
    assert set(got.unique().tolist()) <= {0.0, 1.0}  # only masks: spikes stay spikes
    u = torch.randn(3, 2, 4, 6)
    assert sdsa(u).shape == u.shape
    for m in sdsa.modules():  # BN scale 3: enough spikes that every path is used
        if isinstance(m, ThresholdDependentBatchNorm):
            nn.init.constant_(m.weight, 3.0)
    _grads_reach_all(sdsa, u * 3)


@pytest.mark.parametrize("membrane", [False, True])
def test_patch_splitting_shapes(membrane):
    sn, _ = _neurons()
    sps = SpikingPatchSplitting(2, 16, sn, membrane=membrane, pools=2)
    y = sps(torch.rand(2, 3, 2, 12, 12))
    assert y.shape == (2, 3, 16, 9)  # 12 -> 6 -> 3: 9 tokens of 16 features
    if not membrane:
        assert set(y.unique().tolist()) <= {0.0, 1.0, 2.0}  # spikes + spiking RPE
    with pytest.raises(ValueError, match=r"\[T, B, 2, H, W\]"):
        sps(torch.rand(2, 3, 3, 12, 12))
