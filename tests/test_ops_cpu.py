"""The numba CPU backend against the reference: every option and surrogate, every dtype."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from test_ops_oracle import (
    OPTION_GRID,
    check_against_reference,
    check_without_state,
    make_spec,
    random_input,
)

from spikeforge.functional.neuron import multistep_neuron
from spikeforge.ops import _cpu_pool, dispatch
from spikeforge.ops.cpu import entry, host, intrinsics, surrogates, variants
from spikeforge.ops.spec import NeuronSpec

pytestmark = pytest.mark.skipif(
    not dispatch.is_available("cpu", torch.device("cpu")),
    reason=str(dispatch.unavailable_reason("cpu", torch.device("cpu"))),
)

DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


def _check_states(spec, dtype):
    """T = 4 (no single-step remainder) and 5, from the rest state and from given v0,
    with and without a learnable leak."""
    for T in (4, 5):
        x = random_input((T, 37), dtype)
        for with_v0, plif in ((False, False), (True, True), (True, False), (False, True)):
            v0 = random_input((37,), torch.float32, seed=2) * 0.5 if with_v0 else None
            w = torch.tensor(0.3) if plif else None
            check_against_reference("cpu", x, v0, w, spec)


@pytest.mark.parametrize("kind,reset,detach,decay,surrogate", OPTION_GRID)
def test_every_option_matches_reference(kind, reset, detach, decay, surrogate):
    _check_states(make_spec(kind, reset, detach, decay, surrogate), torch.float32)


# Each storage format under both kinds, every reset, both decay_input values and several
# surrogates, not the whole option grid again: the rows are compiled per (form, format)
# and (surrogate, format), ~10 s each from a cold cache, and the options' code does not
# depend on the format beyond the loads, stores and the compute type exercised here.
# The LIF entry of each format is also the one the shape, threading and no-state tests
# below run in that format, so they compile no further variants.
FORMAT_LIF = {
    torch.float32: ("lif", "hard", False, True, "sigmoid"),
    torch.float64: ("lif", "hard", False, True, "triangle"),
    torch.bfloat16: ("lif", "none", True, False, "atan"),
    torch.float16: ("lif", "soft", False, True, "rectangle"),
}
DTYPE_GRID = [
    (torch.float64, ("if", "none", True, True, "atan")),
    (torch.float64, FORMAT_LIF[torch.float64]),
    (torch.bfloat16, ("if", "soft", False, True, "sigmoid")),
    (torch.bfloat16, FORMAT_LIF[torch.bfloat16]),
    (torch.float16, ("if", "hard", True, True, "fast_sigmoid")),
    (torch.float16, FORMAT_LIF[torch.float16]),
]


@pytest.mark.parametrize("dtype,options", DTYPE_GRID)
def test_every_format_matches_reference(dtype, options):
    _check_states(make_spec(*options), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nd_shape_and_noncontiguous_input(dtype):
    spec = make_spec(*FORMAT_LIF[dtype])
    base = random_input((4, 6, 3, 7), dtype, seed=3)
    x = base.transpose(1, 3)  # [4, 7, 3, 6], not contiguous
    assert not x.is_contiguous()
    v0 = random_input((7, 3, 6), torch.float32, seed=4).transpose(0, 2).contiguous()
    v0 = v0.transpose(0, 2)  # non-contiguous v0 too
    check_against_reference("cpu", x, v0, torch.tensor(-0.2), spec)
    check_against_reference("cpu", base[:, ::2], None, None, spec)  # strided slice


# The multi-threaded kernel is the serial one's code under prange; two dtypes (one
# native, one 16-bit) cover its chunk claiming while keeping the cold numba
# compilation of the suite down.
@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16))
def test_parallel_path_matches_reference(dtype):
    # large enough for the multi-threaded kernel and several chunks per thread
    n = 70_000
    assert 4 * n >= host.PARALLEL_MIN_ELEMENTS
    spec = make_spec(*FORMAT_LIF[dtype])
    x = random_input((4, n), dtype, seed=5)
    check_against_reference("cpu", x, random_input((n,), torch.float32, seed=6), None, spec)
    check_against_reference("cpu", x, None, torch.tensor(0.1), spec)


# Without the state the final step's membrane goes to a scratch buffer instead of
# v_final: T = 4 ends in a four-step row, T = 5 in a single-step one; the serial and the
# parallel driver.
@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16))
@pytest.mark.parametrize("T", (4, 5))
def test_forward_without_state_matches_reference(dtype, T):
    spec = make_spec(*FORMAT_LIF[dtype])
    for n in (37, 70_000):
        x = random_input((T, n), dtype, seed=11)
        check_without_state("cpu", x, None, None, spec)
        check_without_state("cpu", x, random_input((n,), torch.float32, seed=12),
                            torch.tensor(0.2), spec)
        s, v = entry.forward(x, (None,), (0.5,), spec, need_state=False)
        assert v is None and torch.equal(s, entry.forward(x, (None,), (0.5,), spec)[0])


def test_launch_plans_follow_the_spec_not_its_address():
    """Plans and parameter vectors are cached by ``id(spec)``: specs made and dropped
    one after another (whose addresses Python may reuse) must each run with their own
    threshold."""
    x = random_input((4, 64), torch.float32, seed=13)
    for vth in (0.2, 0.5, 0.9, 1.3):
        spec = NeuronSpec(kind="lif", v_threshold=vth)
        check_against_reference("cpu", x, None, None, spec)
        del spec


# Non-temporal (streaming) stores are used only for large outputs, which the tests above
# never reach; forcing them on (threshold 0) checks the streaming loops: the four-step
# rows of the forward (spikes) and of the backward (grad x), next to their single-step
# rows, which store normally, in a native and a 16-bit format, for rows that are 64-byte
# aligned (N a multiple of 16) and, where the kernels must fall back to ordinary stores,
# rows that are not.
@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16))
@pytest.mark.parametrize("n", (4096, 4099))
def test_streaming_stores_match_reference(monkeypatch, dtype, n):
    monkeypatch.setattr(host, "STREAM_MIN_BYTES", 0)
    x = random_input((7, n), dtype, seed=7)  # T = 7: one four-step pass and three single
    assert host.use_stream_stores(x) == (n * x.element_size() % 64 == 0)
    spec = make_spec(*FORMAT_LIF[dtype])
    check_against_reference("cpu", x, None, None, spec)
    # with a learnable leak the backward takes the single-step rows
    check_against_reference("cpu", x, random_input((n,), torch.float32, seed=8), torch.tensor(0.1),
                            spec)


def test_stream_store_rule(monkeypatch):
    monkeypatch.setattr(host, "STREAM_MIN_BYTES", 8 << 20)
    big = torch.empty(4, 1 << 20)  # 16 MB
    assert host.use_stream_stores(big) == (big.data_ptr() % 64 == 0)
    assert not host.use_stream_stores(torch.empty(4, 1 << 18))  # 4 MB: stays cached
    assert not host.use_stream_stores(torch.empty(4, 1000))
    assert not host.use_stream_stores(torch.empty(2, (1 << 21) + 3))  # rows unaligned
    assert not host.use_stream_stores(torch.empty(4, (1 << 20) + 1)[:, 1:])  # offset
    monkeypatch.setattr(host, "STREAM_MIN_BYTES", -1)  # never
    assert not host.use_stream_stores(big)


def test_streaming_is_off_unless_asked():
    """Non-temporal stores made the kernels ~4x slower on an AMD EPYC VM, so the default
    never streams; ``SPIKEFORGE_STREAM_MIN_MB`` turns them on from a size."""
    if not os.environ.get("SPIKEFORGE_STREAM_MIN_MB"):
        assert host.STREAM_MIN_BYTES < 0
        assert not host.use_stream_stores(torch.empty(16, 1 << 20))
    assert host.stream_min_bytes_from_env({}) == -1
    assert host.stream_min_bytes_from_env({"SPIKEFORGE_STREAM_MIN_MB": ""}) == -1
    assert host.stream_min_bytes_from_env({"SPIKEFORGE_STREAM_MIN_MB": "8"}) == 8 << 20
    assert host.stream_min_bytes_from_env({"SPIKEFORGE_STREAM_MIN_MB": "0"}) == 0


def test_vectorised_exp_accuracy():
    """The float32 exp of the sigmoid surrogate against float64 numpy: relative error
    below 2e-7 on [-87, 87], clamped (finite, monotone) outside."""
    from numba import njit

    @njit(error_model="numpy")
    def run(x, out):
        for i in range(x.size):
            out[i] = surrogates._vexp(x[i])

    x = np.concatenate([np.linspace(-120, 120, 480_001), [0.0, -0.0, 1e-30, -1e-30]])
    x = x.astype(np.float32)
    out = np.empty_like(x)
    run(x, out)
    inside = np.abs(x) < 87
    ref = np.exp(x[inside].astype(np.float64))
    assert (np.abs(out[inside] - ref) / ref).max() < 2e-7
    assert np.isfinite(out).all() and (np.diff(out[:480_001]) >= 0).all()


def test_only_the_variants_used_are_compiled():
    """Row functions are compiled per neuron form and per surrogate on first use: a process
    that trains one neuron compiles one form and one surrogate; one that only runs the
    forward (inference) compiles no recompute and no gradient rows; with streaming off
    (the default) no streaming-store loops."""
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from spikeforge.ops import dispatch\n"
        "from spikeforge.ops.cpu import variants as v\n"
        "from spikeforge.ops.spec import NeuronSpec\n"
        "spec = NeuronSpec(kind='lif', reset='soft', decay_input=False, surrogate='triangle')\n"
        "x = torch.randn(4, 64, requires_grad=True)\n"
        "with torch.no_grad():\n"
        "    dispatch.multistep('cpu', x, None, (0.5,), spec)\n"
        "print(sorted(v._FORM_ROWS), sorted(v._CHARGE_ROWS), sorted(v._GRAD_ROWS))\n"
        "dispatch.multistep('cpu', x, None, (0.5,), spec)[0].sum().backward()\n"
        "print(sorted(v._FORM_ROWS), sorted(v._CHARGE_ROWS), sorted(v._GRAD_ROWS))\n"
        "print(v._FORM_ROWS[((1, 0, 1, 0), 'float32', False)]['fwd4'].py_func.__name__)\n"
        "print(v._CHARGE_ROWS[((1, 0, 1, 0), 'float32')]['chg4'].py_func.__name__)\n"
        "print(v._GRAD_ROWS[(4, 'float32', False, 0)]['grad4'].py_func.__name__)\n"
    )
    env = {k: val for k, val in os.environ.items() if k != "SPIKEFORGE_STREAM_MIN_MB"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    lines = out.stdout.strip().splitlines()
    form = "((1, 0, 1, 0), 'float32', False)"
    assert lines[0] == f"[{form}] [] []"
    assert lines[1] == f"[{form}] [((1, 0, 1, 0), 'float32')] [(4, 'float32', False, 0)]"
    assert lines[2:] == ["_fwd4_lif_soft_float32", "_chg4_lif_soft_float32",
                         "_grad4_triangle_float32"]


def test_rest_state_and_leak_target_match_reference():
    """``state0=None`` starts from the rest state ``V = V_rest`` (here ``v_leak``, and a hard
    reset's ``v_reset`` without it), as the reference does."""
    x = random_input((5, 40), torch.float32, seed=21)
    for v_leak in (None, 0.15):
        spec = NeuronSpec(kind="lif", v_threshold=0.7, v_reset=-0.25, v_leak=v_leak)
        check_against_reference("cpu", x, None, torch.tensor(0.3), spec)


def test_backends_refuse_what_they_do_not_run():
    spec = NeuronSpec(kind="toy")
    for backend in ("cpu", "triton"):
        reason = dispatch.unsupported(backend, spec, torch.float32, "cpu")
        assert reason == f"backend {backend!r} does not run neuron kind 'toy' " + (
            f"(it runs {dispatch.support(backend).kinds})")
    strict = NeuronSpec(kind="lif", fire_strict=True)
    assert "fire_strict" in dispatch.unsupported("cpu", strict, torch.float32, "cpu", (0.5,))
    alif = NeuronSpec(kind="alif")
    assert dispatch.unsupported("cpu", alif, torch.float32, "cpu", (0.5, 0.9, 0.1)) is None
    assert "only as a number" in dispatch.unsupported(
        "cpu", alif, torch.float32, "cpu", (torch.tensor(0.5), 0.9, 0.1))
    assert "CPU tensors" in dispatch.unsupported("cpu", alif, torch.float32, "meta")


def test_form_key_ignores_decay_for_if():
    assert variants._form_key(NeuronSpec(kind="if", decay_input=True)) == (0, 0, 0, 0)
    assert variants._form_key(NeuronSpec(kind="lif", reset="none")) == (1, 1, 2, 0)


def test_single_step_and_empty_batch():
    spec = make_spec("if", "hard", False, True, "rectangle")
    check_against_reference("cpu", random_input((1, 9), torch.float32), None, None, spec)
    s, (v,) = dispatch.multistep("cpu", torch.zeros(3, 0), None, (), spec)
    assert s.shape == (3, 0) and v.shape == (0,)


def test_only_k_needs_grad():
    spec = make_spec("lif", "hard", False, True, "atan")
    x = random_input((6, 50), torch.float32)
    w = torch.tensor(0.2, requires_grad=True)
    s, _ = dispatch.multistep("cpu", x, None, (torch.sigmoid(w),), spec)
    s.sum().backward()
    w_ref = torch.tensor(0.2, requires_grad=True)
    from spikeforge.functional.neuron import multistep_reference

    multistep_reference(x, None, torch.sigmoid(w_ref), spec).spikes.sum().backward()
    torch.testing.assert_close(w.grad, w_ref.grad, rtol=2e-4, atol=1e-6)


def test_module_lif_plif_if_equal_reference():
    from spikeforge.neurons import IF, LIF, PLIF

    torch.manual_seed(0)
    x = torch.randn(8, 4, 33) + 0.4
    for make in (
        lambda b: LIF(tau=2.0, detach_reset=True, backend=b),
        lambda b: LIF(tau=3.0, v_reset=None, decay_input=False, surrogate="sigmoid", backend=b),
        lambda b: PLIF(init_tau=2.5, surrogate="fast_sigmoid", backend=b),
        lambda b: IF(v_threshold=0.8, surrogate="triangle", backend=b),
    ):
        outs = []
        for backend in ("reference", "cpu"):
            m = make(backend)
            xx = x.clone().requires_grad_(True)
            v0 = torch.full((4, 33), 0.1, requires_grad=True)
            res = m(xx, v0, return_state=True)
            (res.spikes * torch.linspace(-1, 1, 33)).sum().backward(retain_graph=True)
            res.v.sum().backward()
            params = [p.grad.clone() for p in m.parameters()]
            outs.append((res.spikes, res.v, xx.grad, v0.grad, params))
        (rs, rv, rgx, rgv, rp), (cs, cv, cgx, cgv, cp) = outs
        assert torch.equal(rs, cs) and torch.equal(rv, cv)
        torch.testing.assert_close(cgx, rgx, rtol=2e-4, atol=1e-5)
        torch.testing.assert_close(cgv, rgv, rtol=2e-4, atol=1e-5)
        for a, b in zip(cp, rp):
            torch.testing.assert_close(a, b, rtol=2e-4, atol=1e-5)


def test_auto_backend_on_cpu_uses_the_fused_path(monkeypatch):
    calls = []
    real = dispatch.multistep

    def spy(backend, *args):
        calls.append(backend)
        return real(backend, *args)

    monkeypatch.setattr(dispatch, "multistep", spy)
    x = torch.randn(3, 2, 5)
    out = multistep_neuron(x, spec=NeuronSpec(), k=0.5)
    assert calls == ["cpu"] and out.spikes.shape == x.shape


def test_module_asks_for_the_state_only_when_returning_it(monkeypatch):
    from spikeforge.neurons import LIF

    asked = []
    real = dispatch.multistep

    def spy(backend, x, state0, params, spec, need_state=True):
        asked.append(need_state)
        return real(backend, x, state0, params, spec, need_state)

    monkeypatch.setattr(dispatch, "multistep", spy)
    lif = LIF(tau=2.0, backend="cpu")
    x = random_input((5, 3, 11), torch.float32, seed=14)
    spikes = lif(x)
    out = lif(x, return_state=True)
    assert asked == [False, True]
    ref = LIF(tau=2.0, backend="reference")(x, return_state=True)
    assert torch.equal(spikes, ref.spikes) and torch.equal(out.spikes, ref.spikes)
    assert torch.equal(out.v, ref.v)


@pytest.mark.parametrize("dtype", (torch.bfloat16, torch.float16))
def test_half_conversions_round_like_torch(dtype):
    """The in-loop float32 -> half narrowing and half -> float32 widening are bit-exact
    with torch's conversions, special values included."""
    from numba import njit

    ld, st = intrinsics._ld, intrinsics._st

    @njit
    def roundtrip(src, dst, back):
        for i in range(src.shape[0]):
            st(dst, i, src[i])
            back[i] = ld(dst, i)

    f = torch.randn(20000) * torch.logspace(-45, 38, 20000).float().clamp(max=3e38)
    tiny = torch.tensor([1e-40, -1e-41, 5.96e-8, 2.98e-8, 6.1e-5, 65504.0, 65520.0, 7e4])
    f = torch.cat([f, tiny, torch.tensor([0.0, -0.0, float("inf"), float("-inf"), 1.0 + 2**-8])])
    f = torch.cat([f, torch.tensor([1.0 + 2**-9, 1.0 + 3 * 2**-9, float("nan")])])
    want = f.to(dtype)
    dst = torch.empty_like(want)
    back = torch.empty(len(f))
    # the kernels' view of a half tensor: bfloat16 as uint16 words, float16 as int16
    dst_np = dst.view(torch.int16).numpy().view(np.uint16 if dtype == torch.bfloat16 else np.int16)
    roundtrip(f.numpy(), dst_np, back.numpy())
    nan = torch.isnan(want)
    assert torch.equal(torch.isnan(dst), nan)
    assert torch.equal(dst[~nan].view(torch.int16), want[~nan].view(torch.int16))
    assert torch.equal(back[~nan], want[~nan].float())


def test_dispatch_errors_name_the_problem(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    reason = dispatch.unavailable_reason("cpu", torch.device("meta"))
    assert "CPU tensors" in reason
    assert dispatch.unavailable_reason("cpu", torch.device("cpu")) is None
    if dispatch._has_module("triton"):
        reason = dispatch.unavailable_reason("triton", torch.device("cpu"))
        assert "CUDA" in reason and "TRITON_INTERPRET" in reason
    with pytest.raises(RuntimeError, match="CPU tensors"):
        dispatch.multistep("cpu", torch.zeros(2, 3, device="meta"), None, (0.5,), NeuronSpec())
    with pytest.raises(ValueError, match="initial state 'v'"):
        dispatch.multistep("cpu", torch.zeros(2, 3), (torch.zeros(4),), (0.5,), NeuronSpec())
    with pytest.raises(ValueError, match="one-element"):
        dispatch.multistep("cpu", torch.zeros(2, 3), None, (torch.ones(2),), NeuronSpec())
    with pytest.raises(RuntimeError, match="takes params"):
        dispatch.multistep("cpu", torch.zeros(2, 3), None, (), NeuronSpec())
    with pytest.raises(RuntimeError, match="kind 'toy'"):
        dispatch.multistep("cpu", torch.zeros(2, 3), None, (), NeuronSpec(kind="toy"))
    assert "unknown backend" in dispatch.unavailable_reason("cuda-magic", torch.device("cpu"))


def test_pool_reuses_freed_blocks_and_never_shares_live_ones():
    _cpu_pool.release_cached_buffers()
    shape = (4, 1 << 17)  # 2 MiB of float32
    a = _cpu_pool.empty(shape, torch.float32)
    a.fill_(1.0)
    b = _cpu_pool.empty(shape, torch.float32)
    assert a.data_ptr() != b.data_ptr()
    ptr = a.data_ptr()
    view = a[1]  # a view keeps the block alive after `a` is gone
    del a
    c = _cpu_pool.empty(shape, torch.float32)
    assert c.data_ptr() != ptr and torch.all(view == 1.0)
    del view
    d = _cpu_pool.empty(shape, torch.float32)
    assert d.data_ptr() == ptr  # reused once nothing refers to it
    assert d.data_ptr() % 64 == 0
    small = _cpu_pool.empty((3,), torch.float32)
    assert small.shape == (3,)
    assert _cpu_pool.release_cached_buffers() >= 0
    del b, c, d
    assert _cpu_pool.idle_bytes() > 0
    _cpu_pool.release_cached_buffers()
    assert _cpu_pool.idle_bytes() == 0


def test_chunking_covers_every_neuron():
    for T, N, threads, bwd in [(4, 1 << 20, 2, True), (500, 262144, 2, True), (3, 100, 1, False)]:
        c = host.chunk_size(T, N, 4, threads, bwd)
        assert c % 64 == 0 and c >= 64
        if bwd:
            assert T * c * 4 <= max(8 << 20, T * 1024 * 4)
    assert np.float32(host._params(NeuronSpec(), (0.1,), np.float32)[0]) == np.float32(0.1)


def test_torch_thread_setting_bounds_the_kernels():
    n = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        parallel, threads = host._pick(16, 1 << 20)
        assert not parallel and threads == 1
    finally:
        torch.set_num_threads(n)


def test_launching_numba_threads_keeps_torch_thread_setting():
    import subprocess
    import sys

    code = (
        "import torch; torch.set_num_threads(1)\n"
        "from spikeforge.ops.cpu import host\n"
        "host.numba_threads()\n"
        "x = torch.randn(8, 1 << 16)\n"
        "from spikeforge.ops import dispatch\n"
        "from spikeforge.ops.spec import NeuronSpec\n"
        "dispatch.multistep('cpu', x, None, (0.5,), NeuronSpec())\n"
        "print(torch.get_num_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
