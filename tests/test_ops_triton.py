"""The Triton kernels against the reference, run in Triton's CPU interpreter.

``TRITON_INTERPRET=1`` is set before triton is imported, so the kernels run here
without a GPU; the same kernels compile for CUDA (checked on a GPU by
``benchmarks/neurons.py --device cuda`` before it times anything).
"""

# ruff: noqa: E402  (the environment must be set before triton is imported)
from __future__ import annotations

import os

_PREVIOUS = os.environ.get("TRITON_INTERPRET")
os.environ["TRITON_INTERPRET"] = "1"

import pytest
import torch

triton = pytest.importorskip("triton", reason="triton is not installed")

from test_ops_oracle import (
    OPTION_GRID,
    check_against_reference,
    check_without_state,
    make_spec,
    random_input,
)

from spikeforge.ops import dispatch, triton_neuron
from spikeforge.ops.spec import NeuronSpec
from spikeforge.ops.triton import jit as triton_jit


@pytest.fixture(autouse=True, scope="module")
def _interpreter():
    """Keep the interpreter on for this module and restore the environment afterwards."""
    os.environ["TRITON_INTERPRET"] = "1"
    yield
    if _PREVIOUS is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = _PREVIOUS


def test_available_on_cpu_tensors_under_the_interpreter():
    assert dispatch.is_available("triton", torch.device("cpu"))
    kernels = triton_neuron.kernels()
    assert set(kernels) == {"lif_fwd", "lif_bwd", "alif_fwd", "alif_bwd", "cubalif_fwd",
                            "cubalif_bwd"}
    assert all(type(k).__name__ == "InterpretedFunction" for k in kernels.values())


@pytest.mark.parametrize("kind,reset,detach,decay,surrogate", OPTION_GRID)
def test_every_option_float32(kind, reset, detach, decay, surrogate):
    spec = make_spec(kind, reset, detach, decay, surrogate)
    x = random_input((5, 37), torch.float32)
    v0 = random_input((37,), torch.float32, seed=2) * 0.5
    check_against_reference("triton", x, v0, torch.tensor(0.3), spec)  # v0 + PLIF k
    check_against_reference("triton", x, None, None, spec)  # zeros, float k


# Every reset/detach/decay/kind combination in each other dtype, surrogates rotating.
_OTHER = [
    (dtype, combo)
    for dtype in (torch.bfloat16, torch.float16, torch.float64)
    for combo in OPTION_GRID[::5]
]


@pytest.mark.parametrize("dtype,combo", _OTHER, ids=lambda p: str(p))
def test_half_and_double(dtype, combo):
    kind, reset, detach, decay, _ = combo
    surrogate = ("sigmoid", "atan", "fast_sigmoid", "rectangle", "triangle")[
        OPTION_GRID.index(combo) // 5 % 5
    ]
    spec = make_spec(kind, reset, detach, decay, surrogate)
    x = random_input((5, 37), dtype)
    check_against_reference("triton", x, random_input((37,), torch.float32, seed=7), None, spec)
    check_against_reference("triton", x, None, torch.tensor(-0.4), spec)
    check_against_reference("triton", x, None, None, spec)  # half: the float16 Z scratch


