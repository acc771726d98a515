"""The membrane floor ``v_min`` on the numba CPU kernel (IF/LIF) against the reference:
spikes and final membrane bit for bit, gradients (x, v0, learnable leak) within the
oracle's tolerance, special values as ``torch.clamp``.

Compile budget: the floored rows are their own variants (``..._floor``, ~5-10 s each from
a cold cache), so every reset rule and both kinds are covered, not every (kind, reset)
pair: three floored forms and one floored gradient row in float32, one of each in
bfloat16. The floor's code is the same for every form (``_floor`` after ``_reset``; in the
gradient rows the mask, where the reset is a runtime switch, so every reset runs through
the one gradient row of a format).
"""

from __future__ import annotations

import pytest
import torch
from test_ops_oracle import check_against_reference, random_input

from spikeforge.functional.neuron import multistep_reference
from spikeforge.ops import dispatch
from spikeforge.ops.cpu import variants
from spikeforge.ops.spec import NeuronSpec

pytestmark = pytest.mark.skipif(
    not dispatch.is_available("cpu", torch.device("cpu")),
    reason=str(dispatch.unavailable_reason("cpu", torch.device("cpu"))),
)

# (dtype, kind, reset, decay_input): one surrogate (one floored gradient row per format);
# IF soft is the authors' MTT neuron; LIF's two charges (decay_input off and on) run
# floored, the first in float32, the second in bfloat16
FORMS = [(torch.float32, "if", "soft", True), (torch.float32, "if", "hard", True),
         (torch.float32, "lif", "none", False), (torch.bfloat16, "lif", "soft", True)]


def _spec(kind, reset, decay, detach, v_min=-0.3):
    return NeuronSpec(kind=kind, reset=reset, detach_reset=detach, decay_input=decay,
                      surrogate="atan", alpha=1.5, v_threshold=0.7,
                      v_reset=-0.1 if reset == "hard" else 0.0, v_min=v_min)


def _inputs(T, dtype):
    """Inputs that drive the membrane below the floor often (inhibition) and above the
    threshold often."""
    return (random_input((T, 37), torch.float32, seed=T) * 1.5 - 0.5).to(dtype)


def _check_floored(kind, reset, decay, dtype):
    bites = 0
    for detach in (False, True):
        spec = _spec(kind, reset, decay, detach)
        for T in (4, 5):  # T = 5: the single-step remainder rows too
            x = _inputs(T, dtype)
            for with_v0, plif in ((False, False), (True, True), (True, False), (False, True)):
                if plif and kind == "if":
                    continue
                v0 = random_input((37,), torch.float32, seed=2) * 0.5 if with_v0 else None
                w = torch.tensor(0.3) if plif else None
                ref, _ = check_against_reference("cpu", x, v0, w, spec)
                # the floor changed something the check compared: it can fail
                free = NeuronSpec(**{**spec.__dict__, "v_min": None})
                k = torch.sigmoid(w) if w is not None else 0.4
                s0, v_free, _ = multistep_reference(x, v0, k, free)
                bites += int(not torch.equal(s0, ref[0]) or not torch.equal(v_free, ref[1]))
    assert bites >= 4


@pytest.mark.parametrize("dtype,kind,reset,decay", FORMS)
def test_floored_forms_match_reference(dtype, kind, reset, decay):
    _check_floored(kind, reset, decay, dtype)


def test_floored_rows_are_their_own_variants():
    """The floor is a compile-time property: its own form key and variant names; the
    unfloored key and names are the ones they were before the floor existed."""
    floored = _spec("if", "soft", True, False)
    free = NeuronSpec(**{**floored.__dict__, "v_min": None})
    assert variants._form_key(floored) == (0, 0, 1, 1)
    assert variants._form_key(free) == (0, 0, 1, 0)
    assert variants._form_key(_spec("lif", "none", True, True)) == (1, 1, 2, 1)
    assert variants._form_name((1, 1, 1, 1), "float32", False) == "lif_decay_soft_floor_float32"
    assert variants._form_name((1, 1, 1, 0), "float32", False) == "lif_decay_soft_float32"
    x = _inputs(4, torch.float32).requires_grad_()
    dispatch.multistep("cpu", x, None, (), floored)[0].sum().backward()
    assert ((0, 0, 1, 1), "float32", False) in variants._FORM_ROWS
    assert variants._CHARGE_ROWS[((0, 0, 1, 1), "float32")]["chg4"].py_func.__name__ == \
        "_chg4_if_soft_floor_float32"
    assert variants._GRAD_ROWS[(1, "float32", False, 1)]["grad4"].py_func.__name__ == \
        "_grad4_atan_floor_float32"


def test_special_values_clip_as_torch_clamp():
    """NaN stays NaN, -inf clips to the floor, +inf stays, and ``-0.0`` at a floor of
    ``0.0`` keeps its sign (``torch.clamp`` keeps it): spikes and membrane equal the
    reference's, signs of zeros included."""
    nan, inf = float("nan"), float("inf")
    # from V[-1] = -0.0, IF with a soft reset at floor 0: -0.0 + -0.0 = -0.0, minus
    # 0.7 * 0 stays -0.0; -inf clips to the floor; NaN stays; +inf stays (the forms of
    # the float32 test above: no further variants)
    x = torch.tensor([[-0.0, -inf, nan, inf, -2.0, 0.3],
                      [-0.0, 1.0, 0.2, -inf, 0.5, -0.0]])
    v0 = torch.full((6,), -0.0)
    for kind, reset in (("if", "soft"), ("lif", "none"), ("if", "hard")):
        spec = _spec(kind, reset, False, False, v_min=-0.1 if reset == "hard" else 0.0)
        k = () if kind == "if" else (0.5,)
        for T in (2, 4, 5):
            xx = x.repeat(3, 1)[:T]
            s, (v,) = dispatch.multistep("cpu", xx, (v0,), k, spec)
            rs, rv, _ = multistep_reference(xx, v0, k[0] if k else None, spec)
            assert torch.equal(s, rs)
            assert torch.equal(torch.isnan(v), torch.isnan(rv))
            ok = ~torch.isnan(rv)
            assert torch.equal(v[ok], rv[ok])
            assert torch.equal(torch.signbit(v[ok]), torch.signbit(rv[ok]))
            if kind == "if" and reset == "soft":  # the cases are really there
                assert torch.signbit(rv[0]) and rv[0] == 0 and torch.isnan(rv[2])


def test_floored_alif_cubalif_take_the_reference():
    """ALIF/CubaLIF with a floor are not run by the CPU kernel: ``auto`` falls back."""
    for kind, params in (("alif", (0.5, 0.9, 0.1)), ("cubalif", (0.5, 0.5))):
        spec = NeuronSpec(kind=kind, v_reset=0.0, v_min=-0.5)
        assert "v_min" in dispatch.unsupported("cpu", spec, torch.float32, "cpu", params)
