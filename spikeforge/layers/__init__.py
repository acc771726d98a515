"""Time-aware layers over time-first tensors ``[T, B, ...]``."""

from spikeforge.layers.attention import MultiDimensionalAttention, TemporalChannelJointAttention
from spikeforge.layers.matmul import SpikeMatmul
from spikeforge.layers.norm import BatchNormTB, ThresholdDependentBatchNorm, build_norm
from spikeforge.layers.residual import JOINS, MembraneShortcut, ResidualJoin
from spikeforge.layers.time import Flatten, MeanOverTime, TimeDistributed
from spikeforge.layers.transformer import (
    SpikeDrivenSelfAttention,
    SpikingPatchSplitting,
    SpikingSelfAttention,
)

__all__ = [
    "JOINS",
    "BatchNormTB",
    "Flatten",
    "MeanOverTime",
    "MembraneShortcut",
    "MultiDimensionalAttention",
    "ResidualJoin",
    "SpikeDrivenSelfAttention",
    "SpikeMatmul",
    "SpikingPatchSplitting",
    "SpikingSelfAttention",
    "TemporalChannelJointAttention",
    "ThresholdDependentBatchNorm",
    "TimeDistributed",
    "build_norm",
]
