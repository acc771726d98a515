"""The event datasets' files: where they are, how to get them, how they are read.

Each dataset's facts (folder, sensor, classes, splits, how to get it) live
in one :class:`Spec`; :func:`dataset_root` checks (or downloads) the files.
A :class:`Recordings` holds every sample of a set of files, read by the
validating readers of :mod:`spikeforge.data.readers`; :class:`RawEvents` is
one split of it, the object ``get_raw_events(name, cfg, split)`` returns;
:func:`scan` and :func:`handle_bad` run the cheap build-time checks.
:mod:`spikeforge.data.event_splits` lists each dataset's samples and splits;
docs/data.md lists the expected files of each dataset.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from spikeforge.data.events import (
    AUDIO_EVENT_DTYPE,
    VISION_EVENT_DTYPE,
    CorruptSampleError,
    EventDataset,
    SkippingView,
)

log = logging.getLogger(__name__)

#: Seed of the 9:1 per-class split of CIFAR10-DVS and N-Caltech101.
SPLIT_SEED = 0
TEST_FRACTION = 0.1
CIFAR10DVS_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not under ``data.root``; the message lists what is
    missing and how to get it."""


@dataclass(frozen=True)
class Spec:
    """One event dataset: Tonic class (for downloads), folder under
    ``data.root``, sensor ``(W, H, P)``, classes, splits and the manual-download
    instructions (``{loc}`` = ``<root>/<folder>``)."""

    name: str
    tonic_class: str
    folder: str
    sensor_size: tuple[int, int, int]
    num_classes: int | None  # None: count the class folders
    audio: bool
    default_scale: float
    splits: tuple[str, ...]
    manual: str


SPECS: dict[str, Spec] = {
    "nmnist": Spec(
        "nmnist", "NMNIST", "NMNIST", (34, 34, 2), 10, False, 1.0, ("train", "test"),
        "download train.zip and test.zip (N-MNIST, https://www.garrickorchard.com/datasets/"
        "n-mnist, Mendeley dataset 468j46mzdv) and unzip both into {loc}/ so that "
        "{loc}/Train/0/*.bin ... {loc}/Test/9/*.bin exist",
    ),
    "dvs_gesture": Spec(
        "dvs_gesture", "DVSGesture", "DVSGesture", (128, 128, 2), 11, False, 1.0,
        ("train", "test"),
        "either Tonic's .npy release: download ibmGestureTrain.tar.gz "
        "(https://figshare.com/ndownloader/files/38022171) and ibmGestureTest.tar.gz "
        "(https://figshare.com/ndownloader/files/38020584) and extract both into {loc}/ so "
        "that {loc}/ibmGestureTrain/user01_fluorescent/0.npy ... exist; or IBM's original "
        "AEDAT 3.1 release: extract DvsGesture.tar.gz (https://research.ibm.com/"
        "interactive/dvsgesture/) into {loc}/ so that {loc}/DvsGesture/user01_fluorescent."
        "aedat, its _labels.csv and trials_to_train.txt / trials_to_test.txt exist",
    ),
    "cifar10dvs": Spec(
        "cifar10dvs", "CIFAR10DVS", "CIFAR10DVS", (128, 128, 2), 10, False, 1.0,
        ("train", "test"),
        "download CIFAR10DVS.zip (the AEDAT4 release, https://figshare.com/ndownloader/files/"
        "38023437), unzip it into {loc}/, then unzip each class archive (airplane.zip ... "
        "truck.zip) there so that {loc}/airplane/*.aedat4 ... {loc}/truck/*.aedat4 exist; "
        "reading needs the package aedat (pip install aedat)",
    ),
    "ncaltech101": Spec(
        "ncaltech101", "NCALTECH101", "NCALTECH101", (256, 256, 2), None, False, 0.25,
        ("train", "test"),
        "download N-Caltech101-archive.zip (https://www.garrickorchard.com/datasets/"
        "n-caltech101, Mendeley dataset cy6cvx3ryv), unzip it into {loc}/ and then unzip "
        "{loc}/Caltech101.zip there so that {loc}/Caltech101/<class>/*.bin exist",
    ),
    "shd": Spec(
        "shd", "SHD", "SHD", (700, 1, 1), 20, True, 1.0, ("train", "test"),
        "download shd_train.h5.zip and shd_test.h5.zip from https://zenkelab.org/datasets/ "
        "and unzip them into {loc}/ so that {loc}/shd_train.h5 and {loc}/shd_test.h5 exist",
    ),
    "ssc": Spec(
        "ssc", "SSC", "SSC", (700, 1, 1), 35, True, 1.0, ("train", "valid", "test"),
        "download ssc_train.h5.zip, ssc_valid.h5.zip and ssc_test.h5.zip from "
        "https://zenkelab.org/datasets/ and unzip them into {loc}/ so that "
        "{loc}/ssc_train.h5, {loc}/ssc_valid.h5 and {loc}/ssc_test.h5 exist",
    ),
}  # fmt: skip


