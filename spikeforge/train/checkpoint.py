"""Atomic checkpoints: safetensors for tensors, JSON for everything else; nothing is unpickled.

Layout in a run directory::

    checkpoint.json            pointer + trainer state (epoch, history, optimizer
                               hyper-parameters, scheduler state); written last
    ckpt-epoch<N>.safetensors  model and optimizer tensors of epoch N

Every file is written to a temporary name, flushed to disk and renamed into
place, and ``checkpoint.json`` is renamed only after its tensors are complete,
so a run killed at any moment leaves either the previous checkpoint or the new
one, never a torn file.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from safetensors.torch import load_file, save

from spikeforge.io import (  # noqa: F401  (atomic_write_* re-exported for the engine)
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
)

POINTER = "checkpoint.json"


def atomic_save_tensors(tensors: dict[str, torch.Tensor], path: str, metadata=None) -> None:
    """Save tensors as safetensors at ``path`` atomically (:func:`spikeforge.io.atomic_write`)."""
    clean = {k: v.detach().contiguous().cpu().clone() for k, v in tensors.items()}
    data = save(clean, metadata=metadata)
    atomic_write(path, lambda f: f.write(data))


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        return value.item()
    return value


def split_optimizer_state(optimizer: torch.optim.Optimizer):
    """Optimizer state as ``(tensors, json_state)``: tensors keyed ``optim.<param>.<name>``."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{name}"] = value
            else:
                scalars[f"{pid}.{name}"] = value
    return tensors, {"param_groups": _jsonable(sd["param_groups"]), "scalars": scalars}


def merge_optimizer_state(tensors: dict[str, torch.Tensor], json_state: dict) -> dict:
    """Inverse of :func:`split_optimizer_state`: a dict for ``optimizer.load_state_dict``."""
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for key, value in json_state["scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": json_state["param_groups"]}


def save_checkpoint(
    run_dir: str,
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    trainer_state: dict,
) -> str:
    """Write the checkpoint of a finished ``epoch`` (1-based) and drop older ones."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_tensors, opt_json = split_optimizer_state(optimizer)
    tensors.update(opt_tensors)
    name = f"ckpt-epoch{epoch}.safetensors"
    atomic_save_tensors(tensors, os.path.join(run_dir, name))
    pointer = {"epoch": epoch, "tensors": name, "optimizer": opt_json, **_jsonable(trainer_state)}
    atomic_write_text(os.path.join(run_dir, POINTER), json.dumps(pointer, indent=1))
    for f in os.listdir(run_dir):
        if f.startswith("ckpt-epoch") and f != name:
            os.remove(os.path.join(run_dir, f))
    return name


def load_checkpoint(run_dir: str) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """Read ``(pointer, model_state, optimizer_state_dict)`` of the last complete checkpoint."""
    path = os.path.join(run_dir, POINTER)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{run_dir} has no {POINTER}: the run never finished an epoch, start it again"
        )
    with open(path) as f:
        try:
            pointer = json.load(f)
        except json.JSONDecodeError as e:
            raise RuntimeError(f"{path} is corrupt ({e})") from e
    tensor_path = os.path.join(run_dir, pointer["tensors"])
    try:
        tensors = load_file(tensor_path)
    except Exception as e:
        raise RuntimeError(f"checkpoint tensors {tensor_path} are missing or corrupt: {e}") from e
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    opt_state = merge_optimizer_state(tensors, pointer["optimizer"])
    return pointer, model_state, opt_state
