"""The oracle check shared by tests/test_ops_cpu.py and tests/test_ops_triton.py: a fused
backend must reproduce :func:`multistep_reference` exactly in spikes and final membrane
and within float tolerance in every gradient. The tests in this file check that the
check itself catches wrong kernels."""

from __future__ import annotations

import itertools

import pytest
import torch

from spikeforge.functional.neuron import multistep_reference
from spikeforge.ops import dispatch
from spikeforge.ops.spec import RESET_KINDS, SURROGATE_NAMES, NeuronSpec

# decay_input means nothing to IF (no leak): its False half would repeat the True half.
OPTION_GRID = [
    combo for combo in itertools.product(
        ("if", "lif"), RESET_KINDS, (False, True), (True, False), SURROGATE_NAMES)
    if combo[0] == "lif" or combo[3]
]
HALF = (torch.float16, torch.bfloat16)


def make_spec(kind, reset, detach, decay, surrogate) -> NeuronSpec:
    """A spec with non-default threshold/reset/alpha so that constants are exercised."""
    return NeuronSpec(
        kind=kind,
        reset=reset,
        detach_reset=detach,
        decay_input=decay,
        surrogate=surrogate,
        v_threshold=0.7,
        v_reset=-0.1 if reset == "hard" else 0.0,
        alpha={"sigmoid": 3.0, "atan": 1.5, "fast_sigmoid": 4.0}.get(surrogate, 0.8),
    )


def fused(backend, x, v0, k, spec, need_state=True):
    """``dispatch.multistep`` for a one-state kind (IF/LIF) as ``(spikes, v_final)``."""
    s, state = dispatch.multistep(backend, x, None if v0 is None else (v0,),
                                  () if spec.kind == "if" else (k,), spec, need_state)
    return s, None if state is None else state[0]


def _grad_tol(dtype: torch.dtype) -> dict:
    if dtype == torch.float64:
        return dict(rtol=1e-9, atol=1e-11)
    if dtype in HALF:  # one rounding of a float32 value that may differ in its last bits
        return dict(rtol=1.6e-2, atol=1e-3)
    return dict(rtol=2e-4, atol=1e-5)


def _leaves(x, v0, w):
    """Fresh leaf copies ``(x, v0, w)`` that require grad (``None`` stays ``None``) and
    the leak ``k``: ``sigmoid(w)`` (PLIF) or 0.4."""
    xx = x.detach().clone().requires_grad_(True)
    vv = None if v0 is None else v0.detach().clone().requires_grad_(True)
    ww = None if w is None else w.detach().clone().requires_grad_(True)
    return xx, vv, ww, torch.sigmoid(ww) if ww is not None else 0.4


def run(backend, x, v0, w, spec, grad_seed=1):
    """Forward + backward of ``backend`` (or ``"reference"``) on copies of the leaves;
    returns ``(spikes, v_final, grad_x, grad_v0, grad_w)``."""
    xx, vv, ww, k = _leaves(x, v0, w)
    if backend == "reference":
        s, v, _ = multistep_reference(xx, vv, k, spec)
    elif callable(backend):
        s, v = backend(xx, vv, k, spec)
    else:
        s, v = fused(backend, xx, vv, k, spec)
    g = torch.Generator().manual_seed(grad_seed)
    gs = torch.randn(s.shape, generator=g).to(s.dtype)
    gv = torch.randn(v.shape, generator=g, dtype=v.dtype)
    ((s.to(v.dtype) * gs.to(v.dtype)).sum() + (v * gv).sum()).backward()
    return (
        s.detach(),
        v.detach(),
        xx.grad,
        None if vv is None else vv.grad,
        None if ww is None else ww.grad,
    )


