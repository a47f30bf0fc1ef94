"""Which noise made each image of a sample set made outside membench (``detect --noise-index``).

Two sample sets drawn from the same initial noises (a teacher's and its student's, say) are
compared noise by noise only when each image's noise is known. ``--noise-index`` gives it as:

* ``index.csv`` (or ``index.csv:COLUMN``): a CSV with the column ``noise_index`` (or COLUMN)
  and either ``file`` (the image file's name in a sample folder) or ``sample`` (the 0-based
  position in a ``.npz``/``.npy`` array); every image needs exactly one row;
* ``index.npz`` (or ``index.npz:KEY``): the array ``noise_index`` (or KEY), one per image in order;
  ``index.npy``: the array itself;
* ``KEY``: an array of that name inside the samples' own ``.npz`` file.

Noise indices must be distinct non-negative integers. The images' names (the file name in a
folder, ``file.npz[i]`` in an array) travel into the per-sample outputs.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from membench.core.errors import MembenchError


def sample_names(samples: str | Path, meta: dict[str, Any] | None, n: int) -> np.ndarray:
    """Each image's name: its file name in a folder, else ``<file>[i]``."""
    files = (meta or {}).get("files")
    if files is not None and len(files) == n:
        return np.asarray(files, dtype=str)
    base = Path(samples).name
    return np.asarray([f"{base}[{i}]" for i in range(n)], dtype=str)


def _split(spec: str) -> tuple[Path, str | None]:
    """``path.csv:column`` -> (path, column); a Windows drive letter is not a column."""
    for suffix in (".csv", ".npz", ".npy"):
        head, sep, tail = spec.rpartition(suffix + ":")
        if sep and tail and "/" not in tail:
            return Path(head + suffix), tail
    return Path(spec), None


def check_noise_index(idx: np.ndarray, n: int, what: str) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.ndim != 1 or len(idx) != n:
        raise MembenchError(f"{what}: {idx.shape[0] if idx.ndim == 1 else idx.shape} noise indices for {n} images")
    if idx.dtype.kind == "f" and np.all(np.isfinite(idx)) and np.all(idx == np.round(idx)):
        idx = idx.astype(np.int64)
    if idx.dtype.kind not in "iu":
        raise MembenchError(f"{what}: noise indices must be integers, got {idx.dtype}")
    idx = idx.astype(np.int64)
    if len(idx) and idx.min() < 0:
        raise MembenchError(f"{what}: negative noise index {int(idx.min())}")
    uniq, counts = np.unique(idx, return_counts=True)
    if (counts > 1).any():
        raise MembenchError(f"{what}: noise index {int(uniq[counts > 1][0])} is given to {int(counts.max())} images; "
                            "each image needs its own noise")
    return idx


def _from_csv(path: Path, column: str | None, names: np.ndarray, what: str) -> np.ndarray:
    column = column or "noise_index"
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MembenchError(f"{what}: cannot read CSV: {type(exc).__name__}: {exc}") from None
    header = list(rows[0].keys()) if rows else []
    if column not in header:
        raise MembenchError(f"{what}: no column {column!r} (columns: {', '.join(header) or 'none'})")
    key = "file" if "file" in header else "sample" if "sample" in header else None
    if key is None:
        raise MembenchError(f"{what}: needs a 'file' column (image file names) or a 'sample' column (positions)")
    wanted = [str(x) for x in names] if key == "file" else [str(i) for i in range(len(names))]
    found: dict[str, str] = {}
    for r in rows:
        k = (r.get(key) or "").strip()
        if k in found:
            raise MembenchError(f"{what}: {key} {k!r} appears twice")
        found[k] = (r.get(column) or "").strip()
    missing = [k for k in wanted if k not in found]
    if missing:
        raise MembenchError(f"{what}: no row for {len(missing)} image(s), e.g. {key} {missing[0]!r}")
    try:
        values = [int(found[k]) for k in wanted]
    except ValueError:
        bad = next(found[k] for k in wanted if not found[k].lstrip("-").isdigit())
        raise MembenchError(f"{what}: noise index {bad!r} is not an integer") from None
    return np.asarray(values, dtype=np.int64)


def _from_npz(path: Path, key: str, what: str) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as z:
            if key not in z.files:
                raise MembenchError(f"{what}: no array {key!r} (arrays: {', '.join(z.files) or 'none'})")
            return np.asarray(z[key])
    except MembenchError:
        raise
    except Exception as exc:
        raise MembenchError(f"{what}: cannot read: {type(exc).__name__}: {exc}") from None


def load_noise_index(spec: str, samples: str | Path, names: np.ndarray) -> np.ndarray:
    """The noise index of each image of ``samples`` (named ``names``), from ``spec`` (see module doc)."""
    path, part = _split(str(spec))
    what = f"--noise-index {spec}"
    if path.suffix in (".csv", ".npz", ".npy") and not path.is_file():
        raise MembenchError(f"{what}: file not found")
    if path.suffix == ".csv":
        idx = _from_csv(path, part, names, what)
    elif path.suffix == ".npz":
        idx = _from_npz(path, part or "noise_index", what)
    elif path.suffix == ".npy":
        try:
            idx = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise MembenchError(f"{what}: cannot read: {type(exc).__name__}: {exc}") from None
    elif Path(samples).suffix == ".npz" and Path(samples).is_file():
        idx = _from_npz(Path(samples), str(spec), f"{what} (an array in {Path(samples).name})")
    else:
        raise MembenchError(f"{what}: neither a .csv/.npz/.npy file nor an array of the samples' .npz file")
    return check_noise_index(idx, len(names), what)
