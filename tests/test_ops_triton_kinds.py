"""The Triton ALIF and CubaLIF kernels against the reference (the steps of
:mod:`spikeforge.neurons.alif` and :mod:`spikeforge.neurons.cubalif`), in Triton's CPU interpreter:
spikes and final states equal bit for bit, gradients (input and initial state) within
float tolerance, for every reset, detach_reset, decay_input and surrogate in float32 and
a rotation of them in bfloat16, float16 and float64."""

# ruff: noqa: E402  (the environment must be set before triton is imported)
from __future__ import annotations

import itertools
import os

_PREVIOUS = os.environ.get("TRITON_INTERPRET")
os.environ["TRITON_INTERPRET"] = "1"

import pytest
import torch

triton = pytest.importorskip("triton", reason="triton is not installed")

import spikeforge.neurons  # noqa: F401  (registers the reference step of every kind)
from spikeforge.functional.neuron import multistep_reference
from spikeforge.ops import dispatch
from spikeforge.ops.spec import RESET_KINDS, STATE_NAMES, SURROGATE_NAMES, NeuronSpec


@pytest.fixture(autouse=True, scope="module")
def _interpreter():
    """Keep the interpreter on for this module and restore the environment afterwards."""
    os.environ["TRITON_INTERPRET"] = "1"
    yield
    if _PREVIOUS is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = _PREVIOUS


PARAMS = {"alif": (0.4, 0.8, 0.3), "cubalif": (0.3, 0.5)}  # (k, rho, beta), (k_syn, k_mem)


def reference(x, state0, params, spec):
    """The library's reference of the kind (the step registered by its neuron type)."""
    out = multistep_reference(x, state0, params, spec)
    return out.spikes, tuple(out.state)


def make(kind, reset, detach, decay, surrogate, **kw) -> NeuronSpec:
    return NeuronSpec(kind=kind, reset=reset, detach_reset=detach, decay_input=decay,
                      surrogate=surrogate, v_threshold=0.7,
                      v_reset=-0.1 if reset == "hard" else 0.0,
                      alpha={"sigmoid": 3.0, "atan": 1.5, "fast_sigmoid": 4.0}.get(surrogate, 0.8),
                      **kw)


def _tol(dtype):
    if dtype == torch.float64:
        return dict(rtol=1e-9, atol=1e-11)
    if dtype in (torch.float16, torch.bfloat16):
        return dict(rtol=1.6e-2, atol=1e-3)
    return dict(rtol=2e-4, atol=1e-5)