# --------------------------------------------------------------------------- files


def list_files(folder: str, suffix: str) -> list[str]:
    """Files under ``folder`` ending in ``suffix``, sorted by path."""
    out = []
    for path, dirs, files in os.walk(folder):
        dirs.sort()
        out += [os.path.join(path, f) for f in sorted(files) if f.endswith(suffix)]
    return sorted(out)


def gesture_release(loc: str) -> str | None:
    """``"npy"`` (Tonic's release), ``"aedat"`` (IBM's AEDAT 3.1 release) or None."""
    if all(list_files(os.path.join(loc, f), ".npy") for f in ("ibmGestureTrain", "ibmGestureTest")):
        return "npy"
    if os.path.isdir(os.path.join(loc, "DvsGesture")):
        return "aedat"
    return None


def missing(spec: Spec, root: str) -> list[str]:
    """What the dataset needs under ``root`` and is not there, one line each."""
    loc = os.path.join(root, spec.folder)
    need: list[tuple[str, str]] = []  # (path, suffix of the files it must hold; "" = a file)
    if spec.name == "nmnist":
        need = [(os.path.join(loc, "Train"), ".bin"), (os.path.join(loc, "Test"), ".bin")]
    elif spec.name == "dvs_gesture":
        if gesture_release(loc) == "aedat":
            d = os.path.join(loc, "DvsGesture")
            need = [(os.path.join(d, "trials_to_train.txt"), ""),
                    (os.path.join(d, "trials_to_test.txt"), "")]  # fmt: skip
        else:
            need = [(os.path.join(loc, "ibmGestureTrain"), ".npy"),
                    (os.path.join(loc, "ibmGestureTest"), ".npy")]  # fmt: skip
    elif spec.name == "cifar10dvs":
        need = [(os.path.join(loc, c), ".aedat4") for c in CIFAR10DVS_CLASSES]
    elif spec.name == "ncaltech101":
        need = [(os.path.join(loc, "Caltech101"), ".bin")]
    else:
        need = [(os.path.join(loc, f"{spec.name}_{s}.h5"), "") for s in ("train", "test")]
    out = []
    for path, suffix in need:
        if not suffix:
            if not os.path.isfile(path):
                out.append(f"{path} (file)")
        elif not os.path.isdir(path):
            out.append(f"{path}{os.sep} (folder of {suffix} files)")
        elif not list_files(path, suffix):
            out.append(f"{path}{os.sep} (exists but holds no {suffix} files)")
    return out


def not_found_message(spec: Spec, root: str, lost: list[str]) -> str:
    """The error text for missing files ``lost``: what, and how to get them."""
    loc = os.path.join(root, spec.folder)
    lines = [f"dataset {spec.name!r} is not under data.root={root!r}; missing:"]
    lines += [f"  - {m}" for m in lost]
    lines.append(
        f"Get it with:  spikeforge train --dataset {spec.name} data.root={root} data.download=true"
    )
    lines.append("or place a manual download: " + spec.manual.format(loc=loc) + ".")
    return "\n".join(lines)


def download(spec: Spec, root: str) -> None:
    """Fetch and extract with Tonic's own classes and download utilities."""
    try:
        import tonic.datasets
        from tonic.download_utils import extract_archive
    except ImportError as e:
        raise ImportError("downloading needs Tonic: pip install 'tonic>=1.5' h5py") from e
    cls = getattr(tonic.datasets, spec.tonic_class)
    log.warning("downloading %s into %s (data.download=true)", spec.name, root)
    if spec.name in ("nmnist", "dvs_gesture", "shd"):
        for train in (True, False):
            cls(save_to=root, train=train)
    elif spec.name == "ssc":
        for split in ("train", "valid", "test"):
            cls(save_to=root, split=split)
    else:
        cls(save_to=root)
        loc = os.path.join(root, spec.folder)
        inner = os.path.join(loc, getattr(cls, "data_filename", ""))
        folder = getattr(cls, "folder_name", "")
        if spec.name == "ncaltech101" and not os.path.isdir(os.path.join(loc, folder)):
            if os.path.isfile(inner):
                extract_archive(inner, loc)  # Tonic 1.7 leaves the inner archive packed


