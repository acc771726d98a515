"""Atomic file writes, shared by every layer (checkpoints, the frame cache, nmnist-sim).

A file is written to a temporary name in its own folder and renamed over the
final name (:func:`os.replace`, atomic on POSIX and Windows), so a reader -- a
concurrent DataLoader worker, a resumed run -- sees the old file or the new
one, never a torn one, and a killed writer leaves at most a ``*.tmp`` file.
With ``fsync`` the data also reaches the disk before the rename, so a power
cut cannot leave an empty file under the final name (checkpoints want that;
a cache whose bad entries are rebuilt does not need the cost).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import IO, Any

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text"]


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any], *,
                 fsync: bool = True) -> None:
    """Call ``write(f)`` on a binary file opened at a temporary name beside
    ``path``, then rename it to ``path`` (see the module docstring). The
    temporary file is removed if ``write`` raises."""
    path = os.fspath(path)
    tmp = f"{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "wb") as f:
            write(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`)."""
    atomic_write(path, lambda f: f.write(data), fsync=fsync)


def atomic_write_text(path: str | os.PathLike, text: str, *, fsync: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`)."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)
