"""Layer-wise calibration of a converted SNN against its ANN (Li, Deng, Dong, Gong, Gu,
"A Free Lunch From ANN: Towards Efficient, Accurate Spiking Neural Networks
Calibration", ICML 2021; extended in Li, Deng, Dong, Gu, "Converting Artificial
Neural Networks to Spiking Neural Networks via Parameter Calibration", arXiv
2205.10121).

Layer by layer, in execution order, with every earlier layer already calibrated,
the SNN's average output over ``T`` steps at layer ``l`` is brought to the ANN's
activation ``a_l`` on a few hundred calibration samples:

* ``light`` (bias calibration): per channel, ``b_l <- b_l - E[mean_t s_l - a_l]``,
  the mean over samples and positions (their ``emp_bias_corr``).
* ``advanced``: weight calibration, then potential calibration. Weights (and bias)
  of the Conv/Linear feeding layer ``l`` minimise
  ``|| theta/T clip(floor(T (W xbar + b)/theta + v0), 0, T) - a_l ||^2`` by Adam
  with a straight-through floor, where ``xbar`` is the SNN's own average input to
  that layer (their ``weights_cali_layer``); then the initial membrane of each
  neuron is set so the mean output matches: ``v0 <- v0 + E_samples[a_l - mean_t
  s_l] T / theta`` (their ``correct_mempot``).
* ``advanced_bn``, the BN-aware variant: for a layer a BatchNorm was folded into,
  weight calibration adjusts only that BatchNorm's per-channel scale and shift
  (``W = W0 * g``, ``b = b0 + d``, i.e. ``gamma`` and ``beta`` of the folded BN),
  keeping the kernel the ANN learned. 2205.10121 shows BN layers are where plain
  conversion loses most; calibrating the folded BN's 2C numbers instead of the
  whole kernel is our reading of its BN-aware calibration, chosen because a few
  hundred samples fit 2C numbers without overfitting the kernel.

Where we differ from the authors' code: the target is the ANN activation clipped
at the threshold, ``clip(a_l, 0, theta)`` (theirs is ``a_l``: with percentile
thresholds the few clipped activations would then shift every neuron of their
channel to make up for an error no bias can remove); the initial membrane is ``theta/2`` before
calibration (QCFS's shift; they add ``theta/(2T)`` to the input at every step,
the same total), the output-mean model in weight calibration includes that
initial membrane, and weight calibration runs a fixed number of minibatch
steps, the result kept only if it lowered the full-batch loss (the authors: 5,000-10,000
minibatch steps of 32; we take 100 steps of 64 by default, with the learning
rate scaled to each layer's mean weight magnitude).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import fx, nn

from spikeforge.convert.thresholds import activation_outputs
from spikeforge.layers.qcfs import floor_ste
from spikeforge.models.converted import ConvertedIF, ConvertedSNN

METHODS = ("none", "light", "advanced", "advanced_bn")


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the calibrated layer has run."""


