"""Atomic checkpoints: safetensors for tensors, JSON for everything else; nothing is unpickled.

Layout in a run directory::

    checkpoint.json            pointer + trainer state (epoch, history, optimizer
                               hyper-parameters, scheduler state); written last
    ckpt-epoch<N>.safetensors  model and optimizer tensors of epoch N

Every file is written to a temporary name, flushed to disk and renamed into
place, and ``checkpoint.json`` is renamed only after its tensors are complete,
so a run killed at any moment leaves either the previous checkpoint or the new
one, never a torn file.

Every file carries a checksum, so damage is found when a file is read, never
trained on: a safetensors file written here holds the SHA-256 of its tensors
(names, dtypes, shapes, bytes) in its metadata (``spikeforge.sha256``), and
``checkpoint.json`` holds the SHA-256 of its own canonical JSON (``checksum``). Both
also name the config they belong to (``config_sha256``, see
:func:`spikeforge.train.rundir.config_fingerprint`). A file that fails to parse,
fails its checksum or lacks a key is a :class:`~spikeforge.errors.DamagedFileError`
naming it. Files of older runs, written without checksums, are still read.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save

from spikeforge.errors import DamagedFileError
from spikeforge.io import (  # noqa: F401  (atomic_write_* re-exported for the engine)
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
)

POINTER = "checkpoint.json"
DIGEST_KEY = "spikeforge.sha256"
CONFIG_KEY = "spikeforge.config_sha256"


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors' names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def atomic_save_tensors(
    tensors: dict[str, torch.Tensor], path: str, metadata: dict[str, str] | None = None
) -> None:
    """Save tensors as safetensors at ``path`` atomically
    (:func:`spikeforge.io.atomic_write`), with their digest in the metadata
    (``spikeforge.sha256``) beside ``metadata``."""
    clean = {k: v.detach().contiguous().cpu().clone() for k, v in tensors.items()}
    data = save(clean, metadata={**(metadata or {}), DIGEST_KEY: tensors_digest(clean)})
    atomic_write(path, lambda f: f.write(data))


def load_tensors(path: str, what: str = "tensors") -> tuple[dict[str, torch.Tensor], dict]:
    """Read a safetensors file and check its digest; returns ``(tensors, metadata)``.

    Raises :class:`DamagedFileError` naming ``path`` (described as ``what``) if it is
    missing, unreadable or fails its checksum."""
    if not os.path.isfile(path):
        raise DamagedFileError(path, f"{what} file is missing")
    try:
        with safe_open(path, framework="pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # safetensors raises its own errors and Rust panics
        raise DamagedFileError(path, f"{what} file is damaged ({_short(e)})") from None
    digest = metadata.get(DIGEST_KEY)
    if digest is None and CONFIG_KEY in metadata:
        raise DamagedFileError(path, f"{what} file is damaged (its checksum is missing)")
    if digest is not None and digest != tensors_digest(tensors):
        raise DamagedFileError(path, f"{what} file is damaged (checksum mismatch)")
    return tensors, metadata


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def json_checksum(value: dict) -> str:
    """SHA-256 of ``value`` as canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


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
    config_sha256: str | None = None,
) -> str:
    """Write the checkpoint of a finished ``epoch`` (1-based) and drop older ones;
    ``config_sha256`` names the run's config in both files."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_tensors, opt_json = split_optimizer_state(optimizer)
    tensors.update(opt_tensors)
    name = f"ckpt-epoch{epoch}.safetensors"
    meta = {CONFIG_KEY: config_sha256} if config_sha256 else None
    atomic_save_tensors(tensors, os.path.join(run_dir, name), meta)
    pointer = {"epoch": epoch, "tensors": name, "optimizer": opt_json, **_jsonable(trainer_state)}
    if config_sha256:
        pointer["config_sha256"] = config_sha256
    pointer["checksum"] = json_checksum(pointer)
    atomic_write_text(os.path.join(run_dir, POINTER), json.dumps(pointer, indent=1))
    for f in os.listdir(run_dir):
        if f.startswith("ckpt-epoch") and f != name:
            os.remove(os.path.join(run_dir, f))
    return name


def read_pointer(run_dir: str) -> dict:
    """``checkpoint.json`` of ``run_dir``, checked: parses, passes its checksum, and
    has the keys and types a checkpoint needs. Raises :class:`DamagedFileError`
    (or ``FileNotFoundError`` when there is none)."""
    path = os.path.join(run_dir, POINTER)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir} has no {POINTER}: the run never finished an epoch")
    try:
        with open(path, "rb") as f:
            pointer = json.loads(f.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DamagedFileError(path, f"checkpoint pointer is damaged ({_short(e)})") from None
    if not isinstance(pointer, dict):
        raise DamagedFileError(path, "checkpoint pointer is damaged (not a JSON object)")
    checksum = pointer.pop("checksum", None)
    if checksum is None and "config_sha256" in pointer:
        raise DamagedFileError(path, "checkpoint pointer is damaged (its checksum is missing)")
    if checksum is not None and checksum != json_checksum(pointer):
        raise DamagedFileError(path, "checkpoint pointer is damaged (checksum mismatch)")
    epoch = pointer.get("epoch")
    problems = []
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        problems.append(f"'epoch' must be a positive integer, got {epoch!r}")
    elif pointer.get("tensors") != f"ckpt-epoch{epoch}.safetensors":
        # also keeps a damaged name from pointing outside the run directory
        problems.append(f"'tensors' must be 'ckpt-epoch{epoch}.safetensors'")
    opt = pointer.get("optimizer")
    if not (
        isinstance(opt, dict)
        and isinstance(opt.get("param_groups"), list)
        and isinstance(opt.get("scalars"), dict)
    ):
        problems.append("'optimizer' must hold 'param_groups' and 'scalars'")
    if not isinstance(pointer.get("history"), dict):
        problems.append("'history' must be an object")
    if not isinstance(pointer.get("train_seconds"), (int, float)):
        problems.append("'train_seconds' must be a number")
    if problems:
        raise DamagedFileError(path, f"checkpoint pointer is damaged ({'; '.join(problems)})")
    return pointer


def load_checkpoint(run_dir: str) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """Read ``(pointer, model_state, optimizer_state_dict)`` of the last complete
    checkpoint, every file checked (:func:`read_pointer`, :func:`load_tensors`); the
    tensors must name the same config as the pointer."""
    pointer = read_pointer(run_dir)
    tensor_path = os.path.join(run_dir, pointer["tensors"])
    tensors, meta = load_tensors(tensor_path, "checkpoint")
    if meta.get(CONFIG_KEY) != pointer.get("config_sha256"):
        raise DamagedFileError(
            tensor_path, f"checkpoint belongs to another run than {POINTER} (config differs)"
        )
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        opt_state = merge_optimizer_state(tensors, pointer["optimizer"])
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise DamagedFileError(
            tensor_path, f"optimizer state does not fit {POINTER} ({_short(e)})"
        ) from None
    return pointer, model_state, opt_state
