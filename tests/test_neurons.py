"""Reference neuron dynamics: hand-computed spikes, step/multi-step parity, gradients, errors."""

import pytest
import torch

from spikeforge.functional import multistep_reference
from spikeforge.functional.surrogate import Surrogate, get_surrogate
from spikeforge.neurons import IF, LIF, PLIF
from spikeforge.ops.spec import NeuronSpec

X = [1.5, 0.5, 2.0, 0.0, 1.0, 3.0]

# (constructor, expected spikes, expected final membrane), each worked out by hand
# from the update equations in spikeforge/ops/spec.py (all values exact in binary).
CASES = {
    "if-hard": (lambda **kw: IF(**kw, v_reset=0.0), [1, 0, 1, 0, 1, 1], 0.0),
    "if-soft": (lambda **kw: IF(**kw, v_reset=None), [1, 1, 1, 1, 1, 1], 2.0),
    "if-none": (lambda **kw: IF(**kw, v_threshold=3.0, reset="none"), [0, 0, 1, 1, 1, 1], 8.0),
    "lif-hard": (lambda **kw: LIF(**kw, tau=2.0), [0, 0, 1, 0, 0, 1], 0.0),
    "lif-hard-nodecayinput": (
        lambda **kw: LIF(**kw, tau=2.0, decay_input=False), [1, 0, 1, 0, 1, 1], 0.0
    ),
    "lif-soft": (lambda **kw: LIF(**kw, tau=2.0, v_reset=None), [0, 0, 1, 0, 0, 1], 0.7890625),
    "lif-hard-vreset": (lambda **kw: LIF(**kw, tau=2.0, v_reset=-0.5), [0, 0, 0, 0, 0, 1], -0.5),
    "lif-none": (lambda **kw: LIF(**kw, tau=2.0, reset="none"), [0, 0, 1, 0, 0, 1], 1.9140625),
    "lif-soft-nodecayinput": (
        lambda **kw: LIF(**kw, tau=2.0, v_reset=None, decay_input=False), [1, 0, 1, 0, 1, 1],
        2.171875,
    ),
    "plif-hard": (lambda **kw: PLIF(**kw, init_tau=2.0), [0, 0, 1, 0, 0, 1], 0.0),
    "lif-hard-detach": (
        lambda **kw: LIF(**kw, tau=2.0, detach_reset=True), [0, 0, 1, 0, 0, 1], 0.0
    ),
}


# The reference in every dtype; the default backend (the CPU kernel) in float32. The
# kernels in the other dtypes equal the reference spike for spike in test_ops_cpu.py,
# which compiles fewer of their variants than every case here in every dtype would.
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype,backend", [(torch.float32, "auto"), (torch.float32, "reference"),
                                           (torch.float64, "reference"),
                                           (torch.bfloat16, "reference"),
                                           (torch.float16, "reference")])
def test_hand_computed_spikes(case, dtype, backend):
    make, spikes, v_final = CASES[case]
    x = torch.tensor(X, dtype=dtype).reshape(6, 1)
    out = make(backend=backend)(x, return_state=True)
    assert out.spikes.dtype == dtype
    assert out.spikes.flatten().tolist() == spikes
    assert out.v.item() == v_final


def test_soft_nodecayinput_trace():
    # H = V/2 + x, soft reset: 1.5->V .5 | .75->.75 | 2.375->1.375 | .6875 | 1.34375->.34375
    # | 3.171875 -> 2.171875 (spike). Check the recorded membrane too.
    out = LIF(tau=2.0, v_reset=None, decay_input=False)(
        torch.tensor([1.5, 0.5, 2.0, 0.0, 1.0, 3.0]).reshape(6, 1) * torch.tensor([1.0, 0.0]),
        record_membrane=True,
    )
    assert out.spikes[:, 0].tolist() == [1, 0, 1, 0, 1, 1]
    assert out.v_seq[:, 0].tolist() == [0.5, 0.75, 1.375, 0.6875, 0.34375, 2.171875]
    assert out.spikes[:, 1].sum() == 0 and out.v_seq[:, 1].abs().sum() == 0


ALL_NEURONS = [
    lambda: IF(),
    lambda: IF(v_reset=None),
    lambda: LIF(tau=3.0, decay_input=False),
    lambda: LIF(tau=2.0, v_reset=-0.3, detach_reset=True, surrogate="sigmoid"),
    lambda: LIF(tau=4.0, reset="none", surrogate="triangle"),
    lambda: PLIF(init_tau=3.0, v_reset=None),
]


@pytest.mark.parametrize("make", ALL_NEURONS)
def test_multistep_equals_repeated_step(make):
    torch.manual_seed(0)
    neuron = make()
    x = torch.randn(7, 3, 5) * 1.5
    v0 = torch.randn(3, 5) * 0.5
    out = neuron(x, v0, return_state=True, record_membrane=True)
    state = v0  # one-variable types take a bare tensor and return LIFState(v)
    for t in range(x.shape[0]):
        s, state = neuron.step(x[t], state)
        assert torch.equal(s, out.spikes[t])
        assert torch.equal(state.v, out.v_seq[t])
    assert torch.equal(state.v, out.v)


