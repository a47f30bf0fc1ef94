"""Named, seeded datasets.

``digits:n=64`` is a seeded, de-duplicated subset of scikit-learn's bundled handwritten
digits (1,797 gray 8x8 images, no download). All subsets of one ``seed`` share the same
held-out split and are nested (``digits:n=64`` is inside ``digits:n=512``), so models
trained on different sizes are compared against the same unseen images.

A dataset can also be a path: a ``.npz`` file (array ``images``, optional ``heldout``), a
``.npy`` file (memory-mapped, for training sets that do not fit in memory) or a folder of
images. A declarative entry ``registry/datasets/<name>.toml`` may name either.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from membench.core.errors import MembenchError
from membench.core.specs import format_spec, parse_spec

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@dataclass
class Dataset:
    """Training images and a disjoint held-out split, both (N, C, H, W) float32 in [-1, 1]."""

    spec: str
    images: np.ndarray
    heldout: np.ndarray | None = None
    source_index: np.ndarray | None = None  # index of each training image in the source
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def fingerprint(self) -> str:
        """Content hash of the training images (streamed, so memmaps stay out of memory)."""
        h = hashlib.sha256(str(self.images.shape).encode())
        for start in range(0, len(self), 4096):
            h.update(np.ascontiguousarray(self.images[start : start + 4096], dtype=np.float32).tobytes())
        return h.hexdigest()[:16]


# ---------------------------------------------------------------- validation / conversion


def to_model_range(arr: np.ndarray, what: str) -> np.ndarray:
    """Convert an image array to float32 (N, C, H, W) in [-1, 1]; uint8 is scaled from [0, 255]."""
    arr = np.asarray(arr)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4:
        raise MembenchError(f"{what}: expected images of shape (N, C, H, W) or (N, H, W), got {arr.shape}")
    if arr.shape[1] not in (1, 3) and arr.shape[-1] in (1, 3):
        arr = arr.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 127.5 - 1.0
    elif np.issubdtype(arr.dtype, np.number):
        arr = arr.astype(np.float32)
    else:
        raise MembenchError(f"{what}: unsupported dtype {arr.dtype}")
    check_images(arr, what)
    return arr


def check_images(arr: np.ndarray, what: str, value_range: bool = True) -> None:
    if arr.shape[0] == 0:
        raise MembenchError(f"{what}: no images")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr.reshape(arr.shape[0], -1))).any(axis=1).sum())
        raise MembenchError(f"{what}: {bad} image(s) contain NaN or infinite values")
    if value_range and (arr.min() < -1.0 - 1e-4 or arr.max() > 1.0 + 1e-4):
        raise MembenchError(
            f"{what}: float pixel values must lie in [-1, 1] (got [{arr.min():.3g}, {arr.max():.3g}]); "
            "store uint8 images to have them scaled"
        )


# ---------------------------------------------------------------- sources


def _digits_pool() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    raw = load_digits().images.astype(np.float32)  # (1797, 8, 8) in 0..16
    _, first = np.unique(raw.reshape(len(raw), -1), axis=0, return_index=True)
    keep = np.sort(first)  # drop exact duplicates, keep source order
    return keep, raw[keep][:, None] / 8.0 - 1.0


def load_digits_subset(n: int | None = None, seed: int = 0, holdout: int = 300) -> Dataset:
    keep, pool = _digits_pool()
    if holdout < 0 or holdout >= len(pool):
        raise MembenchError(f"digits: holdout must be in [0, {len(pool) - 1}], got {holdout}")
    available = len(pool) - holdout
    if n is None:
        n = available
    if not isinstance(n, int) or n <= 0 or n > available:
        raise MembenchError(f"digits: n must be an integer in [1, {available}] (holdout={holdout}), got {n!r}")
    order = np.random.default_rng(seed).permutation(len(pool))
    held, train = order[:holdout], order[holdout : holdout + n]
    spec = format_spec("digits", {"n": n, "seed": seed, "holdout": holdout})
    return Dataset(
        spec=spec,
        images=pool[train],
        heldout=pool[held] if holdout else None,
        source_index=keep[train],
        meta={"source": "sklearn.datasets.load_digits", "deduplicated_pool": len(pool)},
    )


def _load_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            key = "images" if "images" in z else (keys[0] if keys else None)
            if key is None:
                raise MembenchError(f"{path}: the .npz file holds no arrays")
            images = to_model_range(z[key], f"{path}[{key}]")
            heldout = to_model_range(z["heldout"], f"{path}[heldout]") if "heldout" in z else None
    except MembenchError:
        raise
    except Exception as exc:
        raise MembenchError(f"{path}: cannot read .npz file: {type(exc).__name__}: {exc}") from None
    return Dataset(spec=str(path), images=images, heldout=heldout)


def _load_npy(path: Path) -> Dataset:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise MembenchError(f"{path}: cannot read .npy file: {type(exc).__name__}: {exc}") from None
    if arr.ndim != 4 or arr.dtype != np.float32:
        # small or non-canonical arrays are converted in memory
        return Dataset(spec=str(path), images=to_model_range(np.asarray(arr), str(path)))
    if arr.shape[0] == 0:
        raise MembenchError(f"{path}: no images")
    return Dataset(spec=str(path), images=arr, meta={"memmap": True})


def _load_folder(path: Path, channels: int | None = None) -> Dataset:
    from PIL import Image

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MembenchError(f"{path}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder")
    arrays = []
    for f in files:
        try:
            with Image.open(f) as im:
                mode = {1: "L", 3: "RGB"}.get(channels or 0) or ("L" if im.mode in ("L", "1", "I;16", "I") else "RGB")
                arrays.append(np.asarray(im.convert(mode), dtype=np.uint8))
        except Exception as exc:
            raise MembenchError(f"{f}: cannot read image: {type(exc).__name__}: {exc}") from None
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise MembenchError(f"{path}: images differ in size or channels {sorted(shapes)}; resize them first")
    stack = np.stack(arrays)
    if stack.ndim == 3:
        stack = stack[:, None]
    else:
        stack = stack.transpose(0, 3, 1, 2)
    return Dataset(spec=str(path), images=to_model_range(stack, str(path)), meta={"files": [f.name for f in files]})


def load_images(path: str | Path, what: str = "images") -> np.ndarray:
    """Images from a ``.npz``/``.npy`` file or an image folder, as float32 NCHW in [-1, 1]."""
    return load_dataset(str(path)).images


def load_dataset(spec: str) -> Dataset:
    """Resolve a dataset name (``digits:n=64``, a registry entry) or a path."""
    from membench.core.registry import entry_files, read_entry, unknown

    path = Path(spec)
    if path.suffix in (".npz", ".npy") or path.is_dir() or path.exists():
        if not path.exists():
            raise MembenchError(f"dataset file not found: {path}")
        if path.is_dir():
            return _load_folder(path)
        if path.suffix == ".npz":
            return _load_npz(path)
        if path.suffix == ".npy":
            return _load_npy(path)
        raise MembenchError(f"{path}: unsupported dataset file (use .npz, .npy or an image folder)")
    name, overrides = parse_spec(spec)
    if name == "digits":
        allowed = {"n", "seed", "holdout"}
        bad = set(overrides) - allowed
        if bad:
            raise MembenchError(f"digits: unknown option(s) {sorted(bad)}; allowed: {sorted(allowed)}")
        return load_digits_subset(**overrides)
    if name in entry_files("datasets"):
        entry = read_entry("datasets", name)
        if "path" in entry:
            base = Path(entry["_entry_path"]).parent
            target = Path(entry["path"])
            ds = load_dataset(str(target if target.is_absolute() else (base / target).resolve()))
        else:
            params = {**entry.get("params", {}), **overrides}
            ds = load_dataset(format_spec(entry.get("base", "digits"), params))
        ds.spec = format_spec(name, overrides)
        return ds
    raise unknown("datasets", name, ["digits", *entry_files("datasets")])
