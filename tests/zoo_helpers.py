"""Shared helper of the zoo tests and ``benchmarks/zoo_digits.py``: tiny versions of
every registered model, and one short training run on the embedded MNIST digits."""

from __future__ import annotations

import copy
import functools
import time

import torch
import torch.nn.functional as F

from spikeforge.functional.encoding import direct_encode
from spikeforge.models import build_model
from spikeforge.train.config import ModelConfig

# The neuron of TET's VGGSNN and of tdBN's ResNet-19 (``v = v / 2 + x``: LIF, tau 2,
# undivided input); our default LIF halves the input (``v += (x - v) / 2``), which leaves
# thin, deep networks firing at 2-5% per layer at T = 2 (see the models' docstrings).
# Used for the VGGs, ResNet-19 and the 4-block Spikformer.
UNDIVIDED = {"neuron_params": {"decay_input": False}}

# Per model: config overrides of a tiny version and the input side it is trained at.
TINY: dict[str, tuple[dict, int]] = {
    "default_cnn": ({"channels": [8, 16]}, 16),
    "mlp": ({"hidden": 64}, 16),
    # the event-driven network's own neuron: IF, reset by subtraction
    "event_cnn": ({"channels": [8, 16], "neuron": "if", "v_reset": None}, 16),
    "vggsnn": ({"width": 1 / 8, **UNDIVIDED}, 16),
    "vggsnn_ma": ({"width": 1 / 8, **UNDIVIDED}, 16),
    "vggsnn_tcja": ({"width": 1 / 8, **UNDIVIDED}, 16),
    "vgg11": ({"width": 1 / 8, **UNDIVIDED}, 32),
    # V_th 0.5 as configs/resnet19-tdbn-cifar10.yaml; the FC-256 keeps its width
    "resnet19": ({"width": 1 / 16, "v_threshold": 0.5, **UNDIVIDED}, 16),
    "sew_resnet18": ({"width": 1 / 8}, 16),
    "ms_resnet18": ({"width": 1 / 8}, 16),
    # Spikformers at T = 2: with the authors' input-halving LIF the attention neuron starts
    # silent (Q K^T V / 8 ~ 1e-3 against its threshold 0.5) and the tiny versions tried
    # stayed at 82-88% (4 blocks) or needed 150 steps for 92-93% (1-64) within a test's
    # budget; with the undivided input they reach 93-94%
    "spikformer_tiny": ({**UNDIVIDED}, 16),  # Spikformer-1-64 as registered
    "spikformer_cifar": ({"width": 1 / 8, **UNDIVIDED}, 16),
    "sdt_tiny": ({"width": 0.5}, 16),
    "sdt_cifar": ({"width": 1 / 16}, 16),
}


def tiny_config(name: str, **overrides) -> ModelConfig:
    """The :class:`ModelConfig` of the tiny ``name`` (plus ``overrides``)."""
    cfg = ModelConfig(name=name)
    for k, v in {**TINY[name][0], **overrides}.items():
        setattr(cfg, k, v)
    return cfg


def tiny_model(name: str, channels: int = 1, side: int | None = None, T: int = 2, **overrides):
    """The tiny ``name`` for ``[channels, side, side]`` inputs, 10 classes, built for ``T``."""
    side = side or TINY[name][1]
    return build_model(name, (channels, side, side), 10, tiny_config(name, **overrides), T)


@functools.lru_cache(maxsize=4)
def digits(side: int, n_train: int = 4000, n_test: int = 1000):
    """mnist5k's fixed split, resized to ``side x side`` (area interpolation):
    ``(x_train, y_train, x_test, y_test)``."""
    from spikeforge.data import get_dataset

    bundle = get_dataset("mnist5k", None)
    out = []
    for ds, n in ((bundle.train, n_train), (bundle.test, n_test)):
        x, y = ds.tensors[0], ds.tensors[1]
        g = torch.Generator().manual_seed(0)
        idx = torch.randperm(len(y), generator=g)[:n]
        x = F.interpolate(x[idx], size=(side, side), mode="area") if side != 28 else x[idx]
        out += [x.contiguous(), y[idx]]
    return tuple(out)


def fit_digits(model, side: int, steps: int, T: int = 2, batch: int = 64, lr: float = 5e-3,
               loss: str = "tet", seed: int = 0, n_test: int = 1000) -> dict:
    """Train ``model`` for ``steps`` Adam steps (cosine schedule) on the resized digits
    with direct encoding over ``T`` steps; return test accuracy and training seconds."""
    from spikeforge.functional.loss import LOSSES

    x_tr, y_tr, x_te, y_te = digits(side, n_test=n_test)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(seed)
    order = torch.cat([torch.randperm(len(y_tr), generator=g) for _ in range(
        steps * batch // len(y_tr) + 1)])
    model.train()
    t0 = time.perf_counter()
    for i in range(steps):
        j = order[i * batch:(i + 1) * batch]
        out = model(direct_encode(x_tr[j], T))
        l = LOSSES[loss](out, y_tr[j])
        opt.zero_grad(set_to_none=True)
        l.backward()
        opt.step()
        sched.step()
    seconds = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(direct_encode(x_te[k:k + 250], T)).mean(0).argmax(1)
                          for k in range(0, len(y_te), 250)])
    return {"accuracy": float((pred == y_te).float().mean()), "seconds": seconds}


def clone(model):
    """A deep copy (same weights) of ``model``."""
    return copy.deepcopy(model)
