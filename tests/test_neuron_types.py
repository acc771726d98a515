"""Neuron types on the core: ALIF and CubaLIF against hand-computed sequences, gradcheck of
every reference, multi-step == repeated step with named state, the peer options, the
learnable threshold, the registry and config, and a toy type that never reaches a kernel."""

import math
from typing import NamedTuple

import pytest
import torch

from spikeforge.functional.neuron import fire, multistep_reference, reset
from spikeforge.functional.surrogate import Surrogate
from spikeforge.neurons import ALIF, IF, LIF, NEURONS, PLIF, CubaLIF, SpikingNeuron, register_neuron
from spikeforge.neurons.alif import ALIFState
from spikeforge.neurons.cubalif import CubaLIFState
from spikeforge.ops import dispatch
from spikeforge.ops.spec import NeuronSpec


class SmoothSpike(Surrogate):
    """Test-only surrogate whose forward is the smooth primal, so gradcheck sees a
    differentiable function and checks every gradient path of a reference."""

    name = "smooth"
    default_alpha = 2.0

    def primal(self, x):
        return torch.sigmoid(self.alpha * x)

    def grad(self, x):
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1 - s)

    def __call__(self, x):
        return self.primal(x)

    def spike(self, x, strict=False):
        return self.primal(x)


def col(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype).reshape(-1, 1)


# Worked out by hand from the docstring equations (every value exact in binary).
@pytest.mark.parametrize("reset_kind, v_final", [("hard", 0.0), ("soft", 0.125)])
def test_alif_hand_computed(reset_kind, v_final):
    # k = rho = beta = 1/2, V_th = 1. Soft: t0 H=1 th=1 S V=0 A=1 | t1 H=1 th=1.5 V=1 A=.5 |
    # t2 H=1.5 th=1.25 S V=.25 A=1.25 | t3 H=1.125 th=1.625 | t4 H=.5625 th=1.3125 |
    # t5 H=1.28125 th=1.15625 S V=.125 A=1.15625 (hard: V=0 after each spike, same S).
    spec = NeuronSpec(kind="alif", reset=reset_kind)
    out = multistep_reference(col([2, 2, 2, 2, 0, 2]), None, (0.5, 0.5, 0.5), spec)
    assert out.spikes.flatten().tolist() == [1, 0, 1, 0, 0, 1]
    assert isinstance(out.state, ALIFState)
    assert out.state.v.item() == v_final and out.state.a.item() == 1.15625
    # beta = 0 is LIF: it fires on every drive of 2 from rest
    lif = multistep_reference(col([2, 2, 2, 2, 0, 2]), None, (0.5, 0.5, 0.0), spec)
    assert lif.spikes.flatten().tolist() == [1, 1, 1, 1, 0, 1]


def test_cubalif_hand_computed():
    # k_syn = k_mem = 1/2, hard reset to 0: t0 I=1 H=.5 | t1 I=1.5 H=1 S V=0 | t2 I=.75
    # H=.375 | t3 I=.375 H=.375 | t4 I=.1875 H=.28125 | t5 I=.09375 H=.1875.
    out = CubaLIF(tau=2.0, tau_syn=2.0, backend="reference")(
        col([1, 1, 0, 0, 0, 0]), return_state=True
    )
    assert out.spikes.flatten().tolist() == [0, 1, 0, 0, 0, 0]
    assert isinstance(out.state, CubaLIFState)
    assert (out.state.i.item(), out.state.v.item()) == (0.09375, 0.1875)
    # the same input never reaches threshold in a LIF (no current carries it over)
    assert LIF(tau=2.0, backend="reference")(col([1, 1, 0, 0, 0, 0])).sum() == 0
    # tau_syn = 1: the current is the input, and CubaLIF is LIF
    x = torch.randn(20, 3, 4) * 1.5
    assert torch.equal(CubaLIF(tau=3.0, tau_syn=1.0, backend="reference")(x),
                       LIF(tau=3.0, backend="reference")(x))