def _snn_means(snn: ConvertedSNN, x: torch.Tensor, time_steps: int, name: str,
               input_of: str | None = None, batch_size: int | None = None):
    """The SNN's output of module ``name`` averaged over T, ``[N, ...]`` (and the
    average input of module ``input_of`` if given), for direct-encoded ``x``."""
    modules = dict(snn.net.named_modules())
    bs = batch_size or max(1, 2048 // time_steps)
    outs, ins = [], []

    def unfold_mean(t):
        return t.reshape(time_steps, -1, *t.shape[1:]).mean(0)

    def out_hook(m, inp, out):
        outs.append(unfold_mean(out.detach()))
        raise _Stop

    def in_hook(m, inp):
        ins.append(unfold_mean(inp[0].detach()))

    handles = [modules[name].register_forward_hook(out_hook)]
    if input_of is not None:
        handles.append(modules[input_of].register_forward_pre_hook(in_hook))
    try:
        with torch.no_grad():
            for i in range(0, len(x), bs):
                xb = x[i : i + bs]
                try:
                    snn(xb.unsqueeze(0).expand(time_steps, *xb.shape))
                except _Stop:
                    pass
    finally:
        for h in handles:
            h.remove()
    return torch.cat(outs), (torch.cat(ins) if ins else None)


def _channel_mean(d: torch.Tensor) -> torch.Tensor:
    """Mean over samples and positions, shaped to broadcast over ``[..., C, *spatial]``."""
    m = d.mean(0)
    if m.dim() > 1:
        m = m.reshape(m.shape[0], -1).mean(1).reshape(m.shape[0], *([1] * (m.dim() - 1)))
    return m


def _producer(net: fx.GraphModule, name: str) -> nn.Module | None:
    """The Conv/Linear module whose output feeds the neuron ``name``, if it is one."""
    modules = dict(net.named_modules())
    for node in net.graph.nodes:
        if node.op == "call_module" and node.target == name:
            src = node.args[0]
            if isinstance(src, fx.Node) and src.op == "call_module":
                m = modules[src.target]
                if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                    return src.target
    return None


def _layer_fn(layer: nn.Module):
    if isinstance(layer, nn.Linear):
        return lambda x, w, b: F.linear(x, w, b)
    conv = F.conv2d if isinstance(layer, nn.Conv2d) else F.conv1d
    return lambda x, w, b: conv(x, w, b, layer.stride, layer.padding, layer.dilation, layer.groups)


def _weight_calibration(layer: nn.Module, neuron: ConvertedIF, xbar: torch.Tensor,
                        target: torch.Tensor, time_steps: int, bn_only: bool,
                        iters: int, lr: float, batch_size: int = 64) -> tuple[float, float]:
    """Fit ``layer``'s weights (or, with ``bn_only``, a per-channel scale and shift of
    them) so the clip-floor mean output matches ``target``; returns (loss before, after)."""
    fn = _layer_fn(layer)
    w0 = layer.weight.detach().clone()
    b0 = (layer.bias.detach().clone() if layer.bias is not None
          else torch.zeros(w0.shape[0], dtype=w0.dtype))
    theta, v0, nb = neuron.threshold, neuron.v_init, neuron.bias
    shape = (-1, *([1] * (w0.dim() - 1)))
    if bn_only:
        g = torch.ones(w0.shape[0], requires_grad=True)
        d = torch.zeros(w0.shape[0], requires_grad=True)
        params = [{"params": [g], "lr": lr},
                  {"params": [d], "lr": lr * float(b0.abs().mean() + 1e-3)}]

        def weights():
            return w0 * g.reshape(shape), b0 + d
    else:
        w = w0.clone().requires_grad_(True)
        b = b0.clone().requires_grad_(True)
        params = [{"params": [w], "lr": lr * float(w0.abs().mean())},
                  {"params": [b], "lr": lr * float(b0.abs().mean() + 1e-3)}]

        def weights():
            return w, b

    def loss_fn(idx=None):
        wt, bt = weights()
        xb, tb = (xbar, target) if idx is None else (xbar[idx], target[idx])
        z = (fn(xb, wt, bt) + nb) / theta
        out = floor_ste(z * time_steps + v0).clamp(0, time_steps) * theta / time_steps
        return F.mse_loss(out, tb)

    with torch.no_grad():
        before = float(loss_fn())
    opt = torch.optim.Adam(params)
    gen = torch.Generator().manual_seed(0)
    for _ in range(iters):
        idx = torch.randint(len(xbar), (min(batch_size, len(xbar)),), generator=gen)
        opt.zero_grad()
        loss = loss_fn(idx)
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(loss_fn())
        if after < before:
            wt, bt = weights()
            layer.weight.copy_(wt)
            if layer.bias is None:
                layer.bias = nn.Parameter(bt.detach().clone())
            else:
                layer.bias.copy_(bt)
    return before, min(before, after)


def calibrate(snn: ConvertedSNN, ann: fx.GraphModule, x: torch.Tensor, time_steps: int,
              method: str = "light", bn_folded: tuple[str, ...] | list[str] = (),
              weight_iters: int = 100, lr: float = 1e-3, log=None) -> dict[str, dict]:
    """Calibrate ``snn`` in place against ``ann`` (the graph it was converted from) on
    calibration inputs ``x`` ``[N, ...]`` (direct-encoded over ``time_steps``).

    ``method`` is one of ``none``, ``light``, ``advanced``, ``advanced_bn`` (module
    docstring); ``bn_folded`` names the Conv/Linear layers a BatchNorm was folded
    into (from ``ann_graph``). Returns per-layer figures before and after:
    ``mae`` (mean over samples and neurons of ``|mean_t s - a|``) and ``bias``
    (mean over neurons of ``|E_samples[mean_t s - a]|``, what the bias and
    potential corrections remove).
    """
    if method not in METHODS:
        raise ValueError(f"calibration must be one of {', '.join(METHODS)}; got {method!r}")
    if method == "none":
        return {}
    modules = dict(snn.net.named_modules())
    names = [n for n, m in snn.net.named_modules() if isinstance(m, ConvertedIF)]
    targets = activation_outputs(ann, x, names)
    report = {}
    for name in names:
        neuron: ConvertedIF = modules[name]
        # What an IF layer can represent: the activation clipped at the threshold.
        target = targets[name].clamp(0, float(neuron.threshold))
        prev = _producer(snn.net, name) if method.startswith("advanced") else None
        out, xbar = _snn_means(snn, x, time_steps, name, input_of=prev)
        entry = {"mae_before": float((out - target).abs().mean()),
                 "bias_before": float((out - target).mean(0).abs().mean())}
        if method == "light":
            neuron.bias = neuron.bias - _channel_mean(out - target)
        else:
            if prev is not None:
                b, a = _weight_calibration(
                    modules[prev], neuron, xbar, target, time_steps,
                    bn_only=method == "advanced_bn" and prev in bn_folded,
                    iters=weight_iters, lr=lr,
                )
                entry["weight_loss"] = [b, a]
                out, _ = _snn_means(snn, x, time_steps, name)
            correction = (target - out).mean(0) * time_steps / neuron.threshold
            neuron.v_init = neuron.v_init + correction
        out, _ = _snn_means(snn, x, time_steps, name)
        entry["mae_after"] = float((out - target).abs().mean())
        entry["bias_after"] = float((out - target).mean(0).abs().mean())
        report[name] = entry
        if log is not None:
            log(f"calibrated {name}: mean |SNN - ANN| {entry['mae_before']:.4f} -> "
                f"{entry['mae_after']:.4f}")
    return report
