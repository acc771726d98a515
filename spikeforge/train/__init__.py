"""Training engine: config schema, loop, checkpoints and resume."""

from spikeforge.train.config import ConfigError, RunConfig, load_config
from spikeforge.train.engine import Trainer, load_trained

__all__ = ["ConfigError", "RunConfig", "Trainer", "load_config", "load_trained"]