@pytest.mark.parametrize("dtype", (torch.bfloat16, torch.float16))
@pytest.mark.parametrize("surrogate", ("atan", "sigmoid", "triangle"))
def test_float16_scratch_keeps_spikes_exact_at_the_edges(dtype, surrogate):
    """The backward of a half input keeps Z = H - V_th as float16 in the grad_x buffer.
    The spike it recovers must be the forward's even where rounding reaches zero: H one
    float32 ulp below the threshold (Z rounds to -0: silent), H exactly at it (Z = 0:
    fires), Z = -0 (fires), and |Z| beyond float16's range (clamped). A wrong spike flips
    ``dV/dH`` between 1 and 0 (hard reset, not detached) and shows in grad x at t = 0."""
    from spikeforge.functional.neuron import multistep_reference

    cases = []
    for vth, v0_col, x0 in ((0.25, 0.25 - 2.0**-26, 0.0), (0.25, 0.25, 0.0), (0.0, -0.0, -0.0)):
        cases.append((vth, [v0_col], [[x0], [0.3], [0.1]]))  # H[0] = v0 + x0
    big = 60000.0 if dtype == torch.float16 else 1e6
    cases.append((0.25, [0.0, 0.0], [[big, -big], [0.2, 0.2], [0.1, 0.1]]))
    for vth, v0_vals, x_vals in cases:
        spec = NeuronSpec(kind="if", v_threshold=vth, v_reset=0.0, reset="hard",
                          detach_reset=False, surrogate=surrogate, alpha=2.0)
        x = torch.tensor(x_vals).to(dtype)
        v0 = torch.tensor(v0_vals)  # no gradient asked: the float16 scratch is used
        gs = torch.tensor([[0.5] * len(v0_vals), [1.0] * len(v0_vals), [-1.0] * len(v0_vals)])
        grads = []
        for backend in ("reference", "triton"):
            xx = x.clone().requires_grad_(True)
            if backend == "reference":
                s, v, _ = multistep_reference(xx, v0, 1.0, spec)
            else:
                s, (v,) = dispatch.multistep("triton", xx, None if v0 is None else (v0,), (), spec)
            (s.float() * gs).sum().backward()
            grads.append((s.detach(), xx.grad))
        (rs, rg), (ts, tg) = grads
        assert torch.equal(rs, ts), (vth, v0_vals, x_vals)
        torch.testing.assert_close(tg.float(), rg.float(), rtol=1.6e-2, atol=1e-3,
                                   msg=f"{vth} {v0_vals} {x_vals}")


@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16))
def test_nd_noncontiguous_and_multiblock(dtype):
    spec = make_spec("lif", "hard", False, True, "atan")
    base = random_input((3, 10, 3, 7), dtype, seed=3)
    x = base.transpose(1, 3)  # [3, 7, 3, 10], not contiguous
    check_against_reference("triton", x, None, torch.tensor(0.5), spec)
    # more neurons than one interpreter block: several programs, partial k sums
    big = random_input((3, 5000), dtype, seed=4)
    check_against_reference("triton", big, random_input((5000,), torch.float32), None, spec)
    check_against_reference("triton", big, None, torch.tensor(0.2), spec)


def test_forward_without_state_equals_reference():
    spec = make_spec("lif", "soft", False, True, "sigmoid")
    x = random_input((5, 300), torch.bfloat16, seed=6)
    check_without_state("triton", x, None, None, spec)
    check_without_state("triton", x, random_input((300,), torch.float32, seed=7),
                        torch.tensor(0.3), spec)


def test_modules_with_triton_backend_equal_reference():
    from spikeforge.neurons import LIF, PLIF

    torch.manual_seed(0)
    x = torch.randn(6, 2, 19) + 0.4
    for make in (
        lambda b: LIF(tau=2.0, detach_reset=True, backend=b),
        lambda b: PLIF(init_tau=3.0, v_reset=None, backend=b),
    ):
        grads = []
        for backend in ("reference", "triton"):
            m = make(backend)
            xx = x.clone().requires_grad_(True)
            s = m(xx)
            (s * torch.arange(19.0)).sum().backward()
            grads.append((s, xx.grad, [p.grad for p in m.parameters()]))
        (rs, rg, rp), (ts, tg, tp) = grads
        assert torch.equal(rs, ts)
        torch.testing.assert_close(tg, rg, rtol=2e-4, atol=1e-5)
        for a, b in zip(tp, rp):
            torch.testing.assert_close(a, b, rtol=2e-4, atol=1e-5)


def test_no_grad_forward_and_single_step():
    spec = NeuronSpec(kind="if", reset="soft")
    with torch.no_grad():
        s, (v,) = dispatch.multistep("triton", torch.full((1, 4), 1.5), None, (), spec)
    assert torch.equal(s, torch.ones(1, 4)) and torch.allclose(v, torch.full((4,), 0.5))


