"""Commands that print what spikeforge offers: ``spikeforge config`` (the resolved
config), ``spikeforge models`` and ``spikeforge datasets`` (the registries)."""

from __future__ import annotations

from spikeforge.commands import OVERRIDE_HELP


def add_config_parser(sub, debug) -> None:
    """Add ``config`` to the subparsers ``sub`` (``debug``: the shared ``--debug`` parent)."""
    c = sub.add_parser(
        "config",
        parents=[debug],
        help="print the resolved config (defaults <- FILE <- overrides) as YAML",
        description="Print the full config that spikeforge train would use.",
    )
    c.add_argument("--config", metavar="FILE", help="YAML config file to merge over the defaults")
    c.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDE_HELP)


def add_registry_parsers(sub, debug) -> None:
    """Add ``models`` and ``datasets`` to the subparsers ``sub``."""
    sub.add_parser(
        "models",
        parents=[debug],
        help="list the registered models with parameter counts and input shapes",
        description="List every model name usable as model.name, its parameter count "
        "(built for 10 classes at its example input shape) and the inputs it takes.",
    )
    sub.add_parser(
        "datasets",
        parents=[debug],
        help="list the registered datasets",
        description="List every dataset name usable as data.name / --dataset.",
    )


def cmd_config(args) -> int:
    """``spikeforge config``: print the resolved config as YAML."""
    import yaml

    from spikeforge.train.config import config_to_dict, load_config

    print(yaml.safe_dump(config_to_dict(load_config(args.config, args.overrides)), sort_keys=False))
    return 0


def cmd_models(args) -> int:
    """``spikeforge models``: every registered model, its parameter count and inputs."""
    import spikeforge.deploy  # noqa: F401  (registers model "nir": runs of import-nir)
    from spikeforge.models import MODEL_INFO, MODELS, build_model
    from spikeforge.train.config import ModelConfig

    cfg = ModelConfig()
    print(f"{'name':18s} {'parameters':>11s}  example input  takes")
    for name in MODELS:
        info = MODEL_INFO[name]
        shape = "x".join(str(d) for d in info.example_shape)
        try:
            model = build_model(name, info.example_shape, 10, cfg, time_steps=4)
            n = f"{sum(p.numel() for p in model.parameters()):,d}"
        except Exception:  # built from a file (nir) or another run (converted)
            n, shape = "-", "-"
        print(f"{name:18s} {n:>11s}  {shape:13s}  {info.input}")
    return 0


def cmd_datasets(args) -> int:
    """``spikeforge datasets``: every registered dataset with its description."""
    from spikeforge.data.registry import DESCRIPTIONS

    for name in sorted(DESCRIPTIONS):
        print(f"{name:14s} {DESCRIPTIONS[name]}")
    return 0
