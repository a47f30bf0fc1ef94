"""Hugging Face ``datasets`` folders written by ``save_to_disk`` (the optional extra ``membench[hf]``).

Recognised by their files: ``dataset_info.json`` + ``state.json`` (one split) or
``dataset_dict.json`` (several). Nothing is guessed:

* **split** (a ``DatasetDict``): ``split=NAME``; default ``train``, or the only split.
* **held-out split**: ``heldout=NAME`` or ``heldout=none``; default the one of ``test`` and
  ``validation`` that exists (both existing is ambiguous and must be declared).
* **image column**: the one column whose feature is ``Image``, ``Array2D`` or ``Array3D``;
  several need ``image=NAME``. Image bytes are read under the image-file rules (16-bit, alpha,
  palette; ``alpha=``/``channels=``), array columns under the array rules (``range=``, ``layout=``).
* **label column**: the one ``ClassLabel`` column (its ``num_classes`` bounds the labels);
  several need ``label=NAME``; ``label=NAME`` may also name an integer column, ``label=none``
  drops them. Without a ``ClassLabel`` column there are no labels unless declared.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from membench.core.errors import MembenchError, UnavailableError
from membench.data import validate

MARKERS = ("dataset_info.json", "state.json")
DICT_MARKER = "dataset_dict.json"


def is_hf_folder(path: Path) -> bool:
    return (path / DICT_MARKER).is_file() or all((path / m).is_file() for m in MARKERS)


def load(path: Path, spec: str, options: dict[str, Any]):
    # `heldout=none` / `label=none` arrive as None (the spec parser's none); absent means default
    options = {k: ("none" if v is None and k in ("heldout", "label") else v) for k, v in options.items()}
    try:
        import datasets
    except ImportError:
        raise UnavailableError(f"{path} is a Hugging Face datasets folder; reading it needs the optional extra: "
                               "pip install 'membench[hf]'") from None
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise MembenchError(f"{path}: not a readable datasets folder ({type(exc).__name__}: {exc})") from None
    train, held, split_meta = _splits(path, loaded, options, datasets)
    image_col = _image_column(path, train, options.get("image"), datasets)
    label_col, num_classes = _label_column(path, train, options.get("label"), datasets)
    what = f"{path}[{split_meta['split']}]" if split_meta.get("split") else str(path)
    images, notes = _images(train, image_col, what, options, datasets)
    held_images = _images(held, image_col, f"{path}[{split_meta['heldout']}]", options, datasets)[0] \
        if held is not None else None
    labels = _labels(train, label_col, what)
    held_labels = _labels(held, label_col, what) if held is not None else None
    meta: dict[str, Any] = {"source": "huggingface datasets", "image_column": image_col, "label_column": label_col,
                            **split_meta}
    if label_col is not None and isinstance(train.features[label_col], datasets.ClassLabel):
        meta["classes"] = list(train.features[label_col].names)
    if notes:
        meta["image_notes"] = notes
    layout = options.get("layout") if _is_array(train.features[image_col], datasets) else "nhwc"
    return validate.build(spec, images, heldout=held_images, labels=labels, heldout_labels=held_labels,
                          num_classes=num_classes, value_range=options.get("range"), layout=layout, meta=meta, what=what)


def _splits(path: Path, loaded: Any, options: dict[str, Any], datasets: Any) -> tuple[Any, Any, dict[str, Any]]:
    if not isinstance(loaded, datasets.DatasetDict):
        if "split" in options or options.get("heldout", "none") != "none":
            raise MembenchError(f"{path}: holds a single split; split= and heldout= apply to a DatasetDict folder")
        return loaded, None, {}
    names = list(loaded.keys())
    split = options.get("split")
    if split is None:
        split = "train" if "train" in names else (names[0] if len(names) == 1 else None)
        if split is None:
            raise MembenchError(f"{path}: no 'train' split among {', '.join(names)}; choose one with split=NAME")
    if split not in names:
        raise MembenchError(f"{path}: no split {split!r} (splits: {', '.join(names)})")
    heldout = options.get("heldout")
    if heldout is None:
        found = [s for s in ("test", "validation") if s in names and s != split]
        if len(found) > 1:
            raise MembenchError(f"{path}: both 'test' and 'validation' could be the held-out split; "
                                "choose with heldout=NAME or heldout=none")
        heldout = found[0] if found else "none"
    if heldout != "none" and heldout not in names:
        raise MembenchError(f"{path}: no split {heldout!r} for heldout (splits: {', '.join(names)})")
    if heldout == split:
        raise MembenchError(f"{path}: the held-out split must differ from the training split {split!r}")
    held = loaded[heldout] if heldout != "none" else None
    return loaded[split], held, {"split": split, "heldout": None if heldout == "none" else heldout}


def _is_array(feature: Any, datasets: Any) -> bool:
    return isinstance(feature, (datasets.Array2D, datasets.Array3D))


def _image_column(path: Path, ds: Any, wanted: str | None, datasets: Any) -> str:
    candidates = [k for k, f in ds.features.items() if isinstance(f, datasets.Image) or _is_array(f, datasets)]
    if wanted is not None:
        if wanted not in ds.features:
            raise MembenchError(f"{path}: no column {wanted!r} (columns: {', '.join(ds.features)})")
        if wanted not in candidates:
            raise MembenchError(f"{path}: column {wanted!r} is {type(ds.features[wanted]).__name__}, "
                                "not an Image, Array2D or Array3D feature")
        return wanted
    if not candidates:
        raise MembenchError(f"{path}: no Image, Array2D or Array3D column (columns: {', '.join(ds.features)})")
    if len(candidates) > 1:
        raise MembenchError(f"{path}: several image columns ({', '.join(candidates)}); choose one with image=NAME")
    return candidates[0]


def _label_column(path: Path, ds: Any, wanted: str | None, datasets: Any) -> tuple[str | None, int | None]:
    if wanted == "none":
        return None, None
    if wanted is not None:
        if wanted not in ds.features:
            raise MembenchError(f"{path}: no column {wanted!r} (columns: {', '.join(ds.features)})")
        feature = ds.features[wanted]
        if isinstance(feature, datasets.ClassLabel):
            return wanted, feature.num_classes
        if not (isinstance(feature, datasets.Value) and feature.dtype.startswith(("int", "uint"))):
            raise MembenchError(f"{path}: column {wanted!r} ({feature}) is not a ClassLabel or integer column")
        return wanted, None
    found = [k for k, f in ds.features.items() if isinstance(f, datasets.ClassLabel)]
    if len(found) > 1:
        raise MembenchError(f"{path}: several ClassLabel columns ({', '.join(found)}); choose with label=NAME "
                            "or label=none")
    return (found[0], ds.features[found[0]].num_classes) if found else (None, None)


def _images(ds: Any, column: str, what: str, options: dict[str, Any], datasets: Any) -> tuple[np.ndarray, dict]:
    from membench.data.images import read_image

    if _is_array(ds.features[column], datasets):
        return np.asarray(ds.with_format("numpy")[column]), {}
    raw = ds.cast_column(column, datasets.Image(decode=False))[column]
    if not raw:
        raise MembenchError(f"{what}: no images")
    notes: dict[str, int] = {}
    arrays = []
    for i, cell in enumerate(raw):
        name = f"{what} row {i}"
        if cell is None:
            raise MembenchError(f"{name}: no image")
        data = cell.get("bytes") or cell.get("path")
        if data is None:
            raise MembenchError(f"{name}: the image has neither bytes nor a path")
        arr = read_image(data if isinstance(data, bytes) else Path(data), name, alpha=options.get("alpha", "refuse"),
                         channels=options.get("channels"), notes=notes)
        if arrays and (arr.shape, arr.dtype) != (arrays[0].shape, arrays[0].dtype):
            raise MembenchError(f"{name}: {arr.dtype} {arr.shape[:2]}x{arr.shape[2]} differs from row 0 "
                                f"({arrays[0].dtype} {arrays[0].shape[:2]}x{arrays[0].shape[2]}); the images must "
                                "share size, channels and bit depth")
        arrays.append(arr)
    return np.stack(arrays), notes


def _labels(ds: Any, column: str | None, what: str) -> np.ndarray | None:
    if column is None:
        return None
    values = ds[column]
    if any(v is None for v in values):
        raise MembenchError(f"{what}: column {column!r} has missing labels")
    return np.asarray(values)