# Ahead-of-time compilation for an H100 (sm_90) needs no GPU, but must not run under
# the interpreter (which patches triton.language), so it runs in a fresh process.
_AOT_CHECK = r"""
import itertools, re, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from spikeforge.ops.triton import jit

KERNELS = jit.kernels()

def ptx_of(name, types, constexprs, fusion=False):
    fn = KERNELS[name]
    sig = {n: ("constexpr" if n in constexprs else types[n]) for n in fn.arg_names}
    cons = {(fn.arg_names.index(n),): v for n, v in constexprs.items()}
    try:
        src = ASTSource(fn, sig, constexprs=cons)
    except TypeError:  # Triton changed its ahead-of-time API: not our kernels' fault
        print("api")
        sys.exit(0)
    compiled = triton.compile(src,
                              target=GPUTarget("cuda", 90, 32),
                              options={"num_warps": 4, "enable_fp_fusion": fusion})
    return compiled.asm["ptx"]

xdt, cdt = sys.argv[1], sys.argv[2]
X, C = "*" + xdt, "*" + cdt
types = dict(x_ptr=X, s_ptr=X, gs_ptr=X, gx_ptr=X, v0_ptr="*fp32", a0_ptr="*fp32",
             i0_ptr="*fp32", gv_ptr="*fp32", ga_ptr="*fp32", gi_ptr="*fp32", k_ptr="*fp32",
             v_ptr=C, a_ptr=C, i_ptr=C, h_ptr=C, as_ptr=C, gv0_ptr=C, ga0_ptr=C, gi0_ptr=C,
             gk_ptr=C, q_ptr=C, p_ptr=C, T="i32", N="i32", last="i32")
stores = {}
for leak, decay, reset, write_v in itertools.product((False, True), (True, False), (0, 1, 2),
                                                     (True, False)):
    cons = dict(HAS_V0=True, LEAK=leak, DECAY=decay, RESET=reset, STRICT=False,
                WRITE_V=write_v, BLOCK=1024)
    ptx = ptx_of("lif_fwd", types, cons)
    assert not re.search(r"\bfma\.", ptx), cons
    stores[leak, decay, reset, write_v] = len(re.findall(r"\bst\.global", ptx))
# without WRITE_V the final membrane's store is gone
assert all(stores[key + (False,)] < stores[key + (True,)] for key in
           itertools.product((False, True), (True, False), (0, 1, 2))), stores
cons = dict(HAS_V0=True, LEAK=True, DECAY=True, RESET=0, STRICT=False, WRITE_V=True,
            BLOCK=1024)
assert re.search(r"\bfma\.", ptx_of("lif_fwd", types, cons, fusion=True))
opts = [(True, 0, False), (True, 1, False), (False, 2, True), (True, 0, True), (False, 1, True)]
for surr, (leak, reset, detach) in zip(range(5), opts):
    cons = dict(HAS_V0=True, HAS_GV=True, LEAK=leak, DECAY=True, RESET=reset, DETACH=detach,
                SURR=surr, STRICT=surr == 2, NEED_GX=True, NEED_GV0=True, NEED_GK=leak,
                H16=False, BLOCK=256)
    ptx = ptx_of("lif_bwd", types, cons)
    # the H scratch is kept in L2 (evict_last) while x and the spike grads stream past
    assert "ld.global" in ptx and "L2::evict_last" in ptx and "L2::evict_first" in ptx
    if xdt in ("bf16", "fp16"):  # float16 Z scratch in the grad_x buffer
        cons.update(HAS_V0=False, NEED_GV0=False, NEED_GK=False, H16=True, STRICT=False)
        ptx = ptx_of("lif_bwd", {**types, "h_ptr": "*fp16"}, cons)
        assert "ld.global" in ptx and "cvt.rn.f16.f32" in ptx
# ALIF and CubaLIF: in float32 the forward for every reset and decay (no FMA; WRITE_STATE
# adds the two state stores) and the backward for every surrogate with the resets
# rotating; in the other dtypes one forward and one backward each (the dtype plumbing)
full = xdt == "fp32"
for kind in ("alif", "cubalif"):
    fwd_cases = list(itertools.product((True, False), (0, 1, 2))) if full else [(True, 1)]
    for decay, reset in fwd_cases:
        cons = dict(HAS_S0=True, DECAY=decay, RESET=reset, STRICT=not decay,
                    WRITE_STATE=True, BLOCK=1024)
        ptx = ptx_of(kind + "_fwd", types, cons)
        assert not re.search(r"\bfma\.", ptx), (kind, cons)
    if full:
        n_write = len(re.findall(r"\bst\.global", ptx))
        ptx = ptx_of(kind + "_fwd", types, {**cons, "WRITE_STATE": False})
        assert len(re.findall(r"\bst\.global", ptx)) < n_write, kind
    gstate = ("HAS_GV", "HAS_GA") if kind == "alif" else ("HAS_GI", "HAS_GV")
    for surr in range(5) if full else (1,):
        cons = dict(HAS_S0=surr % 2 == 0, DECAY=surr != 3, RESET=surr % 3,
                    DETACH=surr in (1, 4), SURR=surr, STRICT=surr == 2, NEED_GX=True,
                    NEED_GS0=surr % 2 == 0, BLOCK=256, **{g: True for g in gstate})
        ptx = ptx_of(kind + "_bwd", types, cons)
        assert "L2::evict_last" in ptx and "L2::evict_first" in ptx, (kind, cons)
print("ok")
"""


