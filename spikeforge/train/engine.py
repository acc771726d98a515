"""The training engine: one loop for every dataset, model and loss in the config.

``Trainer(cfg, run_dir).fit()`` trains, evaluates every epoch, checkpoints
every epoch atomically (:mod:`spikeforge.train.checkpoint`) and writes the run
directory: ``config.yaml``, ``model.safetensors``, ``metrics.json``,
``train.log``. ``Trainer.resume(run_dir).fit()`` continues a killed run from its
last checkpoint and ends with the same weights as an uninterrupted run:
all randomness (shuffling, encoding, dropout, augmentation) is drawn from
generators seeded by ``(seed, epoch)``, never from state carried across epochs.

What a run directory may hold and when it is refused is decided in
:mod:`spikeforge.train.rundir`; every file is checked when it is read
(:mod:`spikeforge.train.checkpoint`), and a damaged one is a
:class:`~spikeforge.errors.DamagedFileError` naming it, raised before anything is
written.

The loop is here; seeds, batches and their encoding are in
:mod:`spikeforge.train.batches`, loading a checkpoint back in
:mod:`spikeforge.train.resume`, the log, progress bar and ``metrics.json`` fields in
:mod:`spikeforge.train.output`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import Dataset

from spikeforge.data import DatasetBundle, get_dataset
from spikeforge.errors import TrainingDiverged
from spikeforge.functional.loss import build_loss
from spikeforge.models import build_model
from spikeforge.neurons import FiringRateMonitor
from spikeforge.runtime import auto_threads
from spikeforge.train import distributed, rundir
from spikeforge.train.batches import derived_seed, iterate_batches, time_first
from spikeforge.train.batches import seeded_generator as _generator
from spikeforge.train.checkpoint import (
    CONFIG_KEY,
    POINTER,
    atomic_save_tensors,
    atomic_write_text,
    save_checkpoint,
)
from spikeforge.train.checks import check_device, resolved_device
from spikeforge.train.config import RunConfig
from spikeforge.train.output import (
    FINAL_METRICS,
    final_metrics,
    log_epoch,
    log_run_start,
    progress_bar,
    setup_logging,
)
from spikeforge.train.resume import restore_checkpoint

# re-exported: their home was this module
__all__ = [
    "FINAL_METRICS", "OPTIMIZERS", "PRECISIONS", "EvalResult", "Trainer", "derived_seed",
    "iterate_batches", "load_run_config", "load_trained",
]

log = logging.getLogger("spikeforge.train")

OPTIMIZERS = {
    "adam": lambda params, o: torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay),
    "adamw": lambda params, o: torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay),
    "sgd": lambda params, o: torch.optim.SGD(
        params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay
    ),
}
"""Optimizers by name (``optim.name``): ``fn(parameters, optim_config) -> Optimizer``."""

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
"""``train.precision`` -> the autocast dtype (None: no autocast)."""


@dataclass
class EvalResult:
    """Test-set evaluation: accuracy, mean loss and firing rate per spiking layer."""

    accuracy: float
    loss: float
    firing_rate: dict[str, float]
    mean_firing_rate: float


class Trainer:
    """Train the model a :class:`RunConfig` describes; see the module docstring."""

    def __init__(self, cfg: RunConfig, run_dir: str, console=None, force: bool = False) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.console = console
        # force: replace a run of another config in run_dir (rundir.plan_new_run)
        self.force = force
        self.plan: str | None = None  # set by resume(), else decided in fit()
        self.config_sha256: str | None = None
        self.threads = cfg.threads or auto_threads()
        torch.set_num_threads(self.threads)
        self.dist = distributed.setup(cfg.device)
        self.device = distributed.device_for(self.dist, self._device(cfg.device))
        self.bundle: DatasetBundle = get_dataset(cfg.data.name, cfg.data)
        torch.manual_seed(cfg.seed)
        self.model = build_model(
            cfg.model.name,
            self.bundle.input_shape,
            self.bundle.num_classes,
            cfg.model,
            time_steps=cfg.data.time_steps,
            dataset=cfg.data.name,
        ).to(self.device)
        # The DDP wrapper for training forwards; self.model stays the plain module.
        self.net = self.dist.wrap(self.model, self.device)
        self.loss_fn = build_loss(cfg.loss.name, **cfg.loss.params())
        self.mtt = None
        if cfg.train.mtt.enabled:
            from spikeforge.train.mtt import MixedTimeSteps

            self.mtt = MixedTimeSteps(self.model, cfg.train.mtt.cut_points)
        self.autocast_dtype = PRECISIONS[cfg.train.precision]
        self.steps_per_epoch = math.ceil(len(self.bundle.train) / cfg.data.batch_size)
        self.optimizer = self._optimizer()
        self.scheduler = None
        if cfg.optim.scheduler == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=cfg.epochs * self.steps_per_epoch
            )
        self.start_epoch = 0
        # train_seconds: the training time of each epoch (not cumulative)
        self.history: dict[str, list] = {
            "train_loss": [],
            "train_accuracy": [],
            "test_accuracy": [],
            "train_seconds": [],
            "mean_firing_rate": [],
        }
        self.train_seconds = 0.0

    # -- construction -------------------------------------------------------
    @staticmethod
    def _device(name: str) -> torch.device:
        """The config's device (:func:`~spikeforge.train.checks.resolved_device`), refused
        with the config check's message when torch cannot use it."""
        check_device(name)
        return resolved_device(name)

    def _optimizer(self) -> torch.optim.Optimizer:
        return OPTIMIZERS[self.cfg.optim.name](self.model.parameters(), self.cfg.optim)

    def autocast(self):
        """``torch.autocast`` to ``train.precision`` (a no-op context for fp32)."""
        dtype = self.autocast_dtype
        return torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=bool(dtype))

    @classmethod
    def resume(cls, run_dir: str, console=None) -> Trainer:
        """Rebuild a run from ``run_dir/config.yaml`` and load its last checkpoint; a
        run that stopped before its first checkpoint starts over from epoch 0 with
        its own config. Every file is checked first (nothing is written here)."""
        plan = rundir.plan_resume(run_dir)
        cfg, fingerprint, _ = rundir.read_config(run_dir)
        trainer = cls(cfg, run_dir, console)
        trainer.plan, trainer.config_sha256 = plan, fingerprint
        if plan == "resume":
            trainer._load_checkpoint()
        return trainer

    def _load_checkpoint(self) -> None:
        """Load the checkpoint of ``run_dir`` into model, optimizer and scheduler, with
        the history and training time it records (:func:`resume.restore_checkpoint`)."""
        self.start_epoch, self.history, self.train_seconds = restore_checkpoint(
            self.run_dir, self.config_sha256, self.model, self.optimizer, self.scheduler,
            set(self.history),
        )

    # -- data -----------------------------------------------------------------
    def to_time_first(
        self, x: torch.Tensor, generator: torch.Generator | None, time_steps: int | None = None
    ) -> torch.Tensor:
        """A batch from the dataset as the model input ``[T, B, ...]``: static inputs
        encoded over ``time_steps`` (default ``data.time_steps``); event frames keep
        theirs, or pass through MTT's communication table to ``time_steps``."""
        x = x.to(self.device, non_blocking=True)
        d = self.cfg.data
        t = d.time_steps if time_steps is None else time_steps
        return time_first(x, t, d.encoding, self.bundle.temporal, generator)

    def _configurations(self, generator: torch.Generator) -> list[list[int] | None]:
        """The temporal configurations of one iteration: ``[None]`` (the fixed ``T``)
        without MTT, else ``train.mtt.samples`` draws of per-stage ``T``."""
        if self.mtt is None:
            return [None]
        m = self.cfg.train.mtt
        return [self.mtt.sample(m.time_steps, m.sampler, generator) for _ in range(m.samples)]

    # -- loops ----------------------------------------------------------------
    def train_epoch(self, epoch: int, progress=None, task=None) -> tuple[float, float, float]:
        """One epoch; returns ``(mean loss, accuracy, mean firing rate)``."""
        cfg = self.cfg
        torch.manual_seed(derived_seed(cfg.seed, epoch, 0))
        shuffle = _generator(derived_seed(cfg.seed, epoch, 1))
        order = torch.randperm(len(self.bundle.train), generator=shuffle)
        gen = _generator(derived_seed(cfg.seed, epoch, 2))
        self.model.train()
        total_loss, correct, seen, step = 0.0, 0, 0, 0
        with FiringRateMonitor(self.model) as mon:
            for x, y in iterate_batches(self.bundle.train, cfg.data.batch_size, order):
                if self.bundle.train_transform is not None:
                    x = self.bundle.train_transform(x, gen)
                y = y.to(self.device)
                # Every rank encodes the global batch alike, then keeps its share.
                part, scale = self.dist.shard(len(y))
                y = y[part]
                step += 1
                self.optimizer.zero_grad(set_to_none=True)
                # One configuration (the fixed T), or MTT's samples: their losses add up.
                for steps in self._configurations(gen):
                    if steps is not None:
                        self.mtt.set(steps)
                    xt = self.to_time_first(x, gen, None if steps is None else steps[0])
                    xt = xt[:, part]
                    with self.autocast():
                        out = self.net(xt)
                        loss = self.loss_fn(out.float(), y)
                    if not torch.isfinite(loss):
                        raise self._diverged(epoch, step, loss.item())
                    (loss * scale if scale != 1.0 else loss).backward()
                if cfg.train.grad_clip is not None:
                    nn.utils.clip_grad_norm_(self.model.parameters(), cfg.train.grad_clip)
                self.optimizer.step()
                if self.scheduler is not None:
                    self.scheduler.step()
                total_loss += loss.item() * len(y)
                correct += int((out.detach().mean(0).argmax(1) == y).sum())
                seen += len(y)
                if progress is not None:
                    progress.update(
                        task,
                        advance=1,
                        loss=total_loss / seen,
                        acc=correct / seen,
                        rate=mon.mean_rate(),
                    )
            rate = mon.mean_rate()
        total_loss, correct, seen = self.dist.all_sum([total_loss, correct, seen])
        return total_loss / seen, correct / seen, rate

    def _diverged(self, epoch: int, step: int, value: float) -> TrainingDiverged:
        kept = (
            f"the checkpoint of epoch {epoch} in {self.run_dir} is kept"
            if epoch
            else f"no checkpoint was written; {self.run_dir} holds only its config"
        )
        lr = self.optimizer.param_groups[0]["lr"]
        return TrainingDiverged(
            f"training loss became {value} in epoch {epoch + 1}, step {step} of "
            f"{self.steps_per_epoch}; {kept}. Lower optim.lr (it was {lr:.3g} at that step, "
            f"{self.cfg.optim.lr:g} in the config) and train again with another --out, or --force "
            "to replace this run"
        )

    @torch.no_grad()
    def evaluate(self, dataset: Dataset | None = None) -> EvalResult:
        """Accuracy, loss and firing rates on the test split (deterministic)."""
        dataset = self.bundle.test if dataset is None else dataset
        self.model.eval()
        if self.mtt is not None:
            self.mtt.set(self.cfg.data.time_steps)
        gen = _generator(derived_seed(self.cfg.seed, 0, 3))
        total_loss, correct, seen = 0.0, 0, 0
        with FiringRateMonitor(self.model) as mon:
            for x, y in iterate_batches(dataset, max(256, self.cfg.data.batch_size), None):
                with self.autocast():
                    out = self.model(self.to_time_first(x, gen)).float()
                y = y.to(self.device)
                total_loss += float(self.loss_fn(out, y)) * len(y)
                correct += int((out.mean(0).argmax(1) == y).sum())
                seen += len(y)
        return EvalResult(correct / seen, total_loss / seen, mon.rates(), mon.mean_rate())

    def fit(self) -> dict:
        """Train the remaining epochs, then write ``model.safetensors`` and ``metrics.json``."""
        cfg = self.cfg
        main = self.dist.is_main  # only rank 0 checks the run directory, writes and logs
        if main:
            self._claim_run_dir()
            self._setup_logging()
        self.dist.barrier()
        if not main and self.plan is None and os.path.exists(os.path.join(self.run_dir, POINTER)):
            # rank 0 resumes this run: every rank starts from its checkpoint
            self.config_sha256 = rundir.read_config(self.run_dir)[1]
            self._load_checkpoint()
        log_run_start(self)
        progress = self._progress() if main else None
        result = None
        with progress if progress is not None else contextlib.nullcontext():
            for epoch in range(self.start_epoch, cfg.epochs):
                task = None
                if progress is not None:
                    task = progress.add_task(
                        f"epoch {epoch + 1}/{cfg.epochs}",
                        total=self.steps_per_epoch,
                        loss=float("nan"),
                        acc=0.0,
                        rate=0.0,
                    )
                t0 = time.perf_counter()
                loss, acc, rate = self.train_epoch(epoch, progress, task)
                seconds = time.perf_counter() - t0
                self.train_seconds += seconds
                result = self.evaluate()
                h = self.history
                h["train_loss"].append(loss)
                h["train_accuracy"].append(acc)
                h["test_accuracy"].append(result.accuracy)
                h["train_seconds"].append(seconds)
                h["mean_firing_rate"].append(rate)
                log_epoch(epoch, cfg.epochs, loss, acc, result.accuracy, rate, seconds)
                state = {
                    "history": h,
                    "train_seconds": self.train_seconds,
                    "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                }
                if main:
                    save_checkpoint(
                        self.run_dir, epoch + 1, self.model, self.optimizer, state,
                        self.config_sha256,
                    )
                self.dist.barrier()
        if result is None:
            result = self.evaluate()
        return self._finish(result)

    def _claim_run_dir(self) -> None:
        """Check ``run_dir`` (:func:`rundir.plan_new_run`, unless :meth:`resume` planned
        already), load the checkpoint of a stopped run of the same config, then make the
        directory ready and write ``config.yaml`` (:func:`rundir.claim`). Under several
        processes only one may call this, before the others start writing."""
        text, fingerprint = rundir.config_text(self.cfg)
        if self.plan is None:
            self.plan = rundir.plan_new_run(self.run_dir, self.cfg, self.force)
            if self.plan in ("resume", "restart"):  # the same config: continue it
                self.config_sha256 = rundir.read_config(self.run_dir)[1]
                if self.plan == "resume":
                    self._load_checkpoint()
        if self.plan in ("new", "replace"):
            self.config_sha256 = fingerprint
        rundir.claim(self.run_dir, self.plan, text)

    def _finish(self, result: EvalResult) -> dict:
        metrics = final_metrics(self, result)
        if not self.dist.is_main:
            return metrics
        atomic_save_tensors(
            self.model.state_dict(),
            os.path.join(self.run_dir, rundir.WEIGHTS),
            {CONFIG_KEY: self.config_sha256},
        )
        for fn in FINAL_METRICS:
            metrics.update(fn(self, result))
        atomic_write_text(os.path.join(self.run_dir, "metrics.json"), json.dumps(metrics, indent=1))
        log.info(
            "done: test accuracy %.4f after %d epochs, %.1f s of training",
            result.accuracy,
            metrics["epochs"],
            self.train_seconds,
        )
        return metrics

    # -- output -----------------------------------------------------------------
    def _setup_logging(self) -> None:
        setup_logging(self.run_dir, self.console)

    def _progress(self):
        return progress_bar(self.console) if self.cfg.progress else None


def load_run_config(run_dir: str) -> RunConfig:
    """The resolved config a run directory was trained with (checked:
    :func:`spikeforge.train.rundir.read_config`)."""
    return rundir.read_config(run_dir)[0]


def load_trained(run_dir: str) -> Trainer:
    """A :class:`Trainer` whose model holds the final weights of ``run_dir``.

    ``config.yaml``, ``model.safetensors`` and ``metrics.json`` must be intact and
    belong to one run (their config fingerprints agree), and the weights must fit the
    model the config describes; otherwise the error names the file."""
    cfg, fingerprint, _ = rundir.read_config(run_dir)
    state = rundir.check_finished_files(run_dir, fingerprint)
    trainer = Trainer(cfg, run_dir)
    trainer.config_sha256 = fingerprint
    rundir.check_state_fits(os.path.join(run_dir, rundir.WEIGHTS), state, trainer.model)
    trainer.model.load_state_dict(state)
    return trainer
