"""The values a config is made from, before the schema: a YAML file and ``key.sub=value``
overrides from the command line, merged into one nested dict
(:func:`spikeforge.train.config.load_config` builds and validates the config from it).
A file that cannot be read, is not YAML or holds no mapping, and an override that is
not ``key=value``, are a :class:`~spikeforge.errors.ConfigError` naming it.
"""

from __future__ import annotations

import yaml

from spikeforge.errors import ConfigError


def apply_override(values: dict, override: str) -> None:
    """Apply one ``a.b.c=value`` override (value parsed as YAML) to a nested dict."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} must look like key.sub=value")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {override!r} has an empty key part")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"override {key}: cannot parse value {raw!r}: {e}") from e
    node = values
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}: {p!r} is not a section")
    node[parts[-1]] = value


def read_values(path: str | None = None, overrides: list[str] | None = None) -> dict:
    """The YAML file at ``path`` (none: an empty dict) with ``overrides`` applied in order."""
    values: dict = {}
    if path is not None:
        try:
            with open(path) as f:
                loaded = yaml.safe_load(f)
        except FileNotFoundError as e:
            raise ConfigError(f"config file not found: {path}") from e
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or e
            raise ConfigError(f"cannot read config file {path}: {reason}") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        values = loaded or {}
    for o in overrides or []:
        apply_override(values, o)
    return values
