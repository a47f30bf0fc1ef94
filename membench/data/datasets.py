"""Datasets by name or path, validated on load.

A name is a ``DATASETS`` registry entry (``membench.data``): a loader such as the built-in
``digits`` (``digits:n=64``; ``membench.data.digits``) or a plugin's, called with the
``name:k=v`` options, or a TOML entry ``registry/datasets/<name>.toml`` that names a path
or a ``base`` dataset with ``[params]``.

A dataset can also be a path (``membench.data.files``): a ``.npz`` file, a ``.npy`` file
(memory-mapped), a folder of images or a Hugging Face ``save_to_disk`` folder, optionally
followed by options (``train.npy:range=0..255``). Every source ends in ``membench.data.validate``.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from membench.core.errors import MembenchError
from membench.core.specs import format_spec, parse_spec
from membench.data.files import load_path
from membench.data.validate import check_dataset


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

    def labels_fingerprint(self) -> str | None:
        """Hash of the training labels (None without labels). Kept apart from ``fingerprint``: only
        measurements that use labels (same-class search, class-conditional sampling) put it in
        their record key, so adding labels to a dataset does not invalidate its other records."""
        if self.labels is None:
            return None
        labels = np.ascontiguousarray(self.labels, dtype=np.int64)
        return hashlib.sha256(str(labels.shape).encode() + labels.tobytes()).hexdigest()[:16]

    @property
    def num_classes(self) -> int | None:
        """Number of classes when the dataset has labels (declared by its source, or max label + 1)."""
        if self.labels is None:
            return None
        return int(self.meta.get("num_classes", int(self.labels.max()) + 1))


# ---------------------------------------------------------------- resolution


def split_path_spec(spec: str) -> tuple[Path, dict[str, Any]] | None:
    """``PATH`` or ``PATH:k=v,...`` -> (path, options); None when ``spec`` is a name, not a path.

    A spec is a path when it exists, when the part before its last colon exists, or when it
    looks like one (a folder separator or a ``.npz``/``.npy`` suffix)."""
    def exists(text: str) -> bool:
        try:
            return Path(text).exists()
        except (OSError, ValueError):  # a name no file system takes
            return False

    def explicit(text: str) -> bool:  # unmistakably a path, existing or not
        return Path(text).suffix.lower() in (".npz", ".npy") or "/" in text or os.sep in text

    if exists(spec):
        return Path(spec), {}
    head, sep, tail = spec.rpartition(":")
    if sep and head and "=" in tail and (explicit(head) or (exists(head) and not _registered(head))):
        return Path(head), parse_spec("path:" + tail)[1]
    if explicit(spec):
        return Path(spec), {}
    return None


def _registered(name: str) -> bool:
    from membench.data import DATASETS

    return DATASETS.find(name) is not None or name in DATASETS.entry_files()


def load_image_file(spec: str | Path, what: str = "samples") -> Dataset:
    """A file or folder of images (``PATH[:k=v,...]``, the same formats and rules as a dataset
    path) with what its loader recorded (``meta["files"]``: each image's name in a folder)."""
    found = split_path_spec(str(spec))
    if found is None or not found[0].exists():
        raise MembenchError(f"{what} not found: {spec}")
    return load_path(found[0], str(spec), found[1])


def load_images(spec: str | Path, what: str = "samples") -> np.ndarray:
    """Images of a file or folder (see ``load_image_file``), as float32 NCHW in [-1, 1]."""
    return np.asarray(load_image_file(spec, what).images)


def as_dataset(train: Any) -> Dataset:
    """A ``Dataset`` object (validated) or a spec (loaded): what the Python API accepts as training data."""
    if isinstance(train, Dataset):
        return check_dataset(train, train.spec)
    if isinstance(train, (str, Path)):
        return load_dataset(str(train))
    raise MembenchError(f"training data must be a dataset name, a path or a membench Dataset, got {type(train).__name__}")


def load_dataset(spec: str) -> Dataset:
    """Resolve a dataset name (``digits:n=64``, a registry entry, a plugin) or a path (``PATH[:k=v,...]``)."""
    from membench.data import DATASETS

    if not isinstance(spec, str) or not spec.strip():
        raise MembenchError(f"a dataset must be a non-empty name or path, got {spec!r}")
    found = split_path_spec(spec)
    if found is not None:
        return load_path(found[0], spec, found[1])
    name, overrides = parse_spec(spec)
    loader = DATASETS.find(name)  # code first: a TOML file never shadows a built-in loader
    if loader is not None:
        return check_dataset(DATASETS.instantiate(name, loader, overrides), name)
    if name in DATASETS.entry_files():
        entry = DATASETS.read_entry(name)
        if "path" in entry:
            base = Path(entry["_entry_path"]).parent
            target = Path(entry["path"])
            target = target if target.is_absolute() else (base / target).resolve()
            ds = load_path(target, str(target), {**entry.get("params", {}), **overrides})
        else:
            params = {**entry.get("params", {}), **overrides}
            ds = load_dataset(format_spec(entry.get("base", "digits"), params))
        ds.spec = format_spec(name, overrides)
        return ds
    raise DATASETS.unknown(name)
