"""Writers of test images in the exact layouts the loaders meet (16-bit PNGs are written byte by byte,
so a test does not depend on the reader under test to make its input)."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np


def write_png16(path: Path, arr: np.ndarray) -> Path:
    """A 16-bit PNG (gray (H, W), gray+alpha (H, W, 2), RGB (H, W, 3) or RGBA (H, W, 4)), filter 0."""
    arr = np.asarray(arr, dtype=np.uint16)
    if arr.ndim == 2:
        arr = arr[..., None]
    h, w, c = arr.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + arr[i].astype(">u2").tobytes() for i in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (name -> bytes) and folder (name -> None) under ``root``."""
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}