def test_module_parameter_mapping():
    assert ALIF(tau=4.0, tau_adapt=10.0, beta=0.3).params() == (0.25, math.exp(-0.1), 0.3)
    assert CubaLIF(tau=4.0, tau_syn=8.0).params() == (0.125, 0.25)
    assert isinstance(ALIF(), SpikingNeuron) and ALIF().tau == 2.0
    assert LIF().params() == (0.5,) and IF().params() == ()


@pytest.mark.parametrize("v_reset", [-0.25, 0.375])
def test_rest_state_is_v_reset_or_v_leak(v_reset):
    x = torch.zeros(3, 2)
    out = LIF(v_reset=v_reset)(x, return_state=True)
    assert torch.equal(out.v, torch.full((2,), v_reset))  # rest: no drift from V_rest
    out = LIF(v_reset=v_reset, v_leak=0.5, v_threshold=2.0)(x, return_state=True)
    assert torch.allclose(out.v, torch.full((2,), 0.5))
    s, st = ALIF(v_reset=v_reset).step(torch.zeros(2))
    assert st.v.tolist() == [v_reset] * 2 and st.a.tolist() == [0.0, 0.0]


def test_reset_delay_hand_computed():
    # snnTorch's default Leaky, beta = 1/2 (k = 1/2, no input decay), thr 1, strict,
    # mem[t] = mem/2 + x - S[t-1]: 1.5 (S) | .75 + .5 - 1 = .25 | .125 + 2 = 2.125 (S) |
    # 1.0625 - 1 = .0625 | .03125 + 1 = 1.03125 (S) | .515625 + 3 - 1 = 2.515625 (S)
    lif = LIF(tau=2.0, decay_input=False, v_reset=None, fire_strict=True, reset_delay=True)
    out = lif(col([1.5, 0.5, 2.0, 0.0, 1.0, 3.0], torch.float32), record_membrane=True)
    mem = [1.5, 0.25, 2.125, 0.0625, 1.03125, 2.515625]
    assert out.v_seq.flatten().tolist() == mem
    assert out.spikes.flatten().tolist() == [1, 0, 1, 0, 1, 1]
    # the same neuron without the delay resets at once: 1.5->.5 | .75 | 2.375->1.375 ...
    now = LIF(tau=2.0, decay_input=False, v_reset=None, fire_strict=True)
    assert now(col([1.5, 0.5, 2.0], torch.float32), record_membrane=True).v_seq.flatten(
    ).tolist() == [0.5, 0.75, 1.375]


def test_fire_strict_ties():
    x = torch.tensor([[1.0], [0.0]])
    # H = V_th fires (>=), like SpikingJelly; snnTorch and Norse fire at >
    assert IF(backend="reference")(x).flatten().tolist() == [1, 0]
    assert IF(fire_strict=True)(x).flatten().tolist() == [0, 0]


GRADCHECK = {
    "lif": (lambda: NeuronSpec(kind="lif", reset="soft", v_threshold=0.7), 1, (0.4,)),
    "lif-vleak-hard": (
        lambda: NeuronSpec(kind="lif", reset="hard", v_reset=-0.2, v_leak=0.1), 1, (0.3,)),
    "lif-reset-delay": (
        lambda: NeuronSpec(kind="lif", reset="soft", reset_delay=True, decay_input=False),
        1, (0.25,)),
    "if": (lambda: NeuronSpec(kind="if", reset="hard", v_reset=0.1), 1, ()),
    "alif-soft": (lambda: NeuronSpec(kind="alif", reset="soft"), 2, (0.4, 0.8, 0.3)),
    "alif-hard": (lambda: NeuronSpec(kind="alif", reset="hard", v_reset=-0.1), 2,
                  (0.5, 0.6, 0.2)),
    "cubalif": (lambda: NeuronSpec(kind="cubalif", reset="soft"), 2, (0.3, 0.4)),
    "cubalif-nodecay": (lambda: NeuronSpec(kind="cubalif", reset="hard", decay_input=False),
                        2, (0.5, 0.25)),
}


