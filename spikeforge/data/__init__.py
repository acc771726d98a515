"""Datasets (embedded defaults, neuromorphic sets), transforms and the dataset registry."""

from spikeforge.data import (
    cifar,  # noqa: F401
    embedded,  # noqa: F401  (registers the embedded datasets)
    neuromorphic,  # noqa: F401
    nmnist_sim,  # noqa: F401
)
from spikeforge.data.events import EventDataset, get_raw_events, register_raw_events
from spikeforge.data.registry import DATASETS, DatasetBundle, get_dataset, register_dataset

__all__ = [
    "DATASETS",
    "DatasetBundle",
    "EventDataset",
    "get_dataset",
    "get_raw_events",
    "register_dataset",
    "register_raw_events",
]
