"""What a training run tells besides its weights: ``train.log`` (and the same lines on
the terminal), the progress bar, and the fields of ``metrics.json``.

``metrics.json`` holds :func:`final_metrics` plus what every callable of
:data:`FINAL_METRICS` adds: the extension point through which ``spikeforge.analysis``
(which train/ may not import) adds spike, SOP and energy statistics.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("spikeforge.train")

#: Callables ``fn(trainer, result) -> dict`` whose entries ``Trainer._finish`` adds to
#: ``metrics.json``: the extension point through which ``spikeforge.analysis``
#: (which train/ may not import) adds spike, SOP and energy statistics.
FINAL_METRICS: list = []


def final_metrics(trainer, result) -> dict:
    """The fields of ``metrics.json`` a :class:`~spikeforge.train.engine.Trainer` knows
    itself, from its history and the final evaluation ``result`` (an ``EvalResult``):
    accuracies, losses and firing rates (per epoch where they are lists), training
    seconds per epoch and in all, and what the run was (dataset, model, T, threads,
    config fingerprint; ``world_size`` under several processes)."""
    h = trainer.history
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
        "seconds": trainer.train_seconds,
        "dataset": trainer.cfg.data.name,
        "model": trainer.cfg.model.name,
        "time_steps": trainer.cfg.data.time_steps,
        "threads": trainer.threads,
        "config_sha256": trainer.config_sha256,
    }
    if trainer.dist.enabled:
        metrics["world_size"] = trainer.dist.world_size
    return metrics


def setup_logging(run_dir: str, console=None) -> None:
    """Send the ``spikeforge`` log to ``run_dir/train.log`` and, given a rich
    ``console``, to the terminal; the handlers of an earlier run in this process are
    closed first."""
    logger = logging.getLogger("spikeforge")
    logger.setLevel(logging.INFO)
    path = os.path.abspath(os.path.join(run_dir, "train.log"))
    for h in list(logger.handlers):
        if getattr(h, "_spikeforge_run", False):
            logger.removeHandler(h)
            h.close()
    fh = logging.FileHandler(path)
    fh.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    fh._spikeforge_run = True  # type: ignore[attr-defined]
    logger.addHandler(fh)
    if console is not None:
        from rich.logging import RichHandler

        rh = RichHandler(console=console, show_path=False, show_time=False)
        rh._spikeforge_run = True  # type: ignore[attr-defined]
        logger.addHandler(rh)


def progress_bar(console=None):
    """A rich progress bar on ``console`` showing the epoch's steps, the running loss,
    accuracy and firing rate (fields ``loss``, ``acc``, ``rate``); None without one."""
    if console is None:
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
        console=console,
        transient=False,
    )


def log_run_start(trainer) -> None:
    """Log what a :class:`~spikeforge.train.engine.Trainer` is about to train: run
    directory, dataset and split sizes, model and its parameter count, T, device,
    threads, and the epoch it resumes after."""
    cfg = trainer.cfg
    log.info(
        "run %s: dataset %s (%d train / %d test), model %s, %d parameters, T=%d, device %s, "
        "%d threads%s",
        trainer.run_dir,
        cfg.data.name,
        len(trainer.bundle.train),
        len(trainer.bundle.test),
        cfg.model.name,
        sum(p.numel() for p in trainer.model.parameters()),
        cfg.data.time_steps,
        trainer.device,
        trainer.threads,
        f", resuming after epoch {trainer.start_epoch}" if trainer.start_epoch else "",
    )


def log_epoch(epoch: int, epochs: int, loss: float, acc: float, test_acc: float, rate: float,
              seconds: float) -> None:
    """Log one finished epoch (``epoch`` counted from 0): training loss and accuracy, test
    accuracy, mean firing rate and the epoch's training time."""
    log.info(
        "epoch %d/%d  loss %.4f  train acc %.4f  test acc %.4f  firing rate %.4f  "
        "train time %.1f s",
        epoch + 1,
        epochs,
        loss,
        acc,
        test_acc,
        rate,
        seconds,
    )
