"""The CPU backend's two-state kinds (ALIF, CubaLIF) against the neuron types' reference:
exact spikes and final state, gradients to x and both initial states within float
tolerance; and the kernels' surrogate formulas against spikeforge.functional.surrogate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_ops_oracle import HALF, random_input

import spikeforge.neurons  # noqa: F401 - registers the ALIF and CubaLIF references
from spikeforge.functional.neuron import multistep_reference
from spikeforge.functional.surrogate import SURROGATES
from spikeforge.ops import dispatch
from spikeforge.ops.spec import RESET_KINDS, SURROGATE_NAMES, NeuronSpec, SurrogateId

pytestmark = pytest.mark.skipif(
    not dispatch.is_available("cpu", torch.device("cpu")),
    reason=str(dispatch.unavailable_reason("cpu", torch.device("cpu"))),
)

PARAMS = {"alif": (0.4, 0.8, 0.3), "cubalif": (0.3, 0.45)}


def reference(x, state0, params, spec):
    """The neuron types' reference (spikeforge.functional.neuron's loop of the ALIF /
    CubaLIF step): ``(spikes, final state tuple)``; a ``None`` entry of ``state0`` is that
    state's rest value."""
    if state0 is not None:
        cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
        state0 = tuple(torch.full(x.shape[1:], r, dtype=cdt) if s is None else s
                       for r, s in zip(spec.rest_state(), state0))
    out = multistep_reference(x, state0, params, spec)
    return out.spikes, tuple(out.state)


def _tol(dtype):
    if dtype == torch.float64:
        return dict(rtol=1e-9, atol=1e-11)
    if dtype in HALF:
        return dict(rtol=1.6e-2, atol=1e-3)
    return dict(rtol=2e-4, atol=1e-5)


def check(x, state0, spec):
    """Spikes and final state exactly equal the reference's; gradients close."""
    params = PARAMS[spec.kind]
    outs = []
    for fn in (reference, lambda *a: dispatch.multistep("cpu", *a)):
        xx = x.detach().clone().requires_grad_(True)
        ss = None if state0 is None else tuple(
            None if s is None else s.detach().clone().requires_grad_(True) for s in state0)
        s, st = fn(xx, ss, params, spec)
        g = torch.Generator().manual_seed(1)
        gs = torch.randn(s.shape, generator=g)
        loss = (s.to(st[0].dtype) * gs.to(st[0].dtype)).sum()
        loss = loss + sum((f * torch.randn(f.shape, generator=g, dtype=f.dtype)).sum()
                          for f in st)
        loss.backward()
        outs.append((s.detach(), [f.detach() for f in st], xx.grad,
                     None if ss is None else [None if q is None else q.grad for q in ss]))
    (rs, rst, rgx, rgs), (fs, fst, fgx, fgs) = outs
    assert fs.dtype == x.dtype and torch.equal(fs, rs), f"spikes differ ({spec}, {x.dtype})"
    for a, b in zip(fst, rst):
        assert a.dtype == b.dtype and torch.equal(a, b), f"final state differs ({spec})"
    torch.testing.assert_close(fgx, rgx, **_tol(x.dtype), msg=f"grad x {spec} {x.dtype}")
    if rgs is not None:
        for a, b in zip(fgs, rgs):
            if b is None:
                assert a is None
                continue
            tol = _tol(torch.float64 if a.dtype == torch.float64 else torch.float32)
            torch.testing.assert_close(a, b, **tol, msg=f"grad state0 {spec}")
    assert rs.any() and not rs.all()  # the input makes neurons both fire and stay silent


def make_spec(kind, reset, detach, decay, surrogate, **kw):
    return NeuronSpec(kind=kind, reset=reset, detach_reset=detach, decay_input=decay,
                      surrogate=surrogate, v_threshold=0.7,
                      v_reset=-0.1 if reset == "hard" else 0.0,
                      alpha={"sigmoid": 3.0, "atan": 1.5, "fast_sigmoid": 4.0}.get(surrogate,
                                                                                   0.8), **kw)


