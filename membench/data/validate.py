"""The one checker and converter of image arrays and labels; every source goes through it.

Rules (docs/data.md lists them for users):

* **Shape**: (N, H, W) is gray; (N, C, H, W) or (N, H, W, C) with C = 1 or 3. When both
  axis 1 and the last axis could be channels the layout is ambiguous and must be declared
  (``layout=nchw`` or ``layout=nhwc``). N, H and W must be positive.
* **Values** by dtype: uint8 is read as 0..255 and uint16 as 0..65535; floats must lie in
  [-1, 1]. A float array whose values all lie in [0, 1] (or in [0, 255]) is ambiguous and
  refused unless its range is declared (``range=0..1``, ``range=0..255``, ``range=-1..1``);
  other integer dtypes always need a declared range. Booleans, objects, strings and
  complex numbers are refused. Any NaN or infinite value is refused.
* **Labels**: integers, one per image, in 0..num_classes-1 (``num_classes`` declared or, when
  not, max + 1), returned as int64.

Arrays are scanned in chunks, so a memory-mapped training set is checked without being
loaded; the scan of a file is remembered per file stamp (path, size, modification time), so
a large file is scanned once per process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from membench.core.errors import MembenchError
from membench.core.mapped import release

# Declarable value ranges: name -> (low, high) of the stored values.
RANGES: dict[str, tuple[float, float]] = {"-1..1": (-1.0, 1.0), "0..1": (0.0, 1.0), "0..255": (0.0, 255.0),
                                          "0..65535": (0.0, 65535.0)}
DTYPE_RANGES = {np.dtype(np.uint8): "0..255", np.dtype(np.uint16): "0..65535"}
LAYOUTS = ("nchw", "nhwc")
TOLERANCE = 1e-4  # float rounding slack at the ends of a range
CHUNK_BYTES = 64 << 20  # scan in pieces of about this size


def declare_hint() -> str:
    return "declare it with range=" + ", range=".join(RANGES)


def check_range_name(value_range: Any, what: str) -> str | None:
    if value_range is None:
        return None
    if value_range not in RANGES:
        raise MembenchError(f"{what}: unknown range {value_range!r}; use one of {', '.join(RANGES)}")
    return value_range


# ---------------------------------------------------------------- scanning


@dataclass(frozen=True)
class Scan:
    """What a pass over an array found: its finite minimum and maximum, and its non-finite images."""

    low: float
    high: float
    bad_images: int  # images with a NaN or infinite value
    first_bad: int  # index of the first such image, -1 when none


_SCANS: dict[tuple, Scan] = {}


def _file_stamp(arr: np.ndarray) -> tuple | None:
    """(path, device, inode, size, mtime) of the file behind a memory map, None for in-memory arrays."""
    name = getattr(arr, "filename", None)
    base = arr
    while name is None and getattr(base, "base", None) is not None:  # a view of a memmap
        base = base.base
        name = getattr(base, "filename", None)
    if not name:
        return None
    try:
        st = os.stat(name)
    except OSError:
        return None
    return (str(Path(name).resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
            arr.shape, arr.dtype.str, getattr(arr, "offset", 0))


def scan(arr: np.ndarray) -> Scan:
    """Min, max and non-finite images of ``arr`` (first axis = images), chunk by chunk."""
    stamp = _file_stamp(arr) if isinstance(arr, np.memmap) else None
    if stamp is not None and stamp in _SCANS:
        return _SCANS[stamp]
    n = arr.shape[0]
    per_image = max(1, int(np.prod(arr.shape[1:])) * arr.dtype.itemsize)
    step = max(1, CHUNK_BYTES // per_image)
    low, high, bad, first = np.inf, -np.inf, 0, -1
    floating = np.issubdtype(arr.dtype, np.floating)
    for start in range(0, n, step):
        chunk = np.asarray(arr[start : start + step])
        if floating:
            finite = np.isfinite(chunk).reshape(len(chunk), -1).all(axis=1)
            if not finite.all():
                if first < 0:
                    first = start + int(np.argmin(finite))
                bad += int((~finite).sum())
                chunk = chunk[finite]
        if chunk.size:
            low, high = min(low, float(chunk.min())), max(high, float(chunk.max()))
        release(arr, start, start + step)  # a memory-mapped file's pages do not pile up
    result = Scan(low, high, bad, first)
    if stamp is not None:
        _SCANS[stamp] = result
    return result


# ---------------------------------------------------------------- shape


def to_nchw(arr: np.ndarray, what: str, layout: str | None = None) -> np.ndarray:
    """(N, H, W), (N, C, H, W) or (N, H, W, C) -> (N, C, H, W) with C in (1, 3); a view when possible."""
    if layout is not None and layout not in LAYOUTS:
        raise MembenchError(f"{what}: unknown layout {layout!r}; use nchw or nhwc")
    if arr.ndim == 3:
        if layout is not None:
            raise MembenchError(f"{what}: layout={layout} needs a 4-d array, got shape {arr.shape}")
        arr = arr[:, None]
    if arr.ndim != 4:
        raise MembenchError(f"{what}: expected images of shape (N, H, W), (N, C, H, W) or (N, H, W, C), "
                            f"got {arr.shape}")
    first, last = arr.shape[1] in (1, 3), arr.shape[3] in (1, 3)
    if layout is None:
        if first and last:
            raise MembenchError(f"{what}: shape {arr.shape} is ambiguous (channels first or last?); "
                                "declare it with layout=nchw or layout=nhwc")
        if not first and not last:
            raise MembenchError(f"{what}: images need 1 or 3 channels, got {arr.shape[1]} on axis 1 and "
                                f"{arr.shape[3]} on the last axis (shape {arr.shape})")
        layout = "nchw" if first else "nhwc"
    if layout == "nhwc":
        arr = arr.transpose(0, 3, 1, 2)
    if arr.shape[1] not in (1, 3):
        raise MembenchError(f"{what}: images need 1 or 3 channels, got {arr.shape[1]} (shape {arr.shape})")
    if arr.shape[0] == 0:
        raise MembenchError(f"{what}: no images")
    if arr.shape[2] == 0 or arr.shape[3] == 0:
        raise MembenchError(f"{what}: images of size {arr.shape[2]}x{arr.shape[3]}")
    return arr


# ---------------------------------------------------------------- values


def check_dtype(arr: np.ndarray, what: str) -> None:
    dt = arr.dtype
    if dt.kind == "b" or not (np.issubdtype(dt, np.integer) or np.issubdtype(dt, np.floating)):
        raise MembenchError(f"{what}: unsupported dtype {dt} (use uint8, uint16 or float)")


def resolve_range(arr: np.ndarray, what: str, value_range: str | None, found: Scan) -> tuple[float, float]:
    """The (low, high) the stored values are read from, checked against the values found."""
    value_range = check_range_name(value_range, what)
    if found.bad_images:
        raise MembenchError(f"{what}: {found.bad_images} image(s) contain NaN or infinite values "
                            f"(first: image {found.first_bad})")
    if value_range is None:
        value_range = DTYPE_RANGES.get(arr.dtype)
    if value_range is None and np.issubdtype(arr.dtype, np.integer):
        raise MembenchError(f"{what}: {arr.dtype} images have no default range "
                            f"(values {found.low:.6g}..{found.high:.6g}); {declare_hint()}")
    if value_range is None:  # floats: [-1, 1], and nothing that could be [0, 1] or [0, 255]
        if found.low >= -1 - TOLERANCE and found.high <= 1 + TOLERANCE:
            if found.low >= 0:
                raise MembenchError(f"{what}: float values lie in [{found.low:.3g}, {found.high:.3g}], "
                                    "so [0, 1] or [-1, 1] is ambiguous; declare it with range=0..1 or range=-1..1")
            return RANGES["-1..1"]
        hint = ("they look like 0..255 pixels: declare it with range=0..255"
                if found.low >= 0 and found.high <= 255 + TOLERANCE else "rescale them, or " + declare_hint())
        raise MembenchError(f"{what}: float pixel values must lie in [-1, 1] (got [{found.low:.6g}, {found.high:.6g}]); "
                            f"{hint}")
    low, high = RANGES[value_range]
    slack = TOLERANCE * (high - low)
    if found.low < low - slack or found.high > high + slack:
        raise MembenchError(f"{what}: values [{found.low:.6g}, {found.high:.6g}] lie outside the declared "
                            f"range {value_range}")
    return low, high


def scale(arr: np.ndarray, low: float, high: float) -> np.ndarray:
    """Stored values in [low, high] -> float32 in [-1, 1] (uint8: x / 127.5 - 1, as always)."""
    if (low, high) == (-1.0, 1.0):
        return np.clip(arr.astype(np.float32), -1.0, 1.0)
    x = arr.astype(np.float32)
    if low:
        x -= np.float32(low)
    x /= np.float32((high - low) / 2)
    x -= np.float32(1.0)
    return np.clip(x, -1.0, 1.0, out=x)


def to_model_range(arr: Any, what: str, value_range: str | None = None, layout: str | None = None) -> np.ndarray:
    """Any accepted image array -> float32 (N, C, H, W) in [-1, 1], or a one-line ``MembenchError``."""
    try:
        arr = np.asarray(arr)
    except Exception as exc:  # ragged lists, objects numpy cannot stack
        raise MembenchError(f"{what}: not an image array ({type(exc).__name__}: {exc})") from None
    check_dtype(arr, what)
    arr = to_nchw(arr, what, layout)
    low, high = resolve_range(arr, what, value_range, scan(arr))
    return scale(arr, low, high)


def keep_mapped(arr: np.memmap, what: str, value_range: str | None = None, layout: str | None = None) -> np.ndarray:
    """A memory-mapped array: kept mapped when it is already float32 NCHW in [-1, 1] (scanned in
    chunks, once per file stamp), otherwise converted in memory by ``to_model_range``."""
    check_dtype(arr, what)
    nchw = to_nchw(arr, what, layout)
    if arr.dtype == np.float32 and nchw is arr and check_range_name(value_range, what) in (None, "-1..1"):
        resolve_range(arr, what, value_range, scan(arr))
        return arr
    return to_model_range(np.asarray(arr), what, value_range, layout)


def check_images(arr: np.ndarray, what: str, value_range: bool = True) -> None:
    """Model-range images (float, any shape, first axis = images): non-empty, finite and,
    with ``value_range``, in [-1, 1]."""
    if arr.shape[0] == 0:
        raise MembenchError(f"{what}: no images")
    found = scan(arr)
    if found.bad_images:
        raise MembenchError(f"{what}: {found.bad_images} image(s) contain NaN or infinite values "
                            f"(first: image {found.first_bad})")
    if value_range and (found.low < -1.0 - TOLERANCE or found.high > 1.0 + TOLERANCE):
        raise MembenchError(f"{what}: float pixel values must lie in [-1, 1] (got [{found.low:.3g}, {found.high:.3g}]); "
                            "store uint8 images to have them scaled")


def shape_mismatch(shape: tuple[int, ...], train: Any, what: str = "samples") -> str | None:
    """Why images of (C, H, W) ``shape`` do not have ``train``'s image shape (one line), or None."""
    if tuple(shape) == tuple(train.shape):
        return None
    return f"{what} have shape {tuple(shape)} but the training images {train.spec} have {tuple(train.shape)}"


