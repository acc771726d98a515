"""Model zoo: time-first spiking networks behind a name registry.

Importing this package registers every model (``spikeforge models`` lists them).
"""

from spikeforge.models import (  # noqa: F401  (registers the zoo)
    ann,
    converted,
    event_cnn,
    resnet,
    transformer,
    vgg,
)
from spikeforge.models.zoo import (
    MODEL_INFO,
    MODELS,
    ModelInfo,
    ModelInputError,
    SpikingCNN,
    SpikingMLP,
    build_model,
    register_model,
)

__all__ = [
    "MODELS",
    "MODEL_INFO",
    "ModelInfo",
    "ModelInputError",
    "SpikingCNN",
    "SpikingMLP",
    "build_model",
    "register_model",
]
