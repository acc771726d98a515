"""Time-aware layers over time-first tensors ``[T, B, ...]``."""

from spikeforge.layers.matmul import SpikeMatmul
from spikeforge.layers.time import Flatten, MeanOverTime, TimeDistributed

__all__ = ["Flatten", "MeanOverTime", "SpikeMatmul", "TimeDistributed"]