def check_same_shape(images: np.ndarray, train: Any, what: str = "samples") -> None:
    """Images measured against a training set must have its image shape (C, H, W)."""
    problem = shape_mismatch(tuple(images.shape[1:]), train, what)
    if problem is not None:
        raise MembenchError(problem)


# ---------------------------------------------------------------- labels


def check_labels(labels: Any, n: int, what: str, num_classes: int | None = None) -> tuple[np.ndarray, int]:
    """Labels as int64, one per image, in 0..num_classes-1; returns them and num_classes
    (max + 1 when not declared)."""
    if num_classes is not None and (not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool)
                                    or num_classes < 1):
        raise MembenchError(f"{what}: num_classes must be a positive integer, got {num_classes!r}")
    try:
        arr = np.asarray(labels)
    except Exception as exc:
        raise MembenchError(f"{what}: not an array of labels ({type(exc).__name__}: {exc})") from None
    if arr.dtype.kind not in "iu":
        raise MembenchError(f"{what}: labels must be integers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise MembenchError(f"{what}: labels must be one integer per image (shape ({n},)), got shape {arr.shape}")
    if len(arr) != n:
        raise MembenchError(f"{what}: {len(arr)} labels for {n} images")
    if n and arr.min() < 0:
        raise MembenchError(f"{what}: label {int(arr.min())} is negative; labels run 0..num_classes-1")
    top = int(arr.max()) if n else -1
    if num_classes is None:
        num_classes = top + 1
    elif top >= num_classes:
        raise MembenchError(f"{what}: label {top} is out of range for {num_classes} classes (0..{num_classes - 1})")
    return arr.astype(np.int64), int(num_classes)


def check_label_pair(labels: Any, n: int, heldout_labels: Any, n_heldout: int | None, what: str,
                     num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Training and held-out labels checked together: one class count bounds both (declared, or the
    largest label of either plus one)."""
    if labels is None:
        raise MembenchError(f"{what}: held-out labels without training labels")
    if heldout_labels is not None and n_heldout is None:
        raise MembenchError(f"{what}: held-out labels without held-out images")
    labels, k = check_labels(labels, n, f"{what} labels", num_classes)
    if heldout_labels is not None:
        heldout_labels, k_held = check_labels(heldout_labels, n_heldout, f"{what} heldout labels", num_classes)
        k = max(k, k_held)
    return labels, heldout_labels, k


# ---------------------------------------------------------------- whole datasets


def build(spec: str, images: Any, *, heldout: Any = None, labels: Any = None, heldout_labels: Any = None,
          num_classes: int | None = None, value_range: str | None = None, layout: str | None = None,
          meta: dict[str, Any] | None = None, what: str | None = None, source_index: Any = None):
    """A validated ``Dataset`` from raw arrays (any accepted dtype/layout); ``what`` names the source in errors."""
    from membench.data.datasets import Dataset

    what = what or spec
    if isinstance(images, np.memmap):
        train = keep_mapped(images, what, value_range, layout)
    else:
        train = to_model_range(images, what, value_range, layout)
    held = None
    if heldout is not None:
        held = to_model_range(heldout, f"{what} heldout", value_range, layout)
        if held.shape[1:] != train.shape[1:]:
            raise MembenchError(f"{what}: held-out images have shape {held.shape[1:]}, training images {train.shape[1:]}")
    meta = dict(meta or {})
    if labels is not None or heldout_labels is not None:
        labels, heldout_labels, meta["num_classes"] = check_label_pair(
            labels, len(train), heldout_labels, None if held is None else len(held), what, num_classes)
    if isinstance(train, np.memmap):
        meta["memmap"] = True
    return Dataset(spec=spec, images=train, heldout=held, labels=labels, heldout_labels=heldout_labels,
                   meta=meta, source_index=source_index)


def check_dataset(ds: Any, name: str):
    """A ``Dataset`` made elsewhere (a loader, the Python API), refused in one line unless valid:
    images (and held-out images) float32 (N, C, H, W), C = 1 or 3, finite, in [-1, 1], of one
    shape; labels as ``check_labels`` says (``meta['num_classes']`` bounds them when present)."""
    from membench.data.datasets import Dataset

    if not isinstance(ds, Dataset):
        raise MembenchError(f"dataset {name!r}: its loader returned {type(ds).__name__}, not a membench Dataset")
    for what, arr in (("images", ds.images), ("heldout", ds.heldout)):
        if arr is None:
            continue
        if not isinstance(arr, np.ndarray) or arr.ndim != 4 or arr.dtype != np.float32:
            raise MembenchError(f"dataset {name!r}: {what} must be a float32 (N, C, H, W) array, got "
                                f"{getattr(arr, 'dtype', type(arr).__name__)} {getattr(arr, 'shape', '')}")
        if arr.shape[1] not in (1, 3):
            raise MembenchError(f"dataset {name!r}: {what} need 1 or 3 channels, got shape {arr.shape}")
        check_images(arr, f"dataset {name!r} {what}")
    if ds.heldout is not None and ds.heldout.shape[1:] != ds.images.shape[1:]:
        raise MembenchError(f"dataset {name!r}: held-out images have shape {ds.heldout.shape[1:]}, "
                            f"training images {ds.images.shape[1:]}")
    if ds.labels is not None or ds.heldout_labels is not None:
        declared = ds.meta.get("num_classes") if isinstance(ds.meta, dict) else None
        ds.labels, ds.heldout_labels, _ = check_label_pair(
            ds.labels, len(ds), ds.heldout_labels, None if ds.heldout is None else len(ds.heldout),
            f"dataset {name!r}", declared)
    return ds
