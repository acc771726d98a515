"""Run directories that cannot be mixed up: what ``--out``, ``--resume`` and ``eval`` accept.

A run directory holds the files one run wrote (:data:`OWN_FILE`): ``config.yaml``
(written atomically before the first step, its first line :data:`MARKER`),
``train.log``, ``checkpoint.json`` with ``ckpt-epochN.safetensors``, and at the end
``model.safetensors`` and ``metrics.json``. Every file after ``config.yaml`` names
the config it belongs to by :func:`config_fingerprint`, so weights, checkpoint and
metrics of another run are found, never trained on or reported.

Rules for ``spikeforge train --out DIR`` (:func:`plan_new_run`):

- a new or empty directory: a new run;
- a run of the same config (up to ``progress`` and ``threads``, which do not change
  the result): continued from its checkpoint, or started over if it stopped before
  its first one; a finished one is refused (``spikeforge eval`` reads it);
- a run of another config, or one whose ``config.yaml`` is damaged: refused, naming
  what is there; an incomplete one (config but no checkpoint) is offered
  ``--resume DIR`` (which starts it over from epoch 0 with its own config);
- files that no run wrote: refused, naming them.

``--force`` replaces a run of another config (it deletes only the files a run wrote,
listed above) and writes beside files that no run wrote, but never over one of
them. ``--resume DIR`` continues the run in DIR with its own config
(:func:`plan_resume`). Nothing is written before these checks pass.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

import yaml

from spikeforge.errors import DamagedFileError, RunDirError
from spikeforge.train.checkpoint import (
    CONFIG_KEY,
    POINTER,
    atomic_write_text,
    json_checksum,
    load_tensors,
    read_pointer,
)
from spikeforge.train.checks import UnavailableError
from spikeforge.train.config import ConfigError, RunConfig, config_from_dict, config_to_dict

CONFIG = "config.yaml"
WEIGHTS = "model.safetensors"
METRICS = "metrics.json"
LOG = "train.log"
MARKER = "# spikeforge run config, written by `spikeforge train`; --resume and eval read it"
#: Names of the files a run writes (and their temporaries from a killed write:
#: ``spikeforge.io.atomic_write``'s ``NAME.<pid>.<hex>.tmp``, older ``NAME.tmp.<pid>``).
OWN_FILE = re.compile(
    r"(config\.yaml|model\.safetensors|metrics\.json|train\.log|checkpoint\.json"
    r"|ckpt-epoch\d+\.safetensors)(\.tmp\.\d+|\.\d+\.[0-9a-f]{8}\.tmp)?"
)
#: Keys that do not change what a run computes: a run of the same config up to
#: these is the same run.
RUNTIME_KEYS = ("progress", "threads")


def config_fingerprint(values: dict) -> str:
    """SHA-256 of a config as plain data (canonical JSON), the id a run's files carry."""
    return json_checksum(values)


def config_text(cfg: RunConfig) -> tuple[str, str]:
    """``(text of config.yaml, its fingerprint)`` for ``cfg``; the fingerprint is
    taken from the text as it will be read back."""
    text = f"{MARKER}\n" + yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    return text, config_fingerprint(yaml.safe_load(text))


def read_config(run_dir: str) -> tuple[RunConfig, str, dict]:
    """``(config, fingerprint, raw dict)`` of the run in ``run_dir``.

    Raises :class:`RunDirError` if there is no ``config.yaml`` and
    :class:`DamagedFileError` naming it if it cannot be read or is no valid config."""
    path = os.path.join(run_dir, CONFIG)
    if not os.path.isdir(run_dir):
        raise RunDirError(f"{run_dir} is not a spikeforge run directory: no such directory")
    if not os.path.isfile(path):
        raise RunDirError(f"{run_dir} is not a spikeforge run directory: it has no {CONFIG}")
    try:
        with open(path, "rb") as f:
            values = yaml.safe_load(f.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        problem = " ".join(str(e).split())[:160]
        raise DamagedFileError(path, f"run config is damaged ({problem})") from None
    if values is None:
        raise DamagedFileError(path, "run config is empty")
    if not isinstance(values, dict):
        raise DamagedFileError(path, "run config is damaged (not a mapping of keys)")
    try:
        cfg = config_from_dict(values)
    except UnavailableError as e:  # a run of another machine
        raise RunDirError(f"{path}: this run cannot run here: {e}") from None
    except ConfigError as e:
        raise DamagedFileError(path, f"run config is damaged or was edited ({e})") from None
    return cfg, config_fingerprint(values), values


@dataclass
class DirState:
    """What a directory holds: its entries, split into files a run wrote and others."""

    path: str
    exists: bool
    own: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    @property
    def is_run(self) -> bool:
        """Whether a spikeforge run wrote this directory: its ``config.yaml`` starts
        with :data:`MARKER`, or (runs written before the marker, or a config whose
        first line is damaged) it sits beside other files a run writes."""
        if CONFIG not in self.own:
            return False
        try:
            with open(os.path.join(self.path, CONFIG), "rb") as f:
                if f.readline().decode("utf-8", "replace").rstrip("\r\n") == MARKER:
                    return True
        except OSError:
            pass
        return any(not n.startswith(CONFIG) for n in self.own)

    def has(self, name: str) -> bool:
        """Whether the run file ``name`` is there."""
        return name in self.own


def inspect_dir(path: str) -> DirState:
    """The :class:`DirState` of ``path`` (which may not exist)."""
    if not os.path.isdir(path):
        return DirState(path, False)
    state = DirState(path, True)
    for name in sorted(os.listdir(path)):
        is_own = OWN_FILE.fullmatch(name) and os.path.isfile(os.path.join(path, name))
        (state.own if is_own else state.foreign).append(name)
    return state


def _listing(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b), key=str):
        if not prefix and k in RUNTIME_KEYS:
            continue
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {va!r} there, {vb!r} here")
    return out