@pytest.mark.parametrize("case", sorted(GRADCHECK))
def test_gradcheck_reference_float64(case):
    make_spec, n_state, params = GRADCHECK[case]
    spec = make_spec()
    torch.manual_seed(3)
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    state0 = tuple(torch.randn(3, dtype=torch.float64, requires_grad=True) * 0.3
                   for _ in range(n_state))
    state0 = tuple(s.detach().requires_grad_() for s in state0)
    theta = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)

    def f(x, theta, *state0):
        out = multistep_reference(x, state0, params, spec, SmoothSpike(), theta=theta)
        return (out.spikes, *out.state)

    assert torch.autograd.gradcheck(f, (x, theta, *state0))


# (the first two also run their fused CPU kernels, compared with the reference)
STEP_PARITY = [
    lambda: ALIF(tau=3.0, tau_adapt=5.0, beta=0.4),
    lambda: CubaLIF(tau=2.0, tau_syn=4.0),
    lambda: ALIF(v_reset=None, detach_reset=True, surrogate="sigmoid", backend="reference"),
    lambda: CubaLIF(v_reset=None, decay_input=False, reset_delay=True, fire_strict=True),
    lambda: LIF(v_reset=-0.3, v_leak=0.2),
    lambda: LIF(decay_input=False, v_reset=None, reset_delay=True),
    lambda: LIF(learn_threshold=True, channels=5),
    lambda: PLIF(learn_threshold=True),
]


@pytest.mark.parametrize("make", STEP_PARITY)
def test_multistep_equals_repeated_step_named_state(make):
    torch.manual_seed(0)
    neuron = make()
    x = torch.randn(7, 3, 5) * 1.5
    fields = neuron.State._fields
    state0 = neuron.State(*(torch.randn(3, 5) * 0.5 for _ in fields))
    out = neuron(x, state0, return_state=True, record_membrane=True)
    assert type(out.state) is neuron.State
    state = state0
    for t in range(x.shape[0]):
        s, state = neuron.step(x[t], state)
        assert type(state) is neuron.State
        assert torch.equal(s, out.spikes[t])
        assert torch.equal(state.v, out.v_seq[t])
    for a, b in zip(state, out.state):
        assert torch.equal(a, b)
    # the fused path (where one runs this type) agrees with the reference
    fused = neuron(x, state0, return_state=True)
    assert torch.equal(fused.spikes, out.spikes)
    for a, b in zip(fused.state, out.state):
        torch.testing.assert_close(a, b)
    spec = neuron.spec
    if isinstance(neuron, (ALIF, CubaLIF)) and not (spec.reset_delay or spec.fire_strict
                                                     or neuron.backend != "auto"):
        assert neuron._backend_for(x, neuron.params()) == "cpu"


def test_state_errors_name_the_state():
    with pytest.raises(TypeError, match=r"ALIFState\('v', 'a'\).*not a bare tensor"):
        ALIF()(torch.rand(3, 2), torch.zeros(2))
    with pytest.raises(ValueError, match=r"state a has shape \(3,\), expected \(2,\)"):
        ALIF()(torch.rand(3, 2), (torch.zeros(2), torch.zeros(3)))
    with pytest.raises(ValueError, match="got 1 value"):
        CubaLIF().step(torch.rand(2), (torch.zeros(2),))


def test_learnable_threshold_per_channel():
    torch.manual_seed(4)
    x = torch.rand(6, 2, 3, 4) * 2
    lif = LIF(learn_threshold=True, channels=3)
    with torch.no_grad():
        lif.threshold.copy_(torch.tensor([0.5, 1.0, 1.5]))
    s = lif(x)
    for c, th in enumerate([0.5, 1.0, 1.5]):
        assert torch.equal(s[:, :, c], LIF(v_threshold=th, backend="reference")(x[:, :, c]))
    s.sum().backward()
    assert lif.threshold.grad.shape == (3,) and (lif.threshold.grad != 0).all()
    with pytest.raises(ValueError, match="3 channels"):
        lif(torch.rand(2, 2, 4))
    with pytest.raises(ValueError, match="learnable .*threshold"):
        LIF(learn_threshold=True, backend="cpu")


