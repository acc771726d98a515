"""spikeforge: spiking neural networks on PyTorch.

Layers (see docs/architecture.md): ``ops`` (fused kernels) -> ``functional`` (pure dynamics,
surrogates, encoders, losses) -> ``neurons`` (nn.Module neurons) -> ``layers`` ->
``models`` -> ``data`` -> ``train`` -> ``analysis`` -> ... -> ``cli``.
Tensors are time-first, ``[T, B, ...]``.
"""

__version__ = "0.1.0"
