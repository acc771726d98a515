"""CIFAR-10 through torchvision (when installed): the static-image set of the ResNet-19,
MS-ResNet and Spikformer configs.

Read with ``torchvision.datasets.CIFAR10`` from ``data.root`` (downloaded there only
with ``data.download=true``); images become float32 ``[3, 32, 32]`` in ``[0, 1]``,
normalised per channel with the training set's mean and std (the papers' recipe).
The training batches are augmented with ``data.augment`` (null: ``translate:4`` and
``flip``, the random crop with 4-pixel padding and horizontal flip of the papers).
Without torchvision the error says how to install it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

from spikeforge.data.augment import build_batch_augment
from spikeforge.data.registry import DatasetBundle, register_dataset
from spikeforge.errors import SpikeforgeError

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def _torchvision():
    try:
        import torchvision
    except ImportError as e:
        raise SpikeforgeError(
            "dataset cifar10 is read through torchvision, which is not installed: "
            "pip install --no-deps torchvision (a build matching your torch)"
        ) from e
    return torchvision


@register_dataset("cifar10", "CIFAR-10 via torchvision (data.root, data.download=true)")
def cifar10(cfg) -> DatasetBundle:
    """CIFAR-10's 50,000 / 10,000 split (see the module docstring)."""
    tv = _torchvision()
    root = getattr(cfg, "root", None)
    if root is None:
        raise FileNotFoundError(
            "dataset cifar10 needs data.root=DIR (and data.download=true to fetch it there)"
        )
    splits = []
    for train in (True, False):
        try:
            ds = tv.datasets.CIFAR10(root, train=train, download=bool(cfg.download))
        except RuntimeError as e:
            raise FileNotFoundError(
                f"CIFAR-10 not found under {root}: pass data.download=true to fetch it ({e})"
            ) from e
        x = torch.from_numpy(np.asarray(ds.data)).permute(0, 3, 1, 2).float() / 255
        x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
        splits.append(TensorDataset(x.contiguous(), torch.tensor(ds.targets)))
    augment = cfg.augment if cfg.augment is not None else ["translate:4", "flip"]
    return DatasetBundle(
        train=splits[0],
        test=splits[1],
        input_shape=(3, 32, 32),
        num_classes=10,
        temporal=False,
        info={"name": "cifar10", "train_size": 50000, "test_size": 10000},
        train_transform=build_batch_augment(augment),
    )
