"""Runs and NIR files: ``spikeforge export RUN_DIR --nir FILE`` and ``spikeforge import-nir
FILE --out RUN_DIR``, and the zoo model ``nir`` that rebuilds an imported network so that
``spikeforge eval`` (and anything else that loads a run) works on it.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings

import yaml
from safetensors.torch import save_file

from spikeforge.deploy.graph import NIRGraphError
from spikeforge.deploy.nir_export import NIRExportWarning, export_nir
from spikeforge.deploy.nir_import import from_nir
from spikeforge.models.zoo import ModelInfo, register_model


@register_model("nir", ModelInfo(input="that of its NIR file (spikeforge import-nir)"))
def nir_model(input_shape, num_classes, cfg):
    """The network of the NIR file ``cfg.nir["file"]`` (``model.nir`` in the config), read
    with ``convention``, ``dt`` and ``reset`` from the same mapping; checked against the
    dataset's input shape and class count."""
    spec = dict(getattr(cfg, "nir", None) or {})
    if not spec.get("file"):
        raise NIRGraphError("model.name=nir needs model.nir.file, the NIR file to run")
    net = from_nir(spec["file"], dt=spec.get("dt"), convention=spec.get("convention", "nir"),
                   reset=spec.get("reset"))
    shapes = net.node_shapes(tuple(input_shape))
    out = shapes[net.outputs[0]]
    if tuple(out) != (num_classes,):
        raise NIRGraphError(f"{spec['file']}: output node {net.outputs[0]!r} has per-sample "
                            f"shape {tuple(out)}, the dataset has {num_classes} classes")
    return net


def export_run(run_dir: str, path: str, dt: float | None = None, target: str = "nir") -> dict:
    """Write the trained model of ``run_dir`` to the NIR file ``path``; returns a summary
    (file, dt, target, node count, the export warnings)."""
    from spikeforge.train import load_trained

    trainer = load_trained(run_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NIRExportWarning)
        graph = export_nir(trainer.model, path, trainer.bundle.input_shape, dt, target)
    return {"file": str(path), "dt": graph.metadata["dt"], "target": target,
            "nodes": len(graph.nodes),
            "warnings": [str(w.message) for w in caught if w.category is NIRExportWarning]}


def import_run(path: str, out: str, convention: str = "nir", dt: float | None = None,
               reset: str | None = None, config: str | None = None,
               overrides: list[str] | None = None) -> dict:
    """Make ``out`` a run directory holding the NIR network of ``path`` (copied to
    ``out/model.nir``): ``config.yaml`` (``model.name: nir``, the dataset from ``config``
    and ``overrides``) and ``model.safetensors``, so that ``spikeforge eval out`` runs it."""
    from spikeforge.train.config import config_to_dict, load_config

    net = from_nir(path, dt=dt, convention=convention, reset=reset)  # fails early, naming the node
    os.makedirs(out, exist_ok=True)
    target = os.path.abspath(os.path.join(out, "model.nir"))
    if os.path.abspath(path) != target:
        shutil.copyfile(path, target)
    spec = {"file": target, "convention": convention, "dt": net.metadata["dt"], "reset": reset}
    cfg = load_config(config, list(overrides or []) + ["model.name=nir"])
    values = config_to_dict(cfg)
    values["model"]["nir"] = spec
    with open(os.path.join(out, "config.yaml"), "w") as f:
        yaml.safe_dump(values, f, sort_keys=False)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, os.path.join(out, "model.safetensors"))
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump({"imported_from": os.path.abspath(path), "convention": convention}, f)
    return {"run_dir": out, "file": target, "convention": convention, "dt": spec["dt"]}
