"""Neuromorphic datasets: raw events read and validated, binned to frames, cached.

Registered names (``spikeforge datasets``); docs/data.md lists each one's
files, release formats, time units and splits. The files are found and read
by :mod:`spikeforge.data.event_sets` and :mod:`spikeforge.data.event_splits`
with the validating readers of :mod:`spikeforge.data.readers` (Tonic
decodes where its reader works); the
same raw events are public through ``get_raw_events(name, cfg, split)``.

- ``nmnist``: ``NMNIST/{Train,Test}/<digit>/*.bin``; official 60,000 / 10,000.
- ``dvs_gesture``: Tonic's ``.npy`` release
  (``DVSGesture/ibmGesture{Train,Test}/user<NN>_<lighting>/<label>.npy``) or
  IBM's AEDAT 3.1 release (``DVSGesture/DvsGesture/*.aedat`` cut into gestures
  by their ``*_labels.csv``, split by ``trials_to_{train,test}.txt``).
- ``cifar10dvs``: ``CIFAR10DVS/<class>/*.aedat4`` (uncompressed, LZ4 or ZSTD).
- ``ncaltech101``: ``NCALTECH101/Caltech101/<class>/*.bin``; classes are the
  class folders sorted by name.
- ``shd``: ``SHD/shd_{train,test}.h5``; ``ssc``: ``SSC/ssc_{train,valid,test}.h5``
  (``bundle.valid`` holds the validation split when ``ssc_valid.h5`` exists).

Downloads happen only with ``data.download=true`` (Tonic's own downloader);
otherwise missing files are an error that lists them and says how to get
them. ``data.root`` must be set.

Splits. Official splits where the dataset has them. CIFAR10-DVS and
N-Caltech101 have none: per class, the files sorted by path are permuted
with ``numpy.random.default_rng(0)`` and the last ``round(0.1 * n_class)``
go to test (:func:`spikeforge.data.embedded.stratified_split`).

Frames. Each sample's raw events become ``T = data.time_steps`` frames by
:func:`spikeforge.data.frames.events_to_frames` (``data.frame_mode``:
``time_bins`` = equal time spans, ``event_bins`` = equal event counts;
``data.frame_overlap``), after optional ``data.denoise_time`` and
``data.frame_scale`` (pixel coordinates times the factor; default 1,
N-Caltech101 0.25). Items are ``(float32 [T, P, H, W], label)`` with
``input_shape = (P, H, W)``: N-MNIST (2, 34, 34), DVS Gesture and
CIFAR10-DVS (2, 128, 128), N-Caltech101 (2, 256, 256) times the scale (the
``.bin`` format's 8-bit coordinate range, so no valid recording is cropped
or refused; the recordings keep the file's coordinates, no shift). SHD and
SSC (700 channels, one polarity) are flattened to ``[T, 700]``.

Cache. Converted frames live in ``data.cache_dir`` (default
``<root>/.spikeforge_cache``) keyed by the dataset, split, a fingerprint of
its files (paths, sizes, modification times) and all frame parameters
(:class:`spikeforge.data.frame_cache.FrameCache`).

Corrupt files. Each reader checks its container against what the file
declares (docs/data.md, "Corrupt files"): cheaply when the dataset is built
(record counts, headers, packet framing) and fully when a sample is first
read. A bad file is a :class:`~spikeforge.data.events.CorruptSampleError`
naming it and what is wrong; with ``data.skip_corrupt=true`` it is logged and
skipped, ``bundle.info["skipped"]`` counts the samples skipped so far (build
time and read time together; every message quotes that count) and
``info["skipped_files"]`` names them. A sample found bad only when read is
replaced by the next good sample of its split for that access.
"""

from __future__ import annotations

import os
from typing import Any

from spikeforge.data.event_sets import (  # noqa: F401  (re-exported)
    CIFAR10DVS_CLASSES,
    SPECS,
    SPLIT_SEED,
    TEST_FRACTION,
    DatasetNotFoundError,
    Spec,
    dataset_root,
    handle_bad,
    scan,
)
from spikeforge.data.event_splits import layout, require_samples
from spikeforge.data.events import CorruptSampleError  # noqa: F401  (re-exported)
from spikeforge.data.frame_cache import FrameCache, FramesDataset
from spikeforge.data.frames import FrameTransform
from spikeforge.data.registry import DatasetBundle, register_dataset