class ToyState(NamedTuple):
    v: torch.Tensor
    count: torch.Tensor


def toy_step(x, state, params, spec, surrogate, theta=None):
    """Toy: ``H = V/2 + X``, fire, reset; ``count`` counts spikes."""
    h = 0.5 * state.v + x
    s = fire(h, spec.v_threshold if theta is None else theta, spec, surrogate)
    return s, ToyState(reset(h, s, spec, theta), state.count + s)


class Toy(SpikingNeuron):
    kernel = None
    State = ToyState
    step_fn = staticmethod(toy_step)

    def __init__(self, v_threshold: float = 1.0, backend: str = "auto", **options) -> None:
        super().__init__(v_threshold, backend=backend, **options)
        self._check_backend()


@pytest.fixture
def toy():
    register_neuron("toy")(Toy)
    yield Toy
    NEURONS.pop("toy")


def test_toy_type_never_reaches_a_kernel(toy, monkeypatch):
    def no_kernel(*args, **kwargs):
        raise AssertionError("a kernel was called for a type without one")

    monkeypatch.setattr(dispatch, "multistep", no_kernel)
    x = torch.rand(5, 2, 3) * 2
    out = toy()(x, return_state=True)
    st = ToyState(torch.zeros(2, 3), torch.zeros(2, 3))
    for t in range(5):
        s, st = toy_step(x[t], st, (), toy().spec, toy().surrogate)
        assert torch.equal(s, out.spikes[t])
    assert torch.equal(out.state.count, out.spikes.sum(0))
    for dtype in (torch.float16, torch.float64):
        toy()(x.to(dtype))
    # both kernels refuse it, naming the type; explicit backends are errors
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    for backend in ("cpu", "triton"):
        assert "'toy'" in dispatch.unsupported(backend, toy().spec, torch.float32, "cpu", ())
        with pytest.raises(ValueError, match="'toy'"):
            toy(backend=backend)


def test_toy_type_from_config(toy):
    from spikeforge.models.zoo import neuron_factory
    from spikeforge.train.config import ConfigError, config_from_dict

    cfg = config_from_dict({"model": {"neuron": "toy", "neuron_params": {"fire_strict": True}}})
    neuron = neuron_factory(cfg.model)()
    assert isinstance(neuron, Toy) and neuron.spec.fire_strict
    with pytest.raises(ConfigError, match="neuron_params.tau_syn for neuron 'toy'"):
        config_from_dict({"model": {"neuron": "toy", "neuron_params": {"tau_syn": 2}}})


def test_type_claiming_a_kernel_with_its_own_step_is_refused():
    class FakeLIF(LIF):
        step_fn = staticmethod(toy_step)
        State = ToyState

    with pytest.raises(ValueError, match="already has a reference step"):
        register_neuron("fake_lif")(FakeLIF)
    assert "fake_lif" not in NEURONS


def test_registry_config_and_factory():
    from spikeforge.models.zoo import neuron_factory
    from spikeforge.train.config import ConfigError, config_from_dict

    cfg = config_from_dict({"model": {"neuron": "alif", "tau": 3.0,
                                      "neuron_params": {"beta": 0.5}}})
    assert cfg.model.neuron_params == {"tau_adapt": 20.0, "beta": 0.5}
    n = neuron_factory(cfg.model)()
    assert type(n) is ALIF and (n.tau, n.beta, n.tau_adapt) == (3.0, 0.5, 20.0)
    cfg = config_from_dict({"model": {"neuron": "plif", "tau": 3.0}})
    assert neuron_factory(cfg.model)().tau == pytest.approx(3.0)
    assert type(neuron_factory(config_from_dict({"model": {"neuron": "if"}}).model)()) is IF
    with pytest.raises(ConfigError, match=r"neuron_params.beta must be a number"):
        config_from_dict({"model": {"neuron": "alif", "neuron_params": {"beta": "x"}}})
    with pytest.raises(ConfigError, match="beta must be a number >= 0"):
        config_from_dict({"model": {"neuron": "alif", "neuron_params": {"beta": -1}}})
