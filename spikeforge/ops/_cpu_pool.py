"""A small caching pool for the large CPU output buffers of the fused kernels.

Why: a fresh multi-megabyte CPU tensor is a fresh ``mmap``; its first write takes a
page fault per 4 KiB page, and the kernel zeroes every page. On our 2-core VMs
that costs about 0.4 ms per MiB (64 MiB: ~25 ms) -- more than the fused neuron
kernel itself spends moving the data. A training loop allocates the same shapes
every iteration (spikes in forward, grad x in backward), so keeping the freed
blocks and handing them out again removes that cost entirely.

How: a block is a 64-byte-aligned numpy byte array; the tensor handed out is
``torch.frombuffer`` of a fresh view of it, so torch owns a reference to that
view for as long as any tensor shares its storage. When the last one dies the
view is collected and a weak-reference callback returns the block to the
pool (a plain ``weakref.ref`` kept in a dict; see benchmarks/README.md). Blocks are
reused only for an exactly equal byte size. The pool keeps at most
:data:`MAX_POOLED_BYTES` of idle blocks (set ``SPIKEFORGE_CPU_POOL_MB``; 0 disables pooling) and
:func:`release_cached_buffers` drops them all (the analogue of
``torch.cuda.empty_cache``).

The tensors behave as ordinary CPU tensors (autograd, views, ``share_memory_``,
``torch.save``); one difference: their storage cannot grow with ``resize_``.
"""

from __future__ import annotations

import os
import weakref

import numpy as np
import torch

MIN_POOLED_BYTES = 1 << 20  # smaller buffers come from torch.empty (malloc reuses them)
MAX_POOLED_BYTES = int(os.environ.get("SPIKEFORGE_CPU_POOL_MB", "2048")) << 20
_ALIGN = 64

_free: dict[int, list[np.ndarray]] = {}
_idle_bytes = [0]
_live: dict[int, tuple] = {}  # id(weakref) -> (weakref, nbytes, block) of handed-out blocks


def _release(nbytes: int, block: np.ndarray) -> None:
    """Return ``block`` to the pool (called when the last tensor on it is freed)."""
    if _idle_bytes[0] + nbytes > MAX_POOLED_BYTES:
        return  # over budget: let the block be freed
    _free.setdefault(nbytes, []).append(block)
    _idle_bytes[0] += nbytes


def _collected(ref) -> None:
    """Weak-reference callback: the view behind ``ref`` is gone, its block is free."""
    entry = _live.pop(id(ref), None)
    if entry is not None:
        _release(entry[1], entry[2])


def empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised contiguous CPU tensor of ``shape``/``dtype``, from the pool when
    it is large (``>= MIN_POOLED_BYTES``) and pooling is enabled, else ``torch.empty``."""
    numel = 1
    for d in shape:
        numel *= int(d)
    nbytes = numel * dtype.itemsize
    if nbytes < MIN_POOLED_BYTES or MAX_POOLED_BYTES <= 0:
        return torch.empty(shape, dtype=dtype)
    block = None
    blocks = _free.get(nbytes)
    while blocks:
        try:
            block = blocks.pop()
        except IndexError:  # emptied by another thread meanwhile
            break
        _idle_bytes[0] -= nbytes
        break
    if block is None:
        raw = np.empty(nbytes + _ALIGN, dtype=np.uint8)
        off = (-raw.ctypes.data) % _ALIGN
        block = raw[off : off + nbytes]
    view = block.view()  # the object torch keeps alive; its collection frees the block
    ref = weakref.ref(view, _collected)
    _live[id(ref)] = (ref, nbytes, block)
    return torch.frombuffer(view, dtype=dtype).view(shape)


def release_cached_buffers() -> int:
    """Drop every idle pooled block (their memory goes back to the OS); returns the bytes
    released."""
    released = 0
    for nbytes, blocks in list(_free.items()):
        while blocks:
            try:
                blocks.pop()
            except IndexError:
                break
            released += nbytes
            _idle_bytes[0] -= nbytes
    return released


def idle_bytes() -> int:
    """Bytes held by idle pooled blocks."""
    return _idle_bytes[0]
