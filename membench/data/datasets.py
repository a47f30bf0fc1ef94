"""Datasets by name or path, validated on load.

A name is a ``DATASETS`` registry entry (``membench.data``): a loader such as the built-in
``digits`` (``digits:n=64``; ``membench.data.digits``) or a plugin's, called with the
``name:k=v`` options, or a TOML entry ``registry/datasets/<name>.toml`` that names a path
or a ``base`` dataset with ``[params]``.

A dataset can also be a path: a ``.npz`` file (array ``images``, optional ``heldout``), a
``.npy`` file (memory-mapped, for training sets that do not fit in memory) or a folder of
images.
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
    # Class labels (int64, one per image) when the source has them: class-conditional models
    # and same-class nearest-neighbour search need them; nothing else reads them.
    labels: np.ndarray | None = None
    heldout_labels: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def fingerprint(self) -> str:
        """Content hash of the training images (streamed, so memmaps stay out of memory).

        Computed once per images array: every record and cache key of a run asks for it, and a
        large memory-mapped training set would otherwise be read again each time."""
        memo = self.__dict__.get("_fingerprint")
        if memo is not None and memo[0] is self.images:
            return memo[1]
        h = hashlib.sha256(str(self.images.shape).encode())
        from membench.core.mapped import release

        for start in range(0, len(self), 4096):
            h.update(np.ascontiguousarray(self.images[start : start + 4096], dtype=np.float32).tobytes())
            release(self.images, start, start + 4096)  # a memory-mapped set's pages do not pile up
        self.__dict__["_fingerprint"] = (self.images, h.hexdigest()[:16])
        return self.__dict__["_fingerprint"][1]


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
    """Resolve a dataset name (``digits:n=64``, a registry entry, a plugin) or a path."""
    from membench.data import DATASETS

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
    loader = DATASETS.find(name)  # code first: a TOML file never shadows a built-in loader
    if loader is not None:
        return check_dataset(DATASETS.instantiate(name, loader, overrides), name)
    if name in DATASETS.entry_files():
        entry = DATASETS.read_entry(name)
        if "path" in entry:
            base = Path(entry["_entry_path"]).parent
            target = Path(entry["path"])
            ds = load_dataset(str(target if target.is_absolute() else (base / target).resolve()))
        else:
            params = {**entry.get("params", {}), **overrides}
            ds = load_dataset(format_spec(entry.get("base", "digits"), params))
        ds.spec = format_spec(name, overrides)
        return ds
    raise DATASETS.unknown(name)


def check_dataset(ds: Any, name: str) -> Dataset:
    """A loader's result, refused in one line unless it is a valid ``Dataset``."""
    if not isinstance(ds, Dataset):
        raise MembenchError(f"dataset {name!r}: its loader returned {type(ds).__name__}, not a membench Dataset")
    for what, arr in (("images", ds.images), ("heldout", ds.heldout)):
        if arr is None:
            continue
        if not isinstance(arr, np.ndarray) or arr.ndim != 4 or arr.dtype != np.float32:
            raise MembenchError(f"dataset {name!r}: {what} must be a float32 (N, C, H, W) array, got "
                                f"{getattr(arr, 'dtype', type(arr).__name__)} {getattr(arr, 'shape', '')}")
        check_images(arr, f"dataset {name!r} {what}")
    if ds.heldout is not None and ds.heldout.shape[1:] != ds.images.shape[1:]:
        raise MembenchError(f"dataset {name!r}: held-out images have shape {ds.heldout.shape[1:]}, "
                            f"training images {ds.images.shape[1:]}")
    return ds
