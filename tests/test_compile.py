"""The fused neurons inside ``torch.compile(fullgraph=True)`` and ``torch.export``: the
default CNN with the fused CPU backend traces to one graph, whose spikeforge neurons are
the custom operators of :mod:`spikeforge.ops.custom_op`, and gives the eager outputs and
gradients, whether it is compiled after an eager call or before one."""

from __future__ import annotations

import io
import warnings

import pytest
import torch

from spikeforge.models import build_model
from spikeforge.ops import dispatch
from spikeforge.train.config import ModelConfig

pytestmark = pytest.mark.skipif(not dispatch.is_available("cpu", torch.device("cpu")),
                                reason="the fused CPU backend needs numba")


def _model(seed: int = 0, **cfg):
    torch.manual_seed(seed)
    return build_model("default_cnn", (1, 28, 28), 10, ModelConfig(backend="cpu", **cfg))


def _input(seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((4, 3, 1, 28, 28), generator=g)  # [T, B, C, H, W]


def _forward_backward(model, x, run=None):
    """Output and the gradients of every parameter of ``model`` and of the input, for a
    fixed loss, with ``run`` (default: the model itself) computing the output."""
    x = x.clone().requires_grad_(True)
    out = (model if run is None else run)(x)
    weights = torch.linspace(-1.0, 1.0, out.numel()).reshape(out.shape)
    (out * weights).sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return out.detach(), x.grad, grads


def _assert_same(a, b):
    (out_a, gx_a, grads_a), (out_b, gx_b, grads_b) = a, b
    torch.testing.assert_close(out_a, out_b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gx_a, gx_b, rtol=1e-4, atol=1e-6)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-4, atol=1e-6,
                                   msg=f"grad of {name}")


def _ops_in_graph(gm) -> set[str]:
    return {str(n.target) for n in gm.graph.nodes if n.op == "call_function"}


@pytest.mark.parametrize("eager_first", (True, False), ids=("after_eager", "before_eager"))
def test_compile_fullgraph_equals_eager(eager_first):
    """``torch.compile(fullgraph=True)`` traces the whole CNN (no graph break: any would
    raise) and gives the eager outputs and gradients, compiled after an eager call (which
    used to fail inside Dynamo with ``NameError: name 'torch' is not defined``) or
    before the first one. ``aot_eager`` runs the graph that AOTAutograd traced through
    the operators' fake and autograd registrations, without inductor's code generation
    (which the neurons, opaque operators, do not take part in)."""
    torch._dynamo.reset()
    model, x = _model(), _input()
    seen = []

    def backend(gm, example_inputs):
        seen.append(_ops_in_graph(gm))
        from functorch.compile import make_boxed_func
        from torch._dynamo.backends.common import aot_autograd

        def keep(g, _):
            seen.append(_ops_in_graph(g))
            return make_boxed_func(g.forward)

        return aot_autograd(fw_compiler=keep, bw_compiler=keep)(gm, example_inputs)

    compiled = torch.compile(model, fullgraph=True, backend=backend)
    if eager_first:
        eager = _forward_backward(model, x)
        traced = _forward_backward(model, x, compiled)
    else:
        traced = _forward_backward(model, x, compiled)
        eager = _forward_backward(model, x)
    _assert_same(traced, eager)
    # one Dynamo graph, then AOTAutograd's forward and backward graphs, which call the
    # operators (the backward one the backward operator)
    assert len(seen) == 3, seen
    assert "spikeforge.multistep.default" in seen[0]
    assert "spikeforge.multistep.default" in seen[1]
    assert "spikeforge.multistep_backward.default" in seen[2]
    assert traced[0].abs().sum() > 0  # the network is not silent: spikes reach the readout


def test_export_and_jit_trace_equal_eager():
    """``torch.export`` of the CNN (inference) holds the neurons as ``spikeforge::multistep``
    calls, runs to the eager output, and survives ``torch.export.save``/``load``;
    ``torch.jit.trace`` (which failed on the numba path) records the same operator."""
    model, x = _model(seed=2).eval(), _input(seed=3)
    with torch.no_grad():
        eager = model(x)
        ep = torch.export.export(model, (x,))
        ops = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
        assert "spikeforge.multistep.default" in ops
        torch.testing.assert_close(ep.module()(x), eager, rtol=1e-5, atol=1e-6)
        buf = io.BytesIO()
        torch.export.save(ep, buf)
        buf.seek(0)
        loaded = torch.export.load(buf)
        torch.testing.assert_close(loaded.module()(x), eager, rtol=1e-5, atol=1e-6)
        with warnings.catch_warnings():  # deprecated in torch 2.13; shape checks as constants
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model, (x,), check_trace=False)
        assert "spikeforge::multistep" in str(traced.inlined_graph)
        x2 = _input(seed=4)
        torch.testing.assert_close(traced(x2), model(x2), rtol=1e-5, atol=1e-6)
    assert eager.abs().sum() > 0


def test_compile_triton_alif_in_the_interpreter(monkeypatch):
    """The Triton path inside ``torch.compile(fullgraph=True)``: a two-state kind (ALIF)
    with a gradient to the input and to both initial states, in Triton's CPU interpreter
    (on a GPU the same operator runs the compiled kernels)."""
    pytest.importorskip("triton", reason="triton is not installed")
    from spikeforge.ops.spec import NeuronSpec

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    torch._dynamo.reset()
    spec = NeuronSpec(kind="alif", reset="soft", v_threshold=0.7, surrogate="sigmoid", alpha=3.0)
    g = torch.Generator().manual_seed(4)
    x = torch.randn((5, 2, 19), generator=g) * 0.8 + 0.3
    v0, a0 = torch.randn((2, 19), generator=g) * 0.3, torch.rand((2, 19), generator=g)

    def run(x, v0, a0):
        s, (v, a) = dispatch.multistep("triton", x, (v0, a0), (0.4, 0.8, 0.3), spec)
        return (s * torch.arange(19.0)).sum() + v.sum() + 2 * a.sum(), s

    results = []
    for fn in (run, torch.compile(run, fullgraph=True, backend="aot_eager")):
        leaves = [t.clone().requires_grad_(True) for t in (x, v0, a0)]
        loss, s = fn(*leaves)
        loss.backward()
        results.append((s.detach(), *(t.grad for t in leaves)))
    assert torch.equal(results[0][0], results[1][0]) and results[0][0].any()
    for a, b in zip(results[0][1:], results[1][1:]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