#: Bump when the conversion changes in a way that changes cached frames.
CACHE_VERSION = 2


def _frame_transform(spec: Spec, cfg) -> FrameTransform:
    scale = getattr(cfg, "frame_scale", None)
    scale = spec.default_scale if scale is None else float(scale)
    mode = getattr(cfg, "frame_mode", "time_bins")
    t = int(cfg.time_steps)
    return FrameTransform(
        sensor_size=spec.sensor_size,
        n_time_bins=t if mode == "time_bins" else None,
        n_event_bins=t if mode == "event_bins" else None,
        overlap=float(getattr(cfg, "frame_overlap", 0.0)),
        spatial_factor=scale,
        denoise_time=getattr(cfg, "denoise_time", None),
    )


def build_neuromorphic(name: str, cfg) -> DatasetBundle:
    """Build the registered neuromorphic dataset ``name`` from the data config
    ``cfg`` (see the module docstring): check or download the files, validate
    them, split, and wrap the raw events into cached frame datasets."""
    spec = SPECS[name]
    root = dataset_root(name, cfg)
    transform = _frame_transform(spec, cfg)
    skip = bool(getattr(cfg, "skip_corrupt", False))
    cache_root = getattr(cfg, "cache_dir", None) or os.path.join(root, ".spikeforge_cache")
    info: dict[str, Any] = {
        "name": name,
        "root": root,
        "sensor_size": spec.sensor_size,
        "frame_params": transform.params(),
        "skipped": 0,
        "skipped_files": [],
    }
    splits = ["train", "test"]
    if "valid" in spec.splits and os.path.isfile(
        os.path.join(root, spec.folder, f"{name}_valid.h5")
    ):
        splits.insert(1, "valid")
    lay = layout(name, root, splits, skip, info)
    rec = lay.recordings
    views = {}
    for split in splits:
        idx = lay.splits.get(split, [])
        bad = scan(rec, lay.files, lay.check, idx) if lay.check else []
        drop = handle_bad(name, bad, skip, info)
        keep = [i for i in idx if i not in drop]
        require_samples(name, split, keep, info)
        key = {
            "dataset": name,
            "split": split if name not in ("cifar10dvs", "ncaltech101") else "all",
            "files": lay.fingerprints[split],
            "transform": transform.params(),
            "version": CACHE_VERSION,
        }
        views[split] = FramesDataset(
            rec,
            transform,
            FrameCache(os.path.join(cache_root, name), key),
            indices=keep,
            flatten=spec.audio,
            skip_corrupt=skip,
            source_name=rec.data.__getitem__,
            report=info,
        )
    train, test = views["train"], views["test"]
    info["split"] = lay.split_rule
    if lay.classes is not None and name == "ncaltech101":
        info["classes"] = lay.classes
    info["train_size"] = len(train)
    info["test_size"] = len(test)
    if "valid" in views:
        info["valid_size"] = len(views["valid"])
    info["cache_dir"] = train.cache.directory
    train_transform = None
    if not spec.audio and getattr(cfg, "augment", None):
        from spikeforge.data.augment import build_batch_augment

        train_transform = build_batch_augment(cfg.augment)
    return DatasetBundle(
        train=train,
        test=test,
        input_shape=train.sample_shape,
        num_classes=rec.num_classes,
        temporal=True,
        info=info,
        train_transform=train_transform,
        valid=views.get("valid"),
    )


def _register(name: str, description: str) -> None:
    def builder(cfg) -> DatasetBundle:
        return build_neuromorphic(name, cfg)

    builder.__name__ = name
    builder.__doc__ = f"{description} (see :mod:`spikeforge.data.neuromorphic`)."
    register_dataset(name, description)(builder)


_register("nmnist", "N-MNIST (.bin): 34x34x2 saccade recordings of MNIST, official 60k/10k")
_register("dvs_gesture", "DVS128 Gesture (.npy, AEDAT 3.1): 11 gestures, 128x128x2, official split")
_register("cifar10dvs", "CIFAR10-DVS (AEDAT4): 10 classes, 128x128x2, seeded 9:1 per class")
_register("ncaltech101", "N-Caltech101 (.bin): 101 classes, 256x256x2 (8-bit range), seeded 9:1")
_register("shd", "Spiking Heidelberg Digits (HDF5): 700 channels, 20 classes, official split")
_register("ssc", "Spiking Speech Commands (HDF5): 700 channels, 35 classes, train/valid/test")