# Every reset with and without detach_reset, decay_input alternating, the surrogate
# rotating: each option value at least once, at half the compilations of the full product
# (row functions are compiled per (kind, decay_input, reset) and (kind, decay_input,
# surrogate)).
GRID = [(reset, detach, (i + j) % 2 == 0)
        for i, reset in enumerate(RESET_KINDS) for j, detach in enumerate((False, True))]


@pytest.mark.parametrize("kind", ("alif", "cubalif"))
def test_every_option_matches_reference(kind):
    """Every reset, detach_reset and decay_input, every surrogate at least once; from
    the rest state and from given states; T = 5, odd N."""
    for n, (reset, detach, decay) in enumerate(GRID):
        spec = make_spec(kind, reset, detach, decay, SURROGATE_NAMES[n % 5])
        x = random_input((5, 37), torch.float32, seed=n)
        check(x, None, spec)
        state0 = (random_input((37,), torch.float32, seed=50 + n) * 0.5,
                  random_input((37,), torch.float32, seed=70 + n).abs() * 0.5)
        check(x, state0, spec)


# One kind per storage format, alternating: the two kinds share the loads, stores and
# compute type of a format, and each (kind, format) pair costs ~15 s of cold compilation.
@pytest.mark.parametrize("dtype,kind", ((torch.float64, "cubalif"), (torch.bfloat16, "alif"),
                                        (torch.float16, "cubalif")))
def test_dtypes_match_reference(dtype, kind):
    spec = make_spec(kind, "soft", False, True, "sigmoid", v_leak=0.05)
    state0 = (random_input((29,), torch.float32, seed=3) * 0.5, None)
    check(random_input((6, 29), dtype, seed=4), state0, spec)


def test_noncontiguous_nd_and_parallel_input():
    for kind in ("alif", "cubalif"):
        spec = make_spec(kind, "hard", True, True, "atan")
        x = random_input((4, 6, 3, 7), torch.float32, seed=5).transpose(1, 3)
        assert not x.is_contiguous()
        check(x, None, spec)
        check(random_input((3, 100_000), torch.float32, seed=6), None, spec)  # parallel driver


_HARNESS = []


def _surrogate_harness():
    """A numba loop over the kernels' ``surrogate_grad`` (compiled once per dtype)."""
    if not _HARNESS:
        from numba import njit

        from spikeforge.ops.cpu.surrogates import surrogate_grad

        @njit
        def grads(z, surr, alpha, c1, c2, inv_alpha, out):
            one, zero = z.dtype.type(1), z.dtype.type(0)
            for i in range(z.shape[0]):
                out[i] = surrogate_grad(z[i], surr, alpha, c1, c2, one, zero, inv_alpha)

        _HARNESS.append(grads)
    return _HARNESS[0]


@pytest.mark.parametrize("name", SURROGATE_NAMES)
def test_kernel_surrogates_equal_the_definitions(name):
    """The one place the CPU kernels define each surrogate (ops/cpu/surrogates.py) gives
    functional/surrogate.py's derivative, in float32 and float64."""
    grads = _surrogate_harness()
    sur = SURROGATES[name](1.7)
    for np_dt, t_dt in ((np.float32, torch.float32), (np.float64, torch.float64)):
        z = torch.linspace(-3, 3, 601, dtype=t_dt)
        out = np.empty(601, dtype=np_dt)
        a = sur.alpha
        grads(z.numpy(), int(SurrogateId[name.upper()]), np_dt(a), np_dt(np.pi / 2 * a),
              np_dt(a / 2), np_dt(1 / a), out)
        tol = dict(rtol=1e-6, atol=1e-7) if np_dt is np.float32 else dict(rtol=1e-12, atol=0)
        torch.testing.assert_close(torch.from_numpy(out), sur.grad(z), **tol)