def check(spec, dtype, with_state, need_state=True, shape=(5, 37), seed=0):
    """Triton against :func:`reference` on one random case (inputs around the threshold so
    neurons both fire and stay silent; a loss on spikes and on the final state)."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g) * 0.8 + 0.3).to(dtype)
    n_state = len(STATE_NAMES[spec.kind])
    state0 = [torch.randn(shape[1:], generator=g) * 0.3 for _ in range(n_state)]
    gs = torch.randn(shape, generator=g)
    gst = [torch.randn(shape[1:], generator=g) for _ in range(n_state)]
    results = []
    for backend in ("reference", "triton"):
        xx = x.clone().requires_grad_(True)
        ss = tuple(s.clone().requires_grad_(True) for s in state0) if with_state else None
        if backend == "reference":
            s, fin = reference(xx, ss, PARAMS[spec.kind], spec)
        else:
            s, fin = dispatch.multistep("triton", xx, ss, PARAMS[spec.kind], spec, need_state)
        loss = (s.float() * gs).sum()
        if need_state:
            loss = loss + sum((f.float() * gf).sum() for f, gf in zip(fin, gst))
        loss.backward()
        results.append((s.detach(), fin, xx.grad, None if ss is None else [t.grad for t in ss]))
    (rs, rf, rgx, rg0), (ts, tf, tgx, tg0) = results
    where = f"{spec} {dtype}"
    assert ts.dtype == dtype and torch.equal(ts, rs), f"spikes differ: {where}"
    if need_state:
        for a, b in zip(tf, rf):
            assert a.dtype == b.dtype and torch.equal(a, b.detach()), f"final state: {where}"
    else:
        assert tf is None
    torch.testing.assert_close(tgx, rgx, **_tol(dtype), msg=f"grad x: {where}")
    if with_state:
        for a, b in zip(tg0, rg0):
            torch.testing.assert_close(a, b, **_tol(torch.float32), msg=f"grad state0: {where}")


_COMBOS = list(itertools.product(RESET_KINDS, (False, True), (True, False)))
# every reset x detach x decay combination, the surrogates rotating (each one 2-3 times)
_GRID = [(kind, *combo, SURROGATE_NAMES[(i + j) % 5])
         for j, kind in enumerate(PARAMS) for i, combo in enumerate(_COMBOS)]


@pytest.mark.parametrize("kind,reset,detach,decay,surrogate", _GRID)
def test_every_option_float32(kind, reset, detach, decay, surrogate):
    check(make(kind, reset, detach, decay, surrogate), torch.float32, with_state=True)


@pytest.mark.parametrize("kind", list(PARAMS))
@pytest.mark.parametrize("dtype", (torch.bfloat16, torch.float16, torch.float64))
def test_other_dtypes(kind, dtype):
    check(make(kind, "soft", False, True, "atan"), dtype, with_state=True, seed=1)
    check(make(kind, "hard", True, False, "sigmoid"), dtype, with_state=False, seed=2)


@pytest.mark.parametrize("kind", list(PARAMS))
def test_options_and_shapes(kind):
    """fire_strict (ties at the threshold do not fire), a leak target v_leak, no state
    asked back, and an N-d input with several interpreter blocks."""
    spec = make(kind, "soft", False, True, "triangle", fire_strict=True)
    x = torch.tensor([[0.7, 0.2], [0.0, 0.5], [0.0, 0.0]])  # H = theta exactly at t = 0
    p = (1.0, 0.0, 0.0) if kind == "alif" else (0.0, 1.0)  # H[t] = X[t]
    s, _ = dispatch.multistep("triton", x, None, p, spec)
    ref, _ = reference(x, None, p, spec)
    assert torch.equal(s, ref) and s[0, 0] == 0  # > not >=
    check(spec, torch.float32, with_state=True)
    check(make(kind, "hard", False, False, "fast_sigmoid", v_leak=0.2), torch.float32,
          with_state=False)
    check(make(kind, "none", False, True, "rectangle"), torch.bfloat16, with_state=True,
          need_state=False)
    check(make(kind, "hard", True, True, "atan"), torch.float32, with_state=True,
          shape=(3, 2, 2600))


def test_support_declaration():
    """The backend declares the kinds and options it runs; the rest it refuses by name."""
    cpu = torch.device("cpu")
    for kind in ("if", "lif", "alif", "cubalif"):
        assert dispatch.unsupported("triton", NeuronSpec(kind=kind), torch.float32, cpu) is None
    reason = dispatch.unsupported("triton", NeuronSpec(kind="toy"), torch.float32, cpu)
    assert reason is not None and "'toy'" in reason
    reason = dispatch.unsupported("triton", NeuronSpec(kind="lif", reset="soft", reset_delay=True),
                                  torch.float32, cpu)
    assert reason is not None and "reset_delay" in reason
    reason = dispatch.unsupported("triton", NeuronSpec(kind="alif"), torch.float32, cpu,
                                  (torch.tensor(0.5), 0.9, 0.1))
    assert reason is not None and "'k'" in reason


def test_modules_with_triton_backend_equal_reference():
    """``ALIF(backend="triton")`` and ``CubaLIF(backend="triton")`` give the reference
    module's spikes, final state and gradients."""
    from spikeforge.neurons import ALIF, CubaLIF

    g = torch.Generator().manual_seed(5)
    x = torch.randn((6, 2, 19), generator=g) + 0.4
    for make_neuron in (lambda b: ALIF(tau=2.0, tau_adapt=5.0, beta=0.3, reset="soft", backend=b),
                        lambda b: CubaLIF(tau=2.0, tau_syn=3.0, detach_reset=True, backend=b)):
        outs = []
        for backend in ("reference", "triton"):
            xx = x.clone().requires_grad_(True)
            out = make_neuron(backend)(xx, return_state=True)
            (out.spikes * torch.arange(19.0)).sum().backward()
            outs.append((out.spikes.detach(), tuple(out.state), xx.grad))
        (rs, rst, rg), (ts, tst, tg) = outs
        assert torch.equal(rs, ts) and rs.any()
        assert all(torch.equal(a, b) for a, b in zip(rst, tst))
        torch.testing.assert_close(tg, rg, rtol=2e-4, atol=1e-5)


def test_surrogate_formulas_equal_functional():
    """The Triton kernels' one definition of each surrogate derivative, evaluated on host
    floats, equals :meth:`Surrogate.grad` of :mod:`spikeforge.functional.surrogate`."""
    from spikeforge.functional.surrogate import get_surrogate
    from spikeforge.ops.spec import SurrogateId
    from spikeforge.ops.triton.surrogates import FORMULAS, constants

    z = torch.linspace(-3.0, 3.0, 241, dtype=torch.float64)
    assert set(FORMULAS) == set(SurrogateId)
    for sid, formula in FORMULAS.items():
        for alpha in (0.5, 2.0, 4.0):
            want = get_surrogate(sid.name.lower(), alpha).grad(z)
            got = torch.tensor([formula(float(v), *constants(alpha)) for v in z],
                               dtype=torch.float64)
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12,
                                       msg=f"{sid.name} alpha={alpha}")
