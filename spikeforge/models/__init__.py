"""Model zoo: time-first spiking networks behind a name registry."""

from spikeforge.models.zoo import MODELS, SpikingCNN, SpikingMLP, build_model, register_model

__all__ = ["MODELS", "SpikingCNN", "SpikingMLP", "build_model", "register_model"]