def check_against_reference(backend, x, v0, w, spec):
    """Spikes and v_final exactly equal; gradients (x, v0, w) within float tolerance."""
    ref = run("reference", x, v0, w, spec)
    out = run(backend, x, v0, w, spec)
    assert out[0].dtype == x.dtype and out[0].shape == x.shape
    want_v = torch.float64 if x.dtype == torch.float64 else torch.float32
    assert out[1].dtype == want_v and out[1].shape == x.shape[1:]
    assert torch.equal(out[0], ref[0]), f"spikes differ ({spec}, {x.dtype})"
    assert torch.equal(out[1], ref[1]), f"v_final differs ({spec}, {x.dtype})"
    assert out[2] is not None and out[2].dtype == x.dtype and out[2].shape == x.shape
    torch.testing.assert_close(out[2], ref[2], **_grad_tol(x.dtype), msg=f"grad x {spec}")
    for name, a, b in (("v0", out[3], ref[3]), ("w", out[4], ref[4])):
        if b is None:
            assert a is None or not a.any(), f"grad {name} should be absent"
            continue
        assert a is not None, f"grad {name} missing"
        assert a.dtype == b.dtype and a.shape == b.shape
        tol = _grad_tol(torch.float64 if a.dtype == torch.float64 else torch.float32)
        torch.testing.assert_close(a, b, **tol, msg=f"grad {name} {spec}")
    return ref, out


def check_without_state(backend, x, v0, w, spec):
    """``need_state=False`` (what a module asks when its caller wants only spikes): no
    final membrane comes back, and spikes and every gradient still equal the
    reference's, for a loss on the spikes alone."""
    outs = []
    for name in ("reference", backend):
        xx, vv, ww, k = _leaves(x, v0, w)
        if name == "reference":
            s, v, _ = multistep_reference(xx, vv, k, spec)
        else:
            s, v = fused(name, xx, vv, k, spec, need_state=False)
            assert v is None
        gs = torch.randn(s.shape, generator=torch.Generator().manual_seed(3)).to(s.dtype)
        (s.float() * gs.float()).sum().backward()
        outs.append((s.detach(), xx.grad, None if vv is None else vv.grad,
                     None if ww is None else ww.grad))
    (rs, *rgrads), (fs, *fgrads) = outs
    assert torch.equal(fs, rs), f"spikes differ without state ({spec}, {x.dtype})"
    for a, b in zip(fgrads, rgrads):
        if b is None:
            assert a is None or not a.any()
            continue
        tol = _grad_tol(a.dtype if a.dtype in HALF else torch.float32)
        torch.testing.assert_close(a.float(), b.float(), **tol)


def random_input(shape, dtype, seed=0):
    """Inputs around the threshold so neurons both fire and stay silent."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 0.8 + 0.3).to(dtype)


# --- the check must reject wrong kernels -------------------------------------------


def _reference_as_backend(x, v0, k, spec):
    s, v, _ = multistep_reference(x, v0, k, spec)
    return s, v


def test_oracle_accepts_the_reference_itself():
    spec = make_spec("lif", "hard", False, True, "atan")
    x = random_input((5, 37), torch.float32)
    check_against_reference(_reference_as_backend, x, torch.zeros(37), torch.tensor(0.3), spec)


@pytest.mark.parametrize("defect", ["threshold", "leak", "surrogate", "v0"])
def test_oracle_rejects_a_wrong_kernel(defect):
    spec = make_spec("lif", "hard", False, True, "atan")
    x = random_input((5, 37), torch.float32)

    def wrong(x, v0, k, spec_):
        if defect == "threshold":
            spec_ = NeuronSpec(**{**spec_.__dict__, "v_threshold": spec_.v_threshold + 1e-3})
        elif defect == "leak":
            k = k * (1 + 1e-6)
        elif defect == "surrogate":
            spec_ = NeuronSpec(**{**spec_.__dict__, "alpha": spec_.alpha * 1.01})
        elif defect == "v0":
            v0 = v0.detach()  # loses the gradient to v0
        s, v, _ = multistep_reference(x, v0, k, spec_)
        return s, v

    with pytest.raises(AssertionError):
        check_against_reference(wrong, x, torch.zeros(37), torch.tensor(0.3), spec)
