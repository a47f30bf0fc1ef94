"""Memory-mapped arrays read in chunks without their pages piling up in the process.

A read-only file mapping keeps every page it has touched resident (and counted in the
process's memory) until the kernel needs the memory back. Streaming code calls
``release(arr, start, stop)`` after a chunk, which drops those pages from this process
(they stay in the page cache, so a second pass is still fast), so peak memory is bounded by
the chunk, not by the file.
"""
from __future__ import annotations

import mmap
from typing import Any

import numpy as np

PAGE = mmap.PAGESIZE


def _mapping(arr: Any) -> tuple[mmap.mmap, int] | None:
    """The mmap object under ``arr`` and the byte offset of ``arr[0]`` in it, or None."""
    base = arr
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "_mmap", None) if isinstance(base, np.memmap) and base._mmap is not None \
            else getattr(base, "base", None)
    if base is None:
        return None
    start = np.asarray(arr).__array_interface__["data"][0]
    view = np.frombuffer(base, dtype=np.uint8, count=0) if len(base) else None
    if view is None:
        return None
    return base, start - view.__array_interface__["data"][0]


def release(arr: np.ndarray, start: int, stop: int) -> None:
    """Drop the resident pages of rows ``start:stop`` of a C-contiguous memory-mapped ``arr``.

    A no-op for arrays in memory, or where ``madvise`` is unavailable."""
    if not isinstance(arr, np.memmap) or not arr.flags.c_contiguous or stop <= start:
        return
    found = _mapping(arr)
    if found is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    mm, offset = found
    row = arr.strides[0] if arr.ndim else arr.itemsize
    lo = offset + start * row
    hi = min(offset + stop * row, len(mm))
    lo_page = (lo // PAGE) * PAGE
    if hi > lo_page:
        try:
            mm.madvise(mmap.MADV_DONTNEED, lo_page, hi - lo_page)
        except (OSError, ValueError):
            pass  # advice only: a refusal costs memory, never correctness


def take_rows(arr: np.ndarray, rows: np.ndarray, span_bytes: int = 16 << 20) -> np.ndarray:
    """``arr[rows]`` (``rows`` sorted ascending) without the mapping's pages piling up.

    Reading scattered rows of a memory-mapped file maps far more than the rows: each page
    fault maps its neighbours too (fault-around), so a few thousand rows spread over a 1M-row
    file make most of the file resident. The rows are read in groups that span at most
    ``span_bytes`` of the file, and each group's pages are released before the next."""
    if not isinstance(arr, np.memmap) or not arr.flags.c_contiguous or len(rows) == 0:
        return np.asarray(arr[rows])
    row_bytes = max(1, arr.strides[0])
    span = max(1, span_bytes // row_bytes)
    out = np.empty((len(rows), *arr.shape[1:]), dtype=arr.dtype)
    i = 0
    while i < len(rows):
        lo = int(rows[i])
        j = int(np.searchsorted(rows, lo + span, side="left"))  # > i: rows[i] < lo + span
        out[i:j] = arr[rows[i:j]]
        release(arr, lo, int(rows[j - 1]) + 1)
        i = j
    return out
