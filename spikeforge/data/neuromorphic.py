"""Neuromorphic datasets read through Tonic, binned to frames and cached.

Registered names (``spikeforge datasets``), each read by Tonic 1.7's own
dataset class and reader (``tonic.datasets.*``, ``tonic.io``); this module adds
only the file checks, the splits, the frames and the cache. Files under
``data.root`` (as Tonic lays them out after extracting):

- ``nmnist`` (``tonic.datasets.NMNIST``): ``NMNIST/{Train,Test}/<digit>/*.bin``;
  official 60,000 / 10,000 split.
- ``dvs_gesture`` (``DVSGesture``, Tonic's preprocessed ``.npy`` release):
  ``DVSGesture/ibmGesture{Train,Test}/user<NN>_<lighting>/<label>.npy``;
  official split (users 1-23 train, 24-29 test).
- ``cifar10dvs`` (``CIFAR10DVS``, AEDAT4 release, needs ``pip install aedat``):
  ``CIFAR10DVS/<class>/*.aedat4``; no official split.
- ``ncaltech101`` (``NCALTECH101``): ``NCALTECH101/Caltech101/<class>/*.bin``;
  no official split; classes are the class folders, sorted by name.
- ``shd`` (``SHD``): ``SHD/shd_{train,test}.h5``; official split.
- ``ssc`` (``SSC``): ``SSC/ssc_{train,test}.h5``; official train / test
  (the validation file is not used).

Downloads happen only with ``data.download=true`` (Tonic's own downloader,
from the URLs in its classes); otherwise missing files are an error that
lists them and says how to get them. ``data.root`` must be set.

Splits. Where the dataset has an official train/test split it is used.
CIFAR10-DVS and N-Caltech101 have none; the common protocol is 90% / 10% per
class: here, for each class, the files sorted by path are permuted with
``numpy.random.default_rng(0)`` and the last ``round(0.1 * n_class)`` go to
test (:func:`spikeforge.data.embedded.stratified_split`, seed fixed at 0,
independent of the run's seed).

Frames. Each sample becomes ``T = data.time_steps`` frames by
:func:`spikeforge.data.frames.events_to_frames` (``data.frame_mode``:
``time_bins`` = equal time spans of the recording, ``event_bins`` = equal
event counts; ``data.frame_overlap``), after optional
``data.denoise_time`` and ``data.frame_scale`` (pixel coordinates times the
factor; default 1, N-Caltech101 0.25). Items are ``(float32 [T, P, H, W],
label)`` with ``input_shape = (P, H, W)``: N-MNIST (2, 34, 34), DVS Gesture
and CIFAR10-DVS (2, 128, 128), N-Caltech101 (2, 180, 240) times the scale.
The audio sets (SHD, SSC: 700 cochlea channels, one polarity) are flattened
to ``[T, 700]``, ``input_shape = (700,)``, which is what recurrent and MLP
models take. N-Caltech101 recordings are shifted to start at pixel (0, 0)
(Tonic) and framed on a 240x180 sensor.

Cache. Converted frames live in ``data.cache_dir`` (default
``<root>/.spikeforge_cache``) keyed by the dataset, split, a fingerprint of
its files and all frame parameters (:class:`spikeforge.data.frames.FrameCache`).

Corrupt files. A cheap check runs when the dataset is built (file sizes and
headers: a ``.bin`` must hold whole 5-byte events, an ``.npy`` header must
match its size, an ``.aedat4`` must start with the AEDAT4 magic, each
``.h5`` must open and hold matching ``spikes/times``, ``spikes/units`` and
``labels``); each sample is fully checked when first read (Tonic's reader
must succeed, events must lie on the sensor). A bad file is an error naming
it; with ``data.skip_corrupt=true`` it is logged and skipped, and
``bundle.info["skipped"]`` counts the files skipped so far
(``info["skipped_files"]`` names them). A file found bad only when read is
replaced by the next good sample for that access.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from spikeforge.data.embedded import stratified_split
from spikeforge.data.frames import CorruptSampleError, FrameCache, FramesDataset, FrameTransform
from spikeforge.data.registry import DatasetBundle, register_dataset

log = logging.getLogger(__name__)

#: Bump when the conversion changes in a way that changes cached frames.
CACHE_VERSION = 1
#: Seed of the 9:1 per-class split of CIFAR10-DVS and N-Caltech101.
SPLIT_SEED = 0
TEST_FRACTION = 0.1
AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not under ``data.root``; the message lists what is
    missing and how to get it."""


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class _Spec:
    name: str
    tonic_class: str
    folder: str  # Tonic's location_on_system = <root>/<folder>
    sensor_size: tuple[int, int, int]
    num_classes: int | None  # None: count the class folders
    audio: bool
    default_scale: float
    manual: str  # where a manual download goes


