"""The training engine: one loop for every dataset, model and loss in the config.

``Trainer(cfg, run_dir).fit()`` trains, evaluates every epoch, checkpoints
every epoch atomically (:mod:`spikeforge.train.checkpoint`) and writes the run
directory: ``config.yaml``, ``model.safetensors``, ``metrics.json``,
``train.log``. ``Trainer.resume(run_dir).fit()`` continues a killed run from its
last checkpoint and ends with the same weights as an uninterrupted run:
all randomness (shuffling, encoding, dropout, augmentation) is drawn from
generators seeded by ``(seed, epoch)``, never from state carried across epochs.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass

import torch
import yaml
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from spikeforge.data import DatasetBundle, get_dataset
from spikeforge.functional.encoding import direct_encode, poisson_encode, rate_encode
from spikeforge.functional.loss import build_loss
from spikeforge.models import build_model
from spikeforge.neurons import FiringRateMonitor
from spikeforge.train import distributed
from spikeforge.train.checkpoint import (
    atomic_save_tensors,
    atomic_write_text,
    load_checkpoint,
    save_checkpoint,
)
from spikeforge.train.config import RunConfig, config_from_dict, config_to_dict

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


def derived_seed(seed: int, *parts: int) -> int:
    """A 63-bit seed from the run seed and integers (epoch, stream id)."""
    h = seed & 0xFFFFFFFF
    for p in parts:
        h = (h * 6364136223846793005 + p + 1442695040888963407) & 0x7FFFFFFFFFFFFFFF
    return h


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def iterate_batches(dataset: Dataset, batch_size: int, order: torch.Tensor | None):
    """Yield ``(x, y)`` batches in ``order`` (indices) or in dataset order.

    In-memory ``TensorDataset`` s are sliced directly (no per-sample Python);
    any other dataset goes through a single-process DataLoader.
    """
    n = len(dataset)
    idx = order if order is not None else torch.arange(n)
    if isinstance(dataset, TensorDataset):
        x_all, y_all = dataset.tensors[:2]
        for i in range(0, n, batch_size):
            j = idx[i : i + batch_size]
            yield x_all[j], y_all[j]
        return
    loader = DataLoader(dataset, batch_size=batch_size, sampler=idx.tolist(), num_workers=0)
    yield from loader


@dataclass
class EvalResult:
    """Test-set evaluation: accuracy, mean loss and firing rate per spiking layer."""

    accuracy: float
    loss: float
    firing_rate: dict[str, float]
    mean_firing_rate: float


class Trainer:
    """Train the model a :class:`RunConfig` describes; see the module docstring."""

    def __init__(self, cfg: RunConfig, run_dir: str, console=None) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.console = console
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
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
        if name == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if name == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device: cuda was asked for but torch sees no CUDA device")
        return torch.device(name)

    def _optimizer(self) -> torch.optim.Optimizer:
        return OPTIMIZERS[self.cfg.optim.name](self.model.parameters(), self.cfg.optim)

    def autocast(self):
        """``torch.autocast`` to ``train.precision`` (a no-op context for fp32)."""
        dtype = self.autocast_dtype
        return torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=bool(dtype))

    @classmethod
    def resume(cls, run_dir: str, console=None) -> Trainer:
        """Rebuild a run from ``run_dir/config.yaml`` and load its last checkpoint."""
        cfg = load_run_config(run_dir)
        trainer = cls(cfg, run_dir, console)
        pointer, model_state, opt_state = load_checkpoint(run_dir)
        trainer.model.load_state_dict(model_state)
        trainer.optimizer.load_state_dict(opt_state)
        if trainer.scheduler is not None and pointer.get("scheduler"):
            trainer.scheduler.load_state_dict(pointer["scheduler"])
        trainer.start_epoch = int(pointer["epoch"])
        trainer.history = pointer["history"]
        trainer.train_seconds = float(pointer["train_seconds"])
        return trainer

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
        if self.bundle.temporal:
            if t == x.shape[1]:
                return x.transpose(0, 1)
            from spikeforge.train.mtt import retime

            return retime(x.transpose(0, 1), t)
        if d.encoding == "direct":
            return direct_encode(x, t)
        if d.encoding == "rate":
            return rate_encode(x, t, generator)
        return poisson_encode(x, t, generator)

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
        total_loss, correct, seen = 0.0, 0, 0
        with FiringRateMonitor(self.model) as mon:
            for x, y in iterate_batches(self.bundle.train, cfg.data.batch_size, order):
                if self.bundle.train_transform is not None:
                    x = self.bundle.train_transform(x, gen)
                y = y.to(self.device)
                # Every rank encodes the global batch alike, then keeps its share.
                part, scale = self.dist.shard(len(y))
                y = y[part]
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
                        raise FloatingPointError(
                            f"epoch {epoch + 1}: training loss became {loss.item()}; "
                            "lower optim.lr"
                        )
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
        main = self.dist.is_main  # only rank 0 writes files and logs
        if main:
            os.makedirs(self.run_dir, exist_ok=True)
            self._setup_logging()
        config_path = os.path.join(self.run_dir, "config.yaml")
        if main and not os.path.exists(config_path):
            atomic_write_text(config_path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
        log.info(
            "run %s: dataset %s (%d train / %d test), model %s, %d parameters, T=%d, device %s%s",
            self.run_dir,
            cfg.data.name,
            len(self.bundle.train),
            len(self.bundle.test),
            cfg.model.name,
            sum(p.numel() for p in self.model.parameters()),
            cfg.data.time_steps,
            self.device,
            f", resuming after epoch {self.start_epoch}" if self.start_epoch else "",
        )
        progress = self._progress() if main else None
        result = None
        with progress if progress is not None else _nullcontext():
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
                self.train_seconds += time.perf_counter() - t0
                result = self.evaluate()
                h = self.history
                h["train_loss"].append(loss)
                h["train_accuracy"].append(acc)
                h["test_accuracy"].append(result.accuracy)
                h["train_seconds"].append(self.train_seconds)
                h["mean_firing_rate"].append(rate)
                log.info(
                    "epoch %d/%d  loss %.4f  train acc %.4f  test acc %.4f  firing rate %.4f  "
                    "train time %.1f s",
                    epoch + 1,
                    cfg.epochs,
                    loss,
                    acc,
                    result.accuracy,
                    rate,
                    self.train_seconds,
                )
                state = {
                    "history": h,
                    "train_seconds": self.train_seconds,
                    "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                }
                if main:
                    save_checkpoint(self.run_dir, epoch + 1, self.model, self.optimizer, state)
                self.dist.barrier()
        if result is None:
            result = self.evaluate()
        return self._finish(result)

    def _finish(self, result: EvalResult) -> dict:
        h = self.history
        metrics = {
            "test_accuracy": result.accuracy,
            "best_test_accuracy": max(h["test_accuracy"]) if h["test_accuracy"] else None,
            "test_loss": result.loss,
            "train_loss": h["train_loss"],
            "train_accuracy": h["train_accuracy"],
            "test_accuracy_per_epoch": h["test_accuracy"],
            "train_seconds_per_epoch": h["train_seconds"],
            "firing_rate": result.firing_rate,
            "mean_firing_rate": result.mean_firing_rate,
            "epochs": len(h["train_loss"]),
            "seconds": self.train_seconds,
            "dataset": self.cfg.data.name,
            "time_steps": self.cfg.data.time_steps,
        }
        if self.dist.enabled:
            metrics["world_size"] = self.dist.world_size
        if not self.dist.is_main:
            return metrics
        atomic_save_tensors(
            self.model.state_dict(), os.path.join(self.run_dir, "model.safetensors")
        )
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
        logger = logging.getLogger("spikeforge")
        logger.setLevel(logging.INFO)
        path = os.path.abspath(os.path.join(self.run_dir, "train.log"))
        for h in list(logger.handlers):
            if getattr(h, "_spikeforge_run", False):
                logger.removeHandler(h)
                h.close()
        fh = logging.FileHandler(path)
        fh.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        fh._spikeforge_run = True  # type: ignore[attr-defined]
        logger.addHandler(fh)
        if self.console is not None:
            from rich.logging import RichHandler

            rh = RichHandler(console=self.console, show_path=False, show_time=False)
            rh._spikeforge_run = True  # type: ignore[attr-defined]
            logger.addHandler(rh)

    def _progress(self):
        if not self.cfg.progress or self.console is None:
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.3f}"),
            TextColumn("rate {task.fields[rate]:.3f}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def load_run_config(run_dir: str) -> RunConfig:
    """The resolved config a run directory was trained with."""
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir} is not a spikeforge run directory: no config.yaml")
    with open(path) as f:
        return config_from_dict(yaml.safe_load(f))


def load_trained(run_dir: str) -> Trainer:
    """A :class:`Trainer` whose model holds the final weights of ``run_dir``."""
    cfg = load_run_config(run_dir)
    path = os.path.join(run_dir, "model.safetensors")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir} has no model.safetensors: the run did not finish")
    trainer = Trainer(cfg, run_dir)
    state = load_file(path)
    trainer.model.load_state_dict(state)
    return trainer


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