def _progress_of(run_dir: str, cfg: RunConfig) -> tuple[str, str | None]:
    """``(what the run is, its checkpoint state)``: ``"finished"``, ``"stopped"`` (has a
    checkpoint) or ``"incomplete"`` (none), with a phrase for messages."""
    if not os.path.exists(os.path.join(run_dir, POINTER)):
        return "incomplete", "an incomplete run (it stopped before its first checkpoint)"
    try:
        epoch = read_pointer(run_dir)["epoch"]
    except DamagedFileError as e:
        return "stopped", f"a run with a damaged checkpoint ({e.problem})"
    if epoch >= cfg.epochs and all(
        os.path.exists(os.path.join(run_dir, n)) for n in (WEIGHTS, METRICS)
    ):
        return "finished", f"a finished run ({epoch} epoch{'s' if epoch != 1 else ''})"
    return "stopped", f"a run stopped after epoch {epoch} of {cfg.epochs}"


def _check_writable(out: str) -> None:
    if out.strip() == "" or "\0" in out:
        raise RunDirError(f"--out {out!r} is not a usable directory name")
    if os.path.exists(out) and not os.path.isdir(out):
        raise RunDirError(f"--out {out} is a file, not a directory; pick a directory")
    probe = os.path.abspath(out)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise RunDirError(f"--out {out}: cannot create it, {probe} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        where = "it" if probe == os.path.abspath(out) else f"its parent {probe}"
        raise RunDirError(f"--out {out}: {where} is not writable; pick another --out")


def plan_new_run(out: str, cfg: RunConfig, force: bool = False) -> str:
    """Decide what ``spikeforge train --out out`` does with ``cfg``; writes nothing.

    Returns ``"new"`` (nothing of a run there), ``"replace"`` (``--force`` over a run
    of another config), ``"resume"`` (the same config, stopped after a checkpoint) or
    ``"restart"`` (the same config, stopped before one). Raises :class:`RunDirError`
    naming what is there when the directory cannot be used (see the module docstring).
    """
    _check_writable(out)
    state = inspect_dir(out)
    if not state.own and not state.foreign:
        return "new"
    if not state.is_run:
        if force and not state.own:
            return "new"
        if force:
            raise RunDirError(
                f"--out {out} holds {_listing(state.own)}, which no spikeforge run wrote there "
                "(no config.yaml of a run beside them); --force never overwrites such files: "
                "move them or pick another --out"
            )
        raise RunDirError(
            f"--out {out} is not empty and holds no spikeforge run (it has "
            f"{_listing(state.own + state.foreign)}); pick a new or empty --out, "
            "or --force to write the run beside those files"
        )
    try:
        there, _, raw = read_config(out)
    except DamagedFileError as e:
        if force:
            return "replace"
        raise RunDirError(
            f"--out {out} holds a run whose {CONFIG} is damaged ({e.problem}); pick "
            "another --out, or --force to replace that run"
        ) from None
    kind, what = _progress_of(out, there)
    differences = _diff(raw, yaml.safe_load(config_text(cfg)[0]))
    if not differences:
        if kind == "incomplete":
            return "restart"
        if kind == "stopped" and "damaged" not in what:
            return "resume"
        if force:
            return "replace"
        hint = (
            f"evaluate it with `spikeforge eval {out}`"
            if kind == "finished"
            else "pick another --out"
        )
        raise RunDirError(
            f"--out {out} holds {what} of this config; {hint}, or --force to train it again"
        )
    if force:
        return "replace"
    offer = (
        f"`spikeforge train --resume {out}` starts it over from epoch 0 with its own config"
        if kind == "incomplete"
        else f"`spikeforge train --resume {out}` continues it" if kind == "stopped"
        else f"`spikeforge eval {out}` evaluates it"
    )
    shown = "; ".join(differences[:3]) + (" ..." if len(differences) > 3 else "")
    raise RunDirError(
        f"--out {out} holds {what} of another config ({shown}); {offer}, "
        "--force replaces it, or pick another --out"
    )


def plan_resume(run_dir: str) -> str:
    """Decide what ``spikeforge train --resume run_dir`` does; writes nothing.

    Returns ``"resume"`` (from the checkpoint) or ``"restart"`` (no checkpoint yet:
    from epoch 0 with the run's own config). Raises :class:`RunDirError` for a
    directory that is not a run or a run that has finished, and
    :class:`DamagedFileError` for a damaged ``config.yaml`` or checkpoint pointer."""
    cfg, fingerprint, _ = read_config(run_dir)
    if not os.path.exists(os.path.join(run_dir, POINTER)):
        return "restart"
    pointer = read_pointer(run_dir)
    if pointer.get("config_sha256", fingerprint) != fingerprint:
        raise DamagedFileError(
            os.path.join(run_dir, POINTER),
            f"checkpoint belongs to another config than {CONFIG} "
            f"({CONFIG} damaged or edited, or the checkpoint copied from another run)",
        )
    if pointer["epoch"] > cfg.epochs:
        raise DamagedFileError(
            os.path.join(run_dir, POINTER),
            f"checkpoint is of epoch {pointer['epoch']}, but {CONFIG} asks for {cfg.epochs}",
        )
    if pointer["epoch"] == cfg.epochs and os.path.exists(os.path.join(run_dir, METRICS)):
        if os.path.exists(os.path.join(run_dir, WEIGHTS)):
            check_finished_files(run_dir, fingerprint)
            raise RunDirError(
                f"{run_dir} has finished its {cfg.epochs} epoch(s); nothing to resume "
                f"(`spikeforge eval {run_dir}` evaluates it)"
            )
    return "resume"


def _is_tmp(name: str) -> bool:
    return name.endswith(".tmp") or ".tmp." in name


def claim(out: str, plan: str, text: str | None = None) -> None:
    """Make ``out`` ready for the run that :func:`plan_new_run` or
    :func:`plan_resume` planned: delete the files of the run being replaced
    (``"replace"``: all of them; ``"restart"``: all but ``config.yaml`` and
    ``train.log``) and torn temporaries, then write ``config.yaml`` (``text``)
    atomically for a new or replaced run. The pointer goes first, so a kill half-way
    leaves an incomplete run, never a checkpoint beside the wrong config."""
    try:
        os.makedirs(out, exist_ok=True)
        state = inspect_dir(out)
        keep = {"replace": set(), "restart": {CONFIG, LOG}}.get(plan)
        doomed = [n for n in state.own if _is_tmp(n)]
        if keep is not None:  # config.yaml of a replaced run is replaced, not deleted
            doomed += [n for n in state.own if n not in keep | {CONFIG} and not _is_tmp(n)]
        doomed.sort(key=lambda n: n != POINTER)
        for name in doomed:
            os.remove(os.path.join(out, name))
        if plan in ("new", "replace"):
            atomic_write_text(os.path.join(out, CONFIG), text)
    except OSError as e:
        where = e.filename or out
        raise RunDirError(f"cannot write the run directory {out}: {e.strerror} ({where})") from None


def check_metrics(run_dir: str, fingerprint: str) -> None:
    """If ``metrics.json`` is there it must parse and name the config ``fingerprint``."""
    path = os.path.join(run_dir, METRICS)
    if not os.path.exists(path):
        return
    try:
        with open(path, "rb") as f:
            metrics = json.loads(f.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        problem = " ".join(str(e).split())[:160]
        raise DamagedFileError(path, f"metrics file is damaged ({problem})") from None
    if not isinstance(metrics, dict):
        raise DamagedFileError(path, "metrics file is damaged (not a JSON object)")
    if metrics.get("config_sha256", fingerprint) != fingerprint:
        raise DamagedFileError(path, f"metrics belong to another run than {CONFIG}")


def check_finished_files(run_dir: str, fingerprint: str) -> dict:
    """Read ``model.safetensors`` (checksum, and the config it names) and check
    ``metrics.json``; returns the weights. Raises naming the file that is damaged or
    belongs to another run."""
    path = os.path.join(run_dir, WEIGHTS)
    if not os.path.exists(path):
        raise RunDirError(
            f"{run_dir} has no {WEIGHTS}: the run did not finish; continue it with "
            f"`spikeforge train --resume {run_dir}`"
        )
    tensors, meta = load_tensors(path, "weights")
    if meta.get(CONFIG_KEY, fingerprint) != fingerprint:
        raise DamagedFileError(
            path,
            f"weights belong to another run than {CONFIG} (written with another config; "
            f"{CONFIG} damaged or edited, or the weights copied from elsewhere)",
        )
    check_metrics(run_dir, fingerprint)
    return tensors


def check_state_fits(path: str, state: dict, model) -> None:
    """Raise :class:`DamagedFileError` naming ``path`` unless ``state`` has exactly the
    keys and shapes of ``model.state_dict()``."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    shapes = [
        f"{k}: {tuple(state[k].shape)} in the file, {tuple(v.shape)} in the model"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {_listing(missing, 3)}")
    if extra:
        problems.append(f"unexpected {_listing(extra, 3)}")
    if shapes:
        problems.append(_listing(shapes, 2))
    if problems:
        raise DamagedFileError(
            path, f"does not fit the model that {CONFIG} describes ({'; '.join(problems)})"
        )