SPECS: dict[str, _Spec] = {
    "nmnist": _Spec(
        "nmnist",
        "NMNIST",
        "NMNIST",
        (34, 34, 2),
        10,
        False,
        1.0,
        "download train.zip and test.zip (N-MNIST, https://www.garrickorchard.com/datasets/"
        "n-mnist, Mendeley dataset 468j46mzdv) and unzip both into {loc}/ so that "
        "{loc}/Train/0/*.bin ... {loc}/Test/9/*.bin exist",
    ),
    "dvs_gesture": _Spec(
        "dvs_gesture",
        "DVSGesture",
        "DVSGesture",
        (128, 128, 2),
        11,
        False,
        1.0,
        "download Tonic's preprocessed ibmGestureTrain.tar.gz "
        "(https://figshare.com/ndownloader/files/38022171) and ibmGestureTest.tar.gz "
        "(https://figshare.com/ndownloader/files/38020584) and extract both into {loc}/ so "
        "that {loc}/ibmGestureTrain/user01_fluorescent/0.npy ... exist (the original IBM "
        ".aedat release is not what Tonic 1.7 reads)",
    ),
    "cifar10dvs": _Spec(
        "cifar10dvs",
        "CIFAR10DVS",
        "CIFAR10DVS",
        (128, 128, 2),
        10,
        False,
        1.0,
        "download CIFAR10DVS.zip (the AEDAT4 release, https://figshare.com/ndownloader/files/"
        "38023437), unzip it into {loc}/, then unzip each class archive (airplane.zip ... "
        "truck.zip) there so that {loc}/airplane/*.aedat4 ... {loc}/truck/*.aedat4 exist; "
        "reading needs the package aedat (pip install aedat)",
    ),
    "ncaltech101": _Spec(
        "ncaltech101",
        "NCALTECH101",
        "NCALTECH101",
        (240, 180, 2),
        None,
        False,
        0.25,
        "download N-Caltech101-archive.zip (https://www.garrickorchard.com/datasets/"
        "n-caltech101, Mendeley dataset cy6cvx3ryv), unzip it into {loc}/ and then unzip "
        "{loc}/Caltech101.zip there so that {loc}/Caltech101/<class>/*.bin exist",
    ),
    "shd": _Spec(
        "shd",
        "SHD",
        "SHD",
        (700, 1, 1),
        20,
        True,
        1.0,
        "download shd_train.h5.zip and shd_test.h5.zip from https://zenkelab.org/datasets/ "
        "and unzip them into {loc}/ so that {loc}/shd_train.h5 and {loc}/shd_test.h5 exist",
    ),
    "ssc": _Spec(
        "ssc",
        "SSC",
        "SSC",
        (700, 1, 1),
        35,
        True,
        1.0,
        "download ssc_train.h5.zip and ssc_test.h5.zip from https://zenkelab.org/datasets/ "
        "and unzip them into {loc}/ so that {loc}/ssc_train.h5 and {loc}/ssc_test.h5 exist",
    ),
}

CIFAR10DVS_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def _has_file(folder: str, suffix: str) -> bool:
    for _, _, files in os.walk(folder):
        if any(f.endswith(suffix) for f in files):
            return True
    return False


def _missing(spec: _Spec, root: str) -> list[str]:
    """What the dataset needs under ``root`` and is not there, one line each."""
    loc = os.path.join(root, spec.folder)
    need: list[tuple[str, str]] = []  # (path, suffix of files it must hold, or "" for a file)
    if spec.name == "nmnist":
        need = [(os.path.join(loc, "Train"), ".bin"), (os.path.join(loc, "Test"), ".bin")]
    elif spec.name == "dvs_gesture":
        need = [(os.path.join(loc, "ibmGestureTrain"), ".npy"),
                (os.path.join(loc, "ibmGestureTest"), ".npy")]  # fmt: skip
    elif spec.name == "cifar10dvs":
        need = [(os.path.join(loc, c), ".aedat4") for c in CIFAR10DVS_CLASSES]
    elif spec.name == "ncaltech101":
        need = [(os.path.join(loc, "Caltech101"), ".bin")]
    else:
        prefix = spec.name
        need = [(os.path.join(loc, f"{prefix}_{s}.h5"), "") for s in ("train", "test")]
    out = []
    for path, suffix in need:
        if not suffix:
            if not os.path.isfile(path):
                out.append(f"{path} (file)")
        elif not os.path.isdir(path):
            out.append(f"{path}{os.sep} (folder of {suffix} files)")
        elif not _has_file(path, suffix):
            out.append(f"{path}{os.sep} (exists but holds no {suffix} files)")
    return out


