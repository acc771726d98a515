"""A convolutional SNN made for event-driven deployment.

Neuromorphic chips that run without a clock (and :mod:`spikeforge.deploy`'s
event-driven simulator) process spikes through weights alone: no bias, which
would need a clock to integrate, and no batch norm, whose folding creates one.
``event_cnn`` is such a network: two strided convolutions without bias (then,
for each further width in ``model.channels``, a 3x3 convolution of stride 1), each
followed by the configured neuron (IF with reset by subtraction, ``model.neuron=if
model.v_reset=null``, is what event-driven chips use), then a linear readout
without bias::

    [T, B, C, H, W] -> Conv 5x5 stride 2 (channels[0]) -> neuron
                    -> Conv 3x3 stride 2 (channels[1]) -> neuron
                    -> flatten -> Linear -> scores [T, B, classes]

It is the network of the mixed time-step training experiment on ``nmnist-sim``
(``benchmarks/mtt_nmnist_sim.py``), after the event-driven models of Du et al.
(ICLR 2025), which train bias-free networks for the Speck chip.
"""

from __future__ import annotations

from torch import nn

from spikeforge.layers import Flatten, TimeDistributed
from spikeforge.models.zoo import ModelInfo, image_check, neuron_factory, register_model


class EventCNN(nn.Module):
    """See the module docstring; ``cfg.channels`` gives the two widths."""

    def __init__(self, input_shape, num_classes: int, cfg) -> None:
        super().__init__()
        if len(cfg.channels) < 2:
            raise ValueError(f"event_cnn takes model.channels of 2 or more widths, got "
                             f"{cfg.channels}")
        c_in, h, w = input_shape
        c1, c2, *more = cfg.channels
        make = neuron_factory(cfg)
        h1, w1 = (h + 1) // 2, (w + 1) // 2
        h2, w2 = (h1 + 1) // 2, (w1 + 1) // 2
        layers = [
            TimeDistributed(nn.Conv2d(c_in, c1, 5, stride=2, padding=2, bias=False)),
            make(),
            TimeDistributed(nn.Conv2d(c1, c2, 3, stride=2, padding=1, bias=False)),
            make(),
        ]
        for c in more:  # deeper variants keep the 9x9 map
            layers += [TimeDistributed(nn.Conv2d(c2, c, 3, padding=1, bias=False)), make()]
            c2 = c
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            Flatten(), TimeDistributed(nn.Linear(c2 * h2 * w2, num_classes, bias=False))
        )

    def forward(self, x):
        return self.classifier(self.features(x))


@register_model("event_cnn", ModelInfo("[C, H, W] event frames", (2, 34, 34), image_check(4)))
def event_cnn(input_shape, num_classes, cfg) -> nn.Module:
    """The bias-free convolutional SNN for event-driven deployment (:class:`EventCNN`)."""
    return EventCNN(input_shape, num_classes, cfg)