def dataset_root(name: str, cfg) -> str:
    """``data.root`` made absolute, after checking (or downloading) the files."""
    spec = SPECS[name]
    root = getattr(cfg, "root", None)
    if not root:
        raise DatasetNotFoundError(
            f"dataset {name!r} needs data.root (the folder that holds or will hold it): "
            f"spikeforge train --dataset {name} data.root=DIR data.download=true"
        )
    root = os.path.abspath(os.path.expanduser(root))
    lost = missing(spec, root)
    if lost:
        if not getattr(cfg, "download", False):
            raise DatasetNotFoundError(not_found_message(spec, root, lost))
        download(spec, root)
        lost = missing(spec, root)
        if lost:
            raise DatasetNotFoundError(
                "the download finished but files are still missing.\n"
                + not_found_message(spec, root, lost)
            )
    return root


# --------------------------------------------------------------------------- samples


class Recordings(EventDataset):
    """Every sample of a set of files, by index: ``ds[i] -> (events, label)``.

    ``data[i]`` names sample ``i`` (its file, and the sample inside it where a
    file holds several); ``targets[i]`` is its label; reading calls
    ``read(*items[i])``, a reader of :mod:`spikeforge.data.readers`. Any
    failure is a :class:`CorruptSampleError` naming the sample (a reader's
    own, or an unexpected error wrapped)."""

    def __init__(self, name: str, spec: Spec, data: Sequence[str], targets: Sequence[int],
                 items: Sequence[tuple], read: Callable[..., np.ndarray], num_classes: int):
        self.name = name
        self.data = list(data)
        self.targets = [int(v) for v in targets]
        self.items = list(items)
        self.read = read
        self.sensor_size = spec.sensor_size
        self.num_classes = int(num_classes)
        self.dtype = AUDIO_EVENT_DTYPE if spec.audio else VISION_EVENT_DTYPE

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        try:
            events = self.read(*self.items[i])
        except CorruptSampleError as e:
            if e.path == self.data[i]:
                raise
            raise CorruptSampleError(self.data[i], e.reason) from e  # name the sample in it
        except (ImportError, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 - reported with the file's name
            raise CorruptSampleError(self.data[i], f"{type(e).__name__}: {e}") from e
        return events, self.targets[i]


class RawEvents(SkippingView, EventDataset):
    """The raw events of one split: ``ds[k] -> (events, label)`` (see
    :mod:`spikeforge.data.events`); bad samples raise or, with
    ``skip_corrupt``, are skipped and counted in ``info["skipped"]``."""

    def __init__(self, recordings: Recordings, indices: Sequence[int], skip_corrupt: bool,
                 info: dict):
        super().__init__(indices, skip_corrupt, info)
        self.recordings = recordings
        self.sensor_size = recordings.sensor_size
        self.num_classes = recordings.num_classes
        self.info = info

    def _load(self, i: int):
        return self.recordings[i]

    def source(self, k: int) -> str:
        """Name of the ``k``-th sample of the split (its file)."""
        return self.recordings.data[self.indices[k]]


def fingerprint(paths: Sequence[str]) -> str:
    """Hash of every path (relative to their common folder) with its size and
    modification time, so a cache notices an added, removed or replaced file."""
    h = hashlib.sha256()
    base = os.path.commonpath(list(paths)) if paths else ""
    for p in sorted(set(paths)):
        try:
            st = os.stat(p)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"{os.path.relpath(p, base)}\0{stamp}\n".encode())
    return h.hexdigest()[:16]


def scan(recordings: Recordings, files: Sequence[str], check: Callable[[str], str | None],
         indices: Sequence[int]) -> list[tuple[int, str, str]]:
    """Run the cheap ``check`` on the files of samples ``indices``:
    ``[(sample, its name, reason)]`` of the bad ones (``files[i]`` is sample
    ``i``'s file; a file is checked once)."""
    verdict: dict[str, str | None] = {}
    bad = []
    for i in indices:
        f = files[i]
        if f not in verdict:
            try:
                verdict[f] = check(f)
            except OSError as e:
                verdict[f] = f"cannot read it ({e})"
        if verdict[f] is not None:
            bad.append((i, recordings.data[i], verdict[f]))
    return bad


def handle_bad(name: str, bad: list[tuple[int, str, str]], skip: bool, info: dict) -> set[int]:
    """Raise for the first bad sample, or (``skip``) log and count them all."""
    if not bad:
        return set()
    if not skip:
        _, path, reason = bad[0]
        more = f" ({len(bad) - 1} more bad samples)" if len(bad) > 1 else ""
        raise CorruptSampleError(
            path, f"{reason}{more}; set data.skip_corrupt=true to skip bad files"
        )
    info["skipped"] = info.get("skipped", 0) + len(bad)
    info.setdefault("skipped_files", []).extend(p for _, p, _ in bad)
    for _, path, reason in bad:
        log.warning("%s: skipping corrupt file %s: %s", name, path, reason)
    log.warning("%s: skipped %d corrupt samples (%d in all)", name, len(bad), info["skipped"])
    return {i for i, _, _ in bad}
