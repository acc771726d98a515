"""``spikeforge convert``: an ANN run directory in, a converted-SNN run directory out.

The output is an ordinary run directory (``config.yaml``, ``model.safetensors``,
``metrics.json``, ``train.log``) that ``spikeforge eval`` rebuilds: its config is
the ANN's with ``model.name: converted``, ``model.ann: <the ANN's zoo name>``,
``model.neuron: if``, ``model.v_reset: null``, ``data.time_steps: T`` and a
``convert:`` section saying how it was made; thresholds, calibrated biases and
initial potentials are buffers in the weights.
"""

from __future__ import annotations

import copy
import json
import os

import torch

from spikeforge.convert.api import convert
from spikeforge.io import atomic_write_text
from spikeforge.models.ann import ANN_MODELS
from spikeforge.train.config import (
    ConfigError,
    ConvertConfig,
    RunConfig,
    config_from_dict,
    config_to_dict,
)
from spikeforge.train.engine import (
    Trainer,
    derived_seed,
    iterate_batches,
    load_run_config,
    load_trained,
)


def ann_training_config(cfg: RunConfig) -> RunConfig:
    """The config ``spikeforge train --ann`` trains: ``model.name`` a zoo ANN (the
    default ``default_cnn`` becomes ``ann_cnn``; an SNN model is an error), one time
    step of direct input (an ANN has no time)."""
    if cfg.model.name == "default_cnn":
        cfg.model.name = "ann_cnn"
    if cfg.model.name not in ANN_MODELS:
        raise ConfigError(
            f"model.name={cfg.model.name!r} is not an ANN; with --ann use one of "
            f"{', '.join(ANN_MODELS)}"
        )
    if cfg.data.encoding != "direct":
        raise ConfigError(f"data.encoding={cfg.data.encoding!r}: an ANN takes direct input")
    cfg.data.time_steps = 1
    return config_from_dict(config_to_dict(cfg))


def calibration_samples(trainer: Trainer, n: int) -> torch.Tensor:
    """``n`` training inputs ``[n, ...]`` (no augmentation), drawn by a permutation
    seeded from the run's seed."""
    train = trainer.bundle.train
    if n > len(train):
        raise ConfigError(f"--calib-samples {n} exceeds the {len(train)} training samples")
    g = torch.Generator().manual_seed(derived_seed(trainer.cfg.seed, 0, 7))
    order = torch.randperm(len(train), generator=g)[:n]
    return torch.cat([x for x, _ in iterate_batches(train, 256, order)])


def convert_run(run_dir: str, out: str, time_steps: int = 32, calibration: str = "none",
                calib_samples: int = 256, threshold: str = "percentile",
                percentile: float = 99.9, log=None) -> dict:
    """Convert the ANN of ``run_dir`` and write the SNN run to ``out``; returns its metrics.

    Errors: ``run_dir`` not an ANN run (``model.name`` not a zoo ANN), ``out``
    already holding a run.
    """
    cfg = load_run_config(run_dir)
    if cfg.model.name not in ANN_MODELS:
        raise ConfigError(
            f"{run_dir} holds model.name={cfg.model.name!r}, not an ANN ({', '.join(ANN_MODELS)});"
            f" train one with: spikeforge train --ann"
        )
    if os.path.exists(os.path.join(out, "model.safetensors")):
        raise ConfigError(f"{out} already holds a run; pick another --out")
    ann_trainer = load_trained(run_dir)
    ann_acc = ann_trainer.evaluate().accuracy
    x = calibration_samples(ann_trainer, calib_samples)
    snn = convert(ann_trainer.model, x, time_steps, calibration, threshold, percentile, log=log)

    new = copy.deepcopy(cfg)
    new.model.ann, new.model.name = cfg.model.name, "converted"
    new.model.neuron, new.model.v_reset, new.model.v_threshold = "if", None, 1.0
    new.data.time_steps, new.data.encoding = time_steps, "direct"
    new.loss.name = "ce"
    new.convert = ConvertConfig(
        source=os.path.abspath(run_dir), threshold=threshold, percentile=percentile,
        calibration=calibration, calib_samples=calib_samples, time_steps=time_steps,
        ann_test_accuracy=ann_acc,
    )
    new = config_from_dict(config_to_dict(new))  # validated as eval will read it

    trainer = Trainer(new, out)  # rebuilds the SNN from the config: the eval path
    trainer.model.load_state_dict(snn.state_dict())
    trainer._claim_run_dir()  # checks out, writes config.yaml (the engine's own rules)
    trainer._setup_logging()
    metrics = trainer._finish(trainer.evaluate())
    metrics.update(ann_test_accuracy=ann_acc, calibration=calibration, source=run_dir,
                   thresholds={n: float(m.threshold) for n, m in snn.net.named_modules()
                               if hasattr(m, "v_init")})
    atomic_write_text(os.path.join(out, "metrics.json"), json.dumps(metrics, indent=1))
    return metrics