def test_stateless_between_calls():
    neuron = LIF()
    x = torch.rand(5, 4, 3) * 2
    a = neuron(x)
    neuron(torch.rand(5, 9, 3) * 2)  # another batch size in between
    assert torch.equal(neuron(x), a)
    # starting from the final state of the first half equals one long run
    full = neuron(x, return_state=True)
    first = neuron(x[:2], return_state=True)
    second = neuron(x[2:], first.v)
    assert torch.equal(torch.cat([first.spikes, second]), full.spikes)


class SmoothSpike(Surrogate):
    """Test-only surrogate whose *forward* is the smooth primal, so the neuron is a
    differentiable function and gradcheck can verify every gradient path."""

    name = "smooth"
    default_alpha = 2.0

    def primal(self, x):
        return torch.sigmoid(self.alpha * x)

    def grad(self, x):
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1 - s)

    def __call__(self, x):
        return self.primal(x)


@pytest.mark.parametrize("reset", ["hard", "soft", "none"])
@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("kind", ["lif", "if"])
def test_gradcheck_reference_float64(reset, decay_input, kind):
    torch.manual_seed(1)
    spec = NeuronSpec(kind=kind, v_threshold=0.8, v_reset=-0.1, reset=reset,
                      decay_input=decay_input)
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    v0 = torch.randn(4, dtype=torch.float64, requires_grad=True)
    k = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)

    def f(x, v0, k):
        out = multistep_reference(x, v0, k, spec, SmoothSpike())
        return out.spikes, out.v

    assert torch.autograd.gradcheck(f, (x, v0, k))


def test_detach_reset_removes_reset_gradient():
    spec = NeuronSpec(kind="if", reset="hard", detach_reset=True)
    x = torch.tensor([[2.0]], dtype=torch.float64, requires_grad=True)
    out = multistep_reference(x, None, 1.0, spec, get_surrogate("atan"))
    out.v.sum().backward()
    # V = H (1 - S) + 0 * S with S detached and S = 1: dV/dx = 1 - S = 0
    assert x.grad.item() == 0.0
    x.grad = None
    spec2 = NeuronSpec(kind="if", reset="hard", detach_reset=False)
    out = multistep_reference(x, None, 1.0, spec2, get_surrogate("atan"))
    out.v.sum().backward()
    # not detached: dV/dx = (1 - S) - H * sg'(H - 1) = -2 * atan'(1)
    expected = -2.0 * get_surrogate("atan").grad(torch.tensor(1.0, dtype=torch.float64))
    assert x.grad.item() == pytest.approx(expected.item())


def test_plif_leak_gradient_matches_finite_difference():
    torch.manual_seed(2)
    x = torch.randn(6, 8, dtype=torch.float64)
    spec = NeuronSpec(kind="lif", reset="none")

    def loss(w):
        return multistep_reference(x, None, torch.sigmoid(w), spec, SmoothSpike()).v.sum()

    w = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    loss(w).backward()
    eps = 1e-6
    fd = (loss(torch.tensor(0.3 + eps, dtype=torch.float64))
          - loss(torch.tensor(0.3 - eps, dtype=torch.float64))) / (2 * eps)
    assert w.grad.item() == pytest.approx(fd.item(), rel=1e-6)


def test_plif_learns_tau():
    neuron = PLIF(init_tau=2.0)
    assert neuron.tau == pytest.approx(2.0)
    x = torch.rand(8, 16) * 2
    neuron(x).sum().backward()
    assert neuron.w.grad is not None and neuron.w.grad.item() != 0.0


def test_bad_inputs_give_clear_errors():
    lif = LIF()
    with pytest.raises(ValueError, match=r"time-first \[T, B, \.\.\.\].*shape \(5,\)"):
        lif(torch.rand(5))
    with pytest.raises(TypeError, match="floating tensor.*torch.int64"):
        lif(torch.ones(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"state v has shape \(3,\), expected \(2,\)"):
        lif(torch.rand(4, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="T = 0"):
        lif(torch.rand(0, 2))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        lif([1.0, 2.0])
    with pytest.raises(ValueError, match="tau must be a number >= 1"):
        LIF(tau=0.5)
    with pytest.raises(ValueError, match="unknown surrogate"):
        LIF(surrogate="nope")
    with pytest.raises(ValueError, match="needs a v_reset"):
        LIF(v_reset=None, reset="hard")
    with pytest.raises(ValueError, match="reset must be one of"):
        LIF(reset="weird")
    with pytest.raises(ValueError, match="backend must be one of"):
        LIF(backend="cuda-magic")
    with pytest.raises(ValueError, match="step\\(\\): state v has shape"):
        lif.step(torch.rand(2, 3), torch.zeros(3))


def test_custom_surrogate_cannot_use_fused_backend():
    class Erf(Surrogate):
        name = "erf"

        def grad(self, x):
            return torch.exp(-x * x)

    with pytest.raises(ValueError, match="needs backend='reference'"):
        LIF(surrogate=Erf(), backend="cpu")
    # auto picks the reference for it
    s = LIF(surrogate=Erf())(torch.rand(3, 2) * 3)
    assert s.shape == (3, 2)
