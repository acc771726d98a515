"""Model zoo: time-first spiking networks behind a name registry.

Importing it registers ``default_cnn`` and ``mlp`` (:mod:`~spikeforge.models.zoo`),
the ANNs for conversion ``ann_cnn`` and ``ann_mlp`` (:mod:`~spikeforge.models.ann`)
and the converted SNN ``converted`` (:mod:`~spikeforge.models.converted`).
"""

from spikeforge.models import ann, converted  # noqa: F401  (registration)
from spikeforge.models.zoo import MODELS, SpikingCNN, SpikingMLP, build_model, register_model

__all__ = ["MODELS", "SpikingCNN", "SpikingMLP", "build_model", "register_model"]
