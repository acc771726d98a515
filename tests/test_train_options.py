"""Training options: the loss registry and its validated parameters (label smoothing,
TET lambda/phi), the optimizer registry, bf16 autocast and gradient clipping."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeforge.functional.loss import LOSS_PARAMS, LOSSES, build_loss
from spikeforge.train import ConfigError, Trainer, load_config
from spikeforge.train.engine import OPTIMIZERS


def test_every_registered_loss_declares_its_parameters():
    assert set(LOSS_PARAMS) == set(LOSSES)


@pytest.mark.parametrize(
    "override, message",
    [
        (["loss.name=ce", "loss.phi=2"], "loss.phi is not a parameter of loss 'ce'"),
        (["loss.name=mse_rate", "loss.label_smoothing=0.1"], "loss.label_smoothing is not"),
        (["loss.label_smoothing=1.0"], r"loss.label_smoothing must be in \[0.0, 1.0\)"),
        (["loss.lam=1.5"], r"loss.lam must be in \[0.0, 1.0\]"),
        (["loss.name=focal"], "loss.name must be one of ce, .*got .focal."),
        (["train.precision=fp16"], "train.precision must be one of fp32, bf16"),
        (["train.grad_clip=0"], "train.grad_clip must be > 0"),
        (["optim.momentum=1.0"], "optim.momentum must be >= 0 and < 1"),
        (["model.norm=layer"], "model.norm must be one of bn, tdbn, none"),
        (["model.connect=xor"], "model.connect must be one of add, and, iand, or"),
    ],
)
def test_bad_training_options_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, override)


def test_label_smoothing_and_tet_lambda_phi_follow_their_equations():
    torch.manual_seed(0)
    out, y = torch.randn(3, 5, 4), torch.randint(0, 4, (5,))
    ce = build_loss("ce", label_smoothing=0.2, lam=0.5, phi=3.0)  # ce ignores lam, phi
    torch.testing.assert_close(ce(out, y), F.cross_entropy(out.mean(0), y, label_smoothing=0.2))
    eps = 0.2  # smoothing by hand: target (1 - eps) onehot + eps / C
    target = (1 - eps) * F.one_hot(y, 4) + eps / 4
    torch.testing.assert_close(ce(out, y), -(target * out.mean(0).log_softmax(-1)).sum(-1).mean())
    tet = build_loss("tet", lam=0.3, phi=0.5, label_smoothing=0.0)
    per_step = torch.stack([F.cross_entropy(out[t], y) for t in range(3)]).mean()
    want = 0.7 * per_step + 0.3 * ((out - 0.5) ** 2).mean()
    torch.testing.assert_close(tet(out, y), want)


def test_optimizer_registry_builds_each_with_its_hyper_parameters():
    cfg = load_config(None, ["optim.name=sgd", "optim.lr=0.1", "optim.momentum=0.8",
                             "optim.weight_decay=0.01"])
    opt = OPTIMIZERS["sgd"](nn.Linear(2, 2).parameters(), cfg.optim)
    g = opt.param_groups[0]
    assert isinstance(opt, torch.optim.SGD)
    assert (g["lr"], g["momentum"], g["weight_decay"]) == (0.1, 0.8, 0.01)
    assert isinstance(OPTIMIZERS["adamw"](nn.Linear(2, 2).parameters(), cfg.optim),
                      torch.optim.AdamW)
    assert set(OPTIMIZERS) == {"adam", "adamw", "sgd"}


def test_bf16_autocast_and_gradient_clipping_in_a_run(tmp_path, monkeypatch):
    cfg = load_config(None, [
        "data.name=digits8x8", "model.name=mlp", "model.hidden=64", "epochs=2",
        "train.precision=bf16", "train.grad_clip=0.5", "optim.name=adamw",
        "optim.weight_decay=0.01", "loss.label_smoothing=0.1", "progress=false",
    ])
    trainer = Trainer(cfg, str(tmp_path / "run"))
    dtypes, norms = set(), []
    lin = trainer.model.net[1].layer
    lin.register_forward_hook(lambda m, i, o: dtypes.add(o.dtype))
    real_clip = nn.utils.clip_grad_norm_

    def clip(params, max_norm):
        params = list(params)
        total = real_clip(params, max_norm)
        after = torch.norm(torch.stack([p.grad.norm() for p in params]))
        norms.append((float(total), float(after)))
        return total

    monkeypatch.setattr(nn.utils, "clip_grad_norm_", clip)
    metrics = trainer.fit()
    assert dtypes == {torch.bfloat16}  # the linear layers ran under bf16 autocast
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert len(norms) == 2 * trainer.steps_per_epoch
    assert all(after <= 0.5 * (1 + 1e-3) for _, after in norms)
    assert any(total > 0.5 for total, _ in norms)  # clipping did act
    assert metrics["test_accuracy"] > 0.8