@pytest.mark.parametrize("xdt,cdt", [("fp32", "fp32"), ("bf16", "fp32"), ("fp16", "fp32"),
                                     ("fp64", "fp64")])
def test_kernels_compile_for_a_gpu_without_fma_in_the_forward(xdt, cdt):
    """What the interpreter checked must also compile for CUDA: the forward of every kind
    for every option, the backward for every surrogate, down to a cubin (ptxas runs).
    The forward PTX has no fused multiply-add (it would change spikes against the
    reference), while the same kernel compiled with fusion allowed does."""
    import subprocess
    import sys

    try:
        import triton.backends.nvidia  # noqa: F401
    except ImportError:
        pytest.skip("triton's NVIDIA backend is not installed")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", _AOT_CHECK, xdt, cdt], env=env,
                         capture_output=True, text=True, timeout=600)
    if out.returncode == 0 and out.stdout.strip() == "api":
        pytest.skip(f"triton {triton.__version__}: ASTSource API differs from 3.9's")
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]


def test_autotuner_is_built_with_valid_keys_for_the_gpu(monkeypatch):
    """Off the interpreter the kernels are wrapped in ``triton.autotune``; building the
    wrappers checks the key and reset names against the kernels' arguments (no GPU
    needed: nothing is launched)."""
    from triton.runtime.autotuner import Autotuner

    assert triton_jit.tuned("lif_fwd") is None  # the interpreter uses fixed blocks
    monkeypatch.setattr(triton_jit, "interpret", lambda: False)
    monkeypatch.setattr(triton_jit, "_TUNED", {})
    monkeypatch.setattr(triton_jit, "_KERNELS", {})
    for name in triton_jit.kernels():
        kern = triton_jit.tuned(name)
        assert isinstance(kern, Autotuner) and kern.keys == ["T", "N"], name
        configs = triton_jit.BWD_CONFIGS if name.endswith("_bwd") else triton_jit.FWD_CONFIGS
        assert len(kern.configs) == len(configs) > 1
    assert triton_jit.tuned("lif_bwd").reset_to_zero == ["gk_ptr"]
    assert not triton_jit.tuned("alif_bwd").reset_to_zero
    monkeypatch.setattr(triton_neuron, "AUTOTUNE", False)
    assert triton_jit.tuned("lif_fwd") is None


def test_failed_tuning_falls_back_to_fixed_blocks(monkeypatch):
    """A tuning launch that raises is redone with the fixed block sizes, with the gk
    partial sums zeroed first and a warning, and tuning stays off afterwards."""

    class TunedForward:  # stands in for a working autotuner: one config, the grid lambda
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                kern = triton_jit.kernels()["lif_fwd"]
                kern[grid({"BLOCK": 64})](*args, **kwargs, BLOCK=64, num_warps=4)

            return launch

    class BrokenBackward:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                args[7].fill_(123.0)  # garbage left in gk_part by the failed launch
                raise RuntimeError("no GPU for this trial")

            return launch

    state = {}
    monkeypatch.setattr(triton_jit, "_TUNED", state)
    monkeypatch.setattr(triton_jit, "tuned", lambda name: None if state.get("failed") else (
        TunedForward() if name == "lif_fwd" else BrokenBackward()))
    spec = make_spec("lif", "soft", False, True, "atan")
    x = random_input((5, 300), torch.float32)
    with pytest.warns(RuntimeWarning, match="autotuning failed"):
        check_against_reference("triton", x, None, torch.tensor(0.2), spec)
    assert "no GPU" in triton_jit.tuned_configs()["failed"]
    check_against_reference("triton", x, None, torch.tensor(0.2), spec)  # no more tuning
