"""Dataset files and folders: ``.npz``, memory-mapped ``.npy``, image folders and Hugging Face
``save_to_disk`` folders, each read into raw arrays and handed to ``validate.build``.

A path may carry options after its last colon (``train.npy:range=0..255``); each kind takes
the options listed in ``OPTIONS``, and any other is refused.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from membench.core.errors import MembenchError
from membench.data import validate

OPTIONS = {
    ".npz": ("range", "layout", "num_classes", "images"),
    ".npy": ("range", "layout"),
    "folder": ("alpha", "channels", "labels"),
    "hf": ("image", "label", "split", "heldout", "alpha", "channels", "range", "layout"),
}
NPZ_ARRAYS = ("images", "heldout", "labels", "heldout_labels")
MAGIC = {".npz": (b"PK\x03\x04", b"PK\x05\x06"), ".npy": (b"\x93NUMPY",)}  # zip archive, numpy array


def check_magic(path: Path, suffix: str) -> None:
    """A file whose first bytes are not those of its suffix's format is refused by name (numpy
    would otherwise try to read it as a pickle and say so)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise MembenchError(f"{path}: cannot read {suffix} file: {exc.strerror or exc}") from None
    if not head.startswith(MAGIC[suffix]):
        kind = "a zip archive" if suffix == ".npz" else "a numpy array"
        raise MembenchError(f"{path}: cannot read {suffix} file: its contents are not {kind} "
                            f"(it starts with {head[:8]!r})")


def check_options(path: Path, kind: str, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(OPTIONS[kind]))
    if unknown:
        what = {"folder": "an image folder", "hf": "a Hugging Face datasets folder"}.get(kind, f"a {kind} file")
        raise MembenchError(f"{path}: unknown option {unknown[0]!r} for {what} (known: {', '.join(OPTIONS[kind])})")


def load_npz(path: Path, spec: str, options: dict[str, Any]):
    check_options(path, ".npz", options)
    check_magic(path, ".npz")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            key = options.get("images")
            if key is None:
                key = "images" if "images" in keys else (keys[0] if len(keys) == 1 else None)
            if key is None:
                raise MembenchError(f"{path}: no array named 'images' among {', '.join(keys) or 'none'}; "
                                    "name the one to use with images=NAME")
            if key not in keys:
                raise MembenchError(f"{path}: no array {key!r} (arrays: {', '.join(keys)})")
            arrays = {name: z[name] for name in NPZ_ARRAYS[1:] if name in keys}
            images = z[key]
    except MembenchError:
        raise
    except Exception as exc:
        raise MembenchError(f"{path}: cannot read .npz file ({type(exc).__name__}: {exc})") from None
    return validate.build(spec, images, heldout=arrays.get("heldout"), labels=arrays.get("labels"),
                          heldout_labels=arrays.get("heldout_labels"), num_classes=options.get("num_classes"),
                          value_range=options.get("range"), layout=options.get("layout"), what=f"{path}[{key}]")


def load_npy(path: Path, spec: str, options: dict[str, Any]):
    check_options(path, ".npy", options)
    check_magic(path, ".npy")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise MembenchError(f"{path}: cannot read .npy file ({type(exc).__name__}: {exc})") from None
    if not isinstance(arr, np.ndarray):
        raise MembenchError(f"{path}: not a .npy array")
    return validate.build(spec, arr, value_range=options.get("range"), layout=options.get("layout"), what=str(path))


def load_folder(path: Path, spec: str, options: dict[str, Any]):
    from membench.data.images import read_folder

    check_options(path, "folder", options)
    stack, labels, meta = read_folder(path, alpha=options.get("alpha", "refuse"), channels=options.get("channels"),
                                      labels=options.get("labels", "auto"))
    return validate.build(spec, stack, labels=labels, num_classes=len(meta["classes"]) if labels is not None else None,
                          layout="nhwc", meta=meta, what=str(path))


def load_path(path: Path, spec: str, options: dict[str, Any]):
    """Any dataset path, by what it is: a HF folder, an image folder, ``.npz`` or ``.npy``."""
    from membench.data import hf

    if not path.exists():
        raise MembenchError(f"dataset file not found: {path}")
    if path.is_dir():
        if hf.is_hf_folder(path):
            check_options(path, "hf", options)
            return hf.load(path, spec, options)
        return load_folder(path, spec, options)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_npz(path, spec, options)
    if suffix == ".npy":
        return load_npy(path, spec, options)
    raise MembenchError(f"{path}: unsupported dataset file {suffix or '(no suffix)'} "
                        "(use .npz, .npy, an image folder or a Hugging Face save_to_disk folder)")