def _not_found_message(spec: _Spec, root: str, missing: list[str]) -> str:
    loc = os.path.join(root, spec.folder)
    lines = [f"dataset {spec.name!r} is not under data.root={root!r}; missing:"]
    lines += [f"  - {m}" for m in missing]
    lines.append(
        f"Get it with:  spikeforge train --dataset {spec.name} data.root={root} data.download=true"
    )
    lines.append("or place a manual download: " + spec.manual.format(loc=loc) + ".")
    return "\n".join(lines)


# --------------------------------------------------------------------------- tonic access


def _import_tonic():
    try:
        import tonic
        import tonic.datasets  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "the neuromorphic datasets are read through Tonic: pip install 'tonic>=1.5' h5py"
        ) from e
    return tonic


def _present() -> bool:
    """Stands in for a Tonic dataset's ``_check_exists``: we checked the files."""
    return True


def _tonic_offline(cls, **kwargs):
    """Construct Tonic dataset ``cls`` on files already present, never downloading.

    Tonic's constructors download whenever their own check fails, and that
    check wants the original archive next to the extracted files and a full
    file count (10,000 ``.bin`` for N-MNIST ...); we check the files ourselves,
    so ``_check_exists`` is answered by a module-level function (picklable
    for DataLoader workers)."""
    obj = cls.__new__(cls)
    obj._check_exists = _present
    cls.__init__(obj, **kwargs)
    return obj


def _sort_by_path(ds) -> None:
    """Order a Tonic dataset's parallel lists by file path (Tonic's walk leaves
    files in directory order, which differs between file systems)."""
    n = len(ds.data)
    order = sorted(range(n), key=lambda i: ds.data[i])
    for attr in ("data", "targets", "users", "lighting"):
        values = getattr(ds, attr, None)
        if isinstance(values, list) and len(values) == n:
            setattr(ds, attr, [values[i] for i in order])


def _download(spec: _Spec, root: str) -> None:
    """Fetch and extract with Tonic's own classes and download utilities."""
    tonic = _import_tonic()
    from tonic.download_utils import extract_archive

    cls = getattr(tonic.datasets, spec.tonic_class)
    log.warning("downloading %s into %s (data.download=true)", spec.name, root)
    if spec.name in ("nmnist", "dvs_gesture", "shd"):
        for train in (True, False):
            cls(save_to=root, train=train)
    elif spec.name == "ssc":
        for split in ("train", "test"):
            cls(save_to=root, split=split)
    elif spec.name == "cifar10dvs":
        cls(save_to=root)  # downloads and unzips the class archives
    elif spec.name == "ncaltech101":
        cls(save_to=root)
        loc = os.path.join(root, spec.folder)
        inner = os.path.join(loc, cls.data_filename)
        if not os.path.isdir(os.path.join(loc, cls.folder_name)) and os.path.exists(inner):
            extract_archive(inner, loc)  # Tonic 1.7 leaves the inner archive packed


# --------------------------------------------------------------------------- cheap checks


def _check_bin(path: str, size: int) -> str | None:
    if size == 0:
        return "empty file"
    if size % 5:
        return f"{size} bytes is not a whole number of 5-byte events (truncated?)"
    return None


def _check_npy(path: str, size: int) -> str | None:
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            reader = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = reader(f)
            header = f.tell()
    except Exception as e:  # noqa: BLE001
        return f"not a readable .npy file ({e})"
    if len(shape) != 2 or shape[1] != 4:
        return f"expected an [N, 4] event array, header says {shape}"
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if size != expected:
        return f"{size} bytes but the header needs {expected} (truncated?)"
    return None


def _check_aedat4(path: str, size: int) -> str | None:
    with open(path, "rb") as f:
        head = f.read(len(AEDAT4_MAGIC))
    if head != AEDAT4_MAGIC:
        return "does not start with the AEDAT4 magic '#!AER-DAT4.0'"
    return None


CHECKS: dict[str, Callable[[str, int], str | None]] = {
    ".bin": _check_bin,
    ".npy": _check_npy,
    ".aedat4": _check_aedat4,
}


