"""Each event dataset's samples and splits, and its raw-event call.

:func:`layout` lists the samples of a dataset's files (with labels, the
reader of each, the split indices and the files' fingerprints);
:func:`raw_events` is what ``get_raw_events(name, cfg, split)`` runs for the
file-backed datasets (registered here for every name in
:data:`spikeforge.data.event_sets.SPECS`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from spikeforge.data.embedded import stratified_split
from spikeforge.data.event_sets import (
    CIFAR10DVS_CLASSES,
    SPECS,
    SPLIT_SEED,
    TEST_FRACTION,
    DatasetNotFoundError,
    RawEvents,
    Recordings,
    dataset_root,
    fingerprint,
    gesture_release,
    handle_bad,
    list_files,
    not_found_message,
    scan,
)
from spikeforge.data.events import CorruptSampleError, register_raw_events
from spikeforge.data.readers import aedat4, aedat31, atis_bin, hdf5_spikes, npy_events

# --------------------------------------------------------------------------- layouts


@dataclass
class Layout:
    """A dataset's samples: ``recordings``; ``splits[split]`` its sample
    indices; ``files[i]`` sample ``i``'s file; ``check`` the cheap per-file
    check (None: checked already); ``fingerprints[split]`` of the files."""

    recordings: Recordings
    splits: dict[str, list[int]]
    files: list[str]
    check: Callable[[str], str | None] | None
    fingerprints: dict[str, str]
    split_rule: str
    classes: list[str] | None = None


def _class_folders(folder: str, suffix: str, classes: Sequence[str] | None = None):
    names = classes or sorted(d for d in os.listdir(folder) if list_files(os.path.join(folder, d),
                                                                      suffix))
    files, labels = [], []
    for k, c in enumerate(names):
        got = list_files(os.path.join(folder, c), suffix)
        files += got
        labels += [k] * len(got)
    return list(names), files, labels


def layout(name: str, root: str, splits: Sequence[str] = ("train", "test"),
           skip: bool = False, info: dict | None = None) -> Layout:
    """Find the samples of ``splits`` of dataset ``name`` under ``root`` (whose
    files :func:`dataset_root` has checked)."""
    spec = SPECS[name]
    loc = os.path.join(root, spec.folder)
    info = {} if info is None else info
    sensor = spec.sensor_size
    data: list[str] = []
    labels: list[int] = []
    items: list[tuple] = []
    files: list[str] = []
    split_idx: dict[str, list[int]] = {}
    check = None
    classes = None
    rule = "official train / test files"

    def add(split: str, names, labs, its, fs):
        split_idx.setdefault(split, []).extend(range(len(data), len(data) + len(names)))
        data.extend(names)
        labels.extend(labs)
        items.extend(its)
        files.extend(fs)

    if name == "nmnist":
        read, check = functools.partial(atis_bin.read, sensor_size=sensor), atis_bin.check
        for split, folder in (("train", "Train"), ("test", "Test")):
            fs = [f for f in list_files(os.path.join(loc, folder), ".bin")
                  if os.path.basename(os.path.dirname(f)) in tuple("0123456789")]  # fmt: skip
            labs = [int(os.path.basename(os.path.dirname(f))) for f in fs]
            add(split, fs, labs, [(f,) for f in fs], fs)
    elif name == "dvs_gesture" and gesture_release(loc) == "npy":
        read, check = functools.partial(npy_events.read, sensor_size=sensor), npy_events.check
        for split, folder in (("train", "ibmGestureTrain"), ("test", "ibmGestureTest")):
            fs = [f for f in list_files(os.path.join(loc, folder), ".npy")
                  if os.path.basename(f)[:-4].isdigit()
                  and int(os.path.basename(f)[:-4]) < spec.num_classes]  # fmt: skip
            labs = [int(os.path.basename(f)[:-4]) for f in fs]
            add(split, fs, labs, [(f,) for f in fs], fs)
        rule = "official split: users 1-23 train, 24-29 test (Tonic's .npy release)"
    elif name == "dvs_gesture":
        read, check = functools.partial(aedat31.read_gesture, sensor_size=sensor), aedat31.check
        d = os.path.join(loc, "DvsGesture")
        for split in ("train", "test"):
            with open(os.path.join(d, f"trials_to_{split}.txt")) as f:
                trials = [ln.strip() for ln in f if ln.strip().endswith(".aedat")]
            lost = [os.path.join(d, t) for t in trials if not os.path.isfile(os.path.join(d, t))]
            lost += [os.path.join(d, t[:-6] + "_labels.csv") for t in trials
                     if not os.path.isfile(os.path.join(d, t[:-6] + "_labels.csv"))]  # fmt: skip
            if lost:
                raise DatasetNotFoundError(not_found_message(spec, root, [f"{p} (file)"
                                                                          for p in lost]))
            for t in trials:
                rec, csv = os.path.join(d, t), os.path.join(d, t[:-6] + "_labels.csv")
                try:
                    rows = aedat31.read_labels(csv)
                except CorruptSampleError as e:
                    handle_bad(name, [(-1, e.path, e.reason)], skip, info)
                    continue
                names = [f"{rec} (gesture {k}, {s}-{e} us of {os.path.basename(csv)})"
                         for k, (_, s, e) in enumerate(rows)]  # fmt: skip
                add(split, names, rows[:, 0].tolist(),
                    [(rec, int(s), int(e)) for _, s, e in rows], [rec] * len(rows))
        rule = "official split: trials_to_train.txt / trials_to_test.txt (IBM's AEDAT 3.1 release)"
    elif name in ("cifar10dvs", "ncaltech101"):
        if name == "cifar10dvs":
            read, check = functools.partial(aedat4.read, sensor_size=sensor), aedat4.check
            classes, fs, labs = _class_folders(loc, ".aedat4", CIFAR10DVS_CLASSES)
        else:
            read, check = functools.partial(atis_bin.read, sensor_size=sensor), atis_bin.check
            classes, fs, labs = _class_folders(os.path.join(loc, "Caltech101"), ".bin")
        add("all", fs, labs, [(f,) for f in fs], fs)
        tr, te = stratified_split(np.asarray(labs, dtype=np.int64), TEST_FRACTION, SPLIT_SEED)
        split_idx = {"train": [int(i) for i in tr], "test": [int(i) for i in te]}
        rule = (f"per class 9:1: numpy default_rng({SPLIT_SEED}) permutation of the files "
                "sorted by path")  # fmt: skip
    else:
        read = functools.partial(hdf5_spikes.read, channels=sensor[0])
        for split in splits:
            path = os.path.join(loc, f"{name}_{split}.h5")
            if not os.path.isfile(path):
                raise DatasetNotFoundError(not_found_message(spec, root, [f"{path} (file)"]))
            labs = hdf5_spikes.read_labels(path, spec.num_classes)
            n = len(labs)
            add(split, [f"{path} (sample {j})" for j in range(n)], labs.tolist(),
                [(path, j) for j in range(n)], [path] * n)
        if name == "ssc":
            rule = "official train / valid / test files"
    num_classes = spec.num_classes or len(classes or ())
    rec = Recordings(name, spec, data, labels, items, read, num_classes)
    prints = {s: fingerprint([files[i] for i in idx]) for s, idx in split_idx.items()}
    if name in ("cifar10dvs", "ncaltech101"):
        prints = {s: fingerprint(files) for s in ("train", "test")}
    return Layout(rec, split_idx, files, check, prints, rule, classes)


def raw_events(name: str, cfg, split: str) -> RawEvents:
    """``get_raw_events`` for the file-backed datasets (see the module docstring)."""
    spec = SPECS[name]
    if split not in spec.splits:
        raise ValueError(
            f"dataset {name!r} has no {split!r} split; splits: {', '.join(spec.splits)}"
        )
    root = dataset_root(name, cfg)
    skip = bool(getattr(cfg, "skip_corrupt", False))
    info: dict[str, Any] = {"name": name, "split": split, "skipped": 0, "skipped_files": []}
    lay = layout(name, root, (split,), skip, info)
    idx = lay.splits.get(split, [])
    bad = scan(lay.recordings, lay.files, lay.check, idx) if lay.check else []
    drop = handle_bad(name, bad, skip, info)
    keep = [i for i in idx if i not in drop]
    require_samples(name, split, keep, info)
    ds = RawEvents(lay.recordings, keep, skip, info)
    ds.all_indices = list(idx)  # before the build-time check dropped any
    return ds


def require_samples(name: str, split: str, indices: Sequence[int], info: dict) -> None:
    """A split left without samples is an error (training on nothing must not pass)."""
    if not indices:
        raise CorruptSampleError(
            f"dataset {name!r}, split {split!r}",
            f"no readable sample left ({info.get('skipped', 0)} skipped in all)",
        )


def _register(name: str) -> None:
    register_raw_events(name)(functools.partial(raw_events, name))


for _name in SPECS:
    _register(_name)
