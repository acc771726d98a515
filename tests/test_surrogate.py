"""Surrogate gradients: Heaviside forward, each derivative against its analytic primal."""

import pytest
import torch

from spikeforge.functional.surrogate import SURROGATES, Surrogate, get_surrogate, heaviside

NAMES = sorted(SURROGATES)


@pytest.mark.parametrize("name", NAMES)
def test_forward_is_heaviside(name):
    x = torch.tensor([-2.0, -1e-6, 0.0, 1e-6, 3.0])
    assert torch.equal(get_surrogate(name)(x), torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0]))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("alpha", [None, 0.5, 3.0])
def test_grad_matches_finite_difference_of_primal(name, alpha):
    sg = get_surrogate(name, alpha)
    # Points away from the kinks of the piecewise surrogates (|x| = alpha/2 or alpha).
    x = torch.linspace(-2.1, 2.1, 181, dtype=torch.float64)
    kinks = torch.tensor([sg.alpha / 2, sg.alpha, 0.0], dtype=torch.float64)
    x = x[(x.abs().unsqueeze(1) - kinks).abs().min(1).values > 1e-3]
    eps = 1e-6
    fd = (sg.primal(x + eps) - sg.primal(x - eps)) / (2 * eps)
    torch.testing.assert_close(sg.grad(x), fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_backward_uses_surrogate_grad(name):
    sg = get_surrogate(name)
    x = torch.randn(50, dtype=torch.float64, requires_grad=True)
    g = torch.randn(50, dtype=torch.float64)
    sg(x).backward(g)
    torch.testing.assert_close(x.grad, g * sg.grad(x.detach()))


@pytest.mark.parametrize("name", NAMES)
def test_grad_integrates_to_one(name):
    # A surrogate stands in for the Dirac delta: its integral over R is 1
    # (fast_sigmoid's primal x/(1+a|x|) spans 2/a, so its integral is 2/a).
    sg = get_surrogate(name)
    x = torch.linspace(-400, 400, 2_000_001, dtype=torch.float64)
    total = torch.trapezoid(sg.grad(x), x).item()
    expected = 2 / sg.alpha if name == "fast_sigmoid" else 1.0
    assert total == pytest.approx(expected, rel=2e-2)


def test_analytic_values():
    x = torch.tensor([0.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(get_surrogate("atan", 2.0).grad(x), torch.tensor(
        [1.0, 1.0 / (1 + (torch.pi / 2) ** 2)], dtype=torch.float64))
    torch.testing.assert_close(get_surrogate("sigmoid", 4.0).grad(x)[0].item(), 1.0)
    torch.testing.assert_close(get_surrogate("rectangle", 1.0).grad(x), torch.tensor(
        [1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(get_surrogate("triangle", 1.0).grad(x), torch.tensor(
        [1.0, 0.5], dtype=torch.float64))
    torch.testing.assert_close(get_surrogate("fast_sigmoid", 10.0).grad(x), torch.tensor(
        [1.0, 1 / 36], dtype=torch.float64))


def test_bad_names_and_alpha():
    with pytest.raises(ValueError, match="unknown surrogate 'relu'"):
        get_surrogate("relu")
    with pytest.raises(ValueError, match="alpha must be a positive"):
        get_surrogate("atan", -1.0)
    with pytest.raises(ValueError, match="not both"):
        get_surrogate(get_surrogate("atan"), 2.0)


def test_custom_surrogate_is_not_fused_and_heaviside_helper():
    class Erf(Surrogate):
        name = "erf"

        def primal(self, x):
            return 0.5 * (1 + torch.erf(x))

        def grad(self, x):
            return torch.exp(-x * x) / torch.pi**0.5

    assert not Erf().fused
    assert get_surrogate("atan").fused
    x = torch.tensor([-1.0, 1.0])
    assert torch.equal(heaviside(x, Erf()), torch.tensor([0.0, 1.0]))