def _scan_files(paths: Sequence[str], suffix: str) -> tuple[list[int], list[tuple[str, str]], str]:
    """Cheap per-file check: ``(bad indices, [(path, reason)], fingerprint)``.

    The fingerprint hashes every path (relative to the common folder) with its
    size, so the cache notices an added, removed or replaced file."""
    check = CHECKS[suffix]
    bad, reasons = [], []
    h = hashlib.sha256()
    base = os.path.commonpath(list(paths)) if paths else ""
    for i, p in enumerate(paths):
        try:
            size = os.stat(p).st_size
            reason = check(p, size)
        except OSError as e:
            size, reason = -1, f"cannot read ({e})"
        h.update(f"{os.path.relpath(p, base)}\0{size}\n".encode())
        if reason is not None:
            bad.append(i)
            reasons.append((p, reason))
    return bad, reasons, h.hexdigest()[:16]


def _h5_labels(path: str) -> tuple[np.ndarray, str]:
    """Labels of an SHD/SSC file and its fingerprint; a clear error if the file
    is not a readable Heidelberg-format HDF5 file (the whole split is unusable
    then, so this is an error even with ``skip_corrupt``)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            for key in ("spikes/times", "spikes/units", "labels"):
                if key not in f:
                    raise KeyError(f"no dataset {key!r}")
            n = len(f["labels"])
            if len(f["spikes/times"]) != n or len(f["spikes/units"]) != n:
                raise ValueError(
                    f"{len(f['spikes/times'])} times, {len(f['spikes/units'])} units and {n} labels"
                )
            labels = np.asarray(f["labels"][()], dtype=np.int64)
    except Exception as e:  # noqa: BLE001
        raise CorruptSampleError(
            path, f"{type(e).__name__}: {e}; delete it and download it again"
        ) from e
    st = os.stat(path)
    return labels, f"{st.st_size}-{st.st_mtime_ns}"


# --------------------------------------------------------------------------- builder


def _frame_transform(spec: _Spec, cfg) -> FrameTransform:
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


def _handle_bad(spec: _Spec, reasons: list[tuple[str, str]], skip: bool, info: dict) -> None:
    if not reasons:
        return
    if not skip:
        path, reason = reasons[0]
        more = f" ({len(reasons) - 1} more bad files)" if len(reasons) > 1 else ""
        raise CorruptSampleError(
            path, f"{reason}{more}; set data.skip_corrupt=true to skip bad files"
        )
    info["skipped"] = info.get("skipped", 0) + len(reasons)
    info.setdefault("skipped_files", []).extend(p for p, _ in reasons)
    for path, reason in reasons:
        log.warning("%s: skipping corrupt file %s: %s", spec.name, path, reason)
    log.warning("%s: skipped %d corrupt files", spec.name, len(reasons))


class _H5Source:
    """Names sample ``i`` of an HDF5 split in errors (picklable)."""

    def __init__(self, path: str):
        self.path = path

    def __call__(self, i: int) -> str:
        return f"{self.path} (sample {i})"


def build_neuromorphic(name: str, cfg) -> DatasetBundle:
    """Build the registered neuromorphic dataset ``name`` from the data config
    ``cfg`` (see the module docstring): check or download the files, split,
    and wrap Tonic's datasets into cached frame datasets."""
    spec = SPECS[name]
    root = getattr(cfg, "root", None)
    if not root:
        raise DatasetNotFoundError(
            f"dataset {name!r} needs data.root (the folder that holds or will hold it): "
            f"spikeforge train --dataset {name} data.root=DIR data.download=true"
        )
    root = os.path.abspath(os.path.expanduser(root))
    missing = _missing(spec, root)
    if missing:
        if not getattr(cfg, "download", False):
            raise DatasetNotFoundError(_not_found_message(spec, root, missing))
        _download(spec, root)
        missing = _missing(spec, root)
        if missing:
            raise DatasetNotFoundError(
                "the download finished but files are still missing.\n"
                + _not_found_message(spec, root, missing)
            )
    tonic = _import_tonic()
    if name == "cifar10dvs":
        try:
            import aedat  # noqa: F401
        except ImportError as e:
            raise ImportError(
                "Tonic reads CIFAR10-DVS (.aedat4) with the package aedat: pip install aedat"
            ) from e
    cls = getattr(tonic.datasets, spec.tonic_class)
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

    def cache_for(split: str, fingerprint: str) -> FrameCache:
        key = {
            "dataset": name,
            "split": split,
            "files": fingerprint,
            "transform": transform.params(),
            "version": CACHE_VERSION,
        }
        return FrameCache(os.path.join(cache_root, name), key)

    def wrap(ds, split, fingerprint, indices=None, labels=None, source=None):
        return FramesDataset(
            ds,
            transform,
            cache_for(split, fingerprint),
            labels=labels,
            indices=indices,
            flatten=spec.audio,
            skip_corrupt=skip,
            source_name=source,
            report=info,
        )

    if spec.audio:
        splits = {}
        for split in ("train", "test"):
            path = os.path.join(root, spec.folder, f"{name}_{split}.h5")
            labels, fingerprint = _h5_labels(path)
            kwargs = {"train": split == "train"} if name == "shd" else {"split": split}
            ds = _tonic_offline(cls, save_to=root, **kwargs)
            splits[split] = wrap(ds, split, fingerprint, labels=labels, source=_H5Source(path))
        train, test = splits["train"], splits["test"]
        info["split"] = "official train / test files"
        num_classes = spec.num_classes
    elif name in ("nmnist", "dvs_gesture"):
        splits = {}
        for split in ("train", "test"):
            ds = _tonic_offline(cls, save_to=root, train=split == "train")
            _sort_by_path(ds)
            suffix = ".bin" if name == "nmnist" else ".npy"
            bad, reasons, fingerprint = _scan_files(ds.data, suffix)
            _handle_bad(spec, reasons, skip, info)
            good = [i for i in range(len(ds)) if i not in set(bad)]
            splits[split] = wrap(ds, split, fingerprint, indices=good)
        train, test = splits["train"], splits["test"]
        info["split"] = "official train / test files"
        num_classes = spec.num_classes
    else:
        ds = _tonic_offline(cls, save_to=root)
        _sort_by_path(ds)
        suffix = ".aedat4" if name == "cifar10dvs" else ".bin"
        bad, reasons, fingerprint = _scan_files(ds.data, suffix)
        _handle_bad(spec, reasons, skip, info)
        if name == "ncaltech101":
            classes = sorted(set(ds.targets))
            info["classes"] = classes
            index = {c: k for k, c in enumerate(classes)}
            labels = np.array([index[c] for c in ds.targets], dtype=np.int64)
            num_classes = len(classes)
        else:
            labels = np.asarray(ds.targets, dtype=np.int64)
            num_classes = spec.num_classes
        tr, te = stratified_split(labels, TEST_FRACTION, seed=SPLIT_SEED)
        bad_set = set(bad)
        tr = [int(i) for i in tr if i not in bad_set]
        te = [int(i) for i in te if i not in bad_set]
        train = wrap(ds, "all", fingerprint, indices=tr, labels=labels)
        test = wrap(ds, "all", fingerprint, indices=te, labels=labels)
        info["split"] = (
            f"per class 9:1: numpy default_rng({SPLIT_SEED}) permutation of the files "
            "sorted by path"
        )
    info["train_size"] = len(train)
    info["test_size"] = len(test)
    info["cache_dir"] = train.cache.directory if train.cache is not None else None
    train_transform = None
    if not spec.audio and getattr(cfg, "augment", None):
        from spikeforge.data.augment import build_batch_augment

        train_transform = build_batch_augment(cfg.augment)
    return DatasetBundle(
        train=train,
        test=test,
        input_shape=train.sample_shape,
        num_classes=int(num_classes),
        temporal=True,
        info=info,
        train_transform=train_transform,
    )


def _register(name: str, description: str) -> None:
    def builder(cfg) -> DatasetBundle:
        return build_neuromorphic(name, cfg)

    builder.__name__ = name
    builder.__doc__ = f"{description} (see :mod:`spikeforge.data.neuromorphic`)."
    register_dataset(name, description)(builder)


_register("nmnist", "N-MNIST via Tonic: 34x34x2 saccade recordings of MNIST, official 60k/10k")
_register("dvs_gesture", "DVS128 Gesture via Tonic: 11 gestures, 128x128x2, official split")
_register("cifar10dvs", "CIFAR10-DVS via Tonic: 10 classes, 128x128x2, seeded 9:1 per class")
_register("ncaltech101", "N-Caltech101 via Tonic: 101 classes, 240x180x2, seeded 9:1 per class")
_register("shd", "Spiking Heidelberg Digits via Tonic: 700 channels, 20 classes, official split")
_register("ssc", "Spiking Speech Commands via Tonic: 700 channels, 35 classes, official split")
