"""Continuing a stopped run: its last checkpoint loaded into the live model, optimizer
and scheduler of a :class:`~spikeforge.train.engine.Trainer`.

Every part is checked before anything is loaded: the checkpoint must belong to the
run's config (its fingerprint), its tensors must fit the model the config builds, its
history must have one entry per finished epoch, and the optimizer state must fit the
optimizer; otherwise a :class:`~spikeforge.errors.DamagedFileError` names the file.
"""

from __future__ import annotations

import os

from spikeforge.errors import DamagedFileError
from spikeforge.train import rundir
from spikeforge.train.checkpoint import POINTER, load_checkpoint


def restore_checkpoint(run_dir: str, config_sha256: str | None, model, optimizer, scheduler,
                       history_keys: set[str]) -> tuple[int, dict[str, list], float]:
    """Load the checkpoint of ``run_dir`` into ``model``, ``optimizer`` and ``scheduler``
    (``None``: none) and return ``(epochs done, history, training seconds)``.

    Args:
        config_sha256: the run's config fingerprint the checkpoint must carry.
        history_keys: the names of the trainer's history lists, which the checkpoint's
            history must have, each with one entry per epoch done.
    """
    pointer, model_state, opt_state = load_checkpoint(run_dir)
    tensors = os.path.join(run_dir, pointer["tensors"])
    pointer_path = os.path.join(run_dir, POINTER)
    if pointer.get("config_sha256", config_sha256) != config_sha256:
        raise DamagedFileError(pointer_path, "checkpoint belongs to another config")
    rundir.check_state_fits(tensors, model_state, model)
    history = pointer["history"]
    epoch = int(pointer["epoch"])
    if set(history) != history_keys or any(
        not isinstance(v, list) or len(v) != epoch for v in history.values()
    ):
        raise DamagedFileError(pointer_path, "checkpoint history does not fit its epoch")
    try:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(opt_state)
        if scheduler is not None and pointer.get("scheduler"):
            scheduler.load_state_dict(pointer["scheduler"])
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        problem = " ".join(str(e).split())[:160]
        raise DamagedFileError(
            tensors, f"checkpoint does not fit this run's optimizer ({problem})"
        ) from None
    return epoch, history, float(pointer["train_seconds"])
