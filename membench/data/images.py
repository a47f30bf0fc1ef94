"""Image files and folders of them, read at full depth under explicit rules.

Every image becomes an (H, W, C) uint8 or uint16 array with C = 1 or 3; ``validate`` then
scales it like any array (uint8 from 0..255, uint16 from 0..65535).

* 8-bit gray (``L``, and bilevel ``1`` as 0/255) stays 1 channel; RGB stays 3.
* 16-bit PNGs (gray or color) are read at 16 bits (Pillow would cut color ones to 8 bits, so
  they are decoded by torchvision); 16-bit gray TIFFs through Pillow (``I;16``).
* Palette images are converted by their palette to RGB (RGBA when the palette has transparency).
* Alpha: an image whose alpha is fully opaque has it dropped (counted in the dataset's meta);
  any non-opaque pixel is refused unless ``alpha=`` says what to do: ``drop`` (ignore alpha,
  keep the stored colors), ``black`` or ``white`` (composite over that background).
* ``channels=1`` or ``channels=3`` converts explicitly (gray to RGB by copying; RGB to gray by
  ITU-R 601-2 luma, as Pillow's ``convert("L")``), and is recorded; without it a folder whose
  images differ in channels, bit depth or size is refused, naming the first file that differs.
* Other modes (CMYK, YCbCr, LAB, HSV, 32-bit integer or float pixels) and multi-frame files
  are refused: convert them first.

A folder is read recursively (hidden files and folders skipped, sorted by relative path).
When every image lies inside a top-level sub-folder, those sub-folders are the classes
(sorted by name, labels 0..K-1, like torchvision's ``ImageFolder``); images both at the top and
in sub-folders need ``labels=none`` (no labels) or must be moved.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from membench.core.errors import MembenchError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
ALPHA_RULES = ("refuse", "drop", "black", "white")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_depth(head: bytes) -> int | None:
    """Bit depth from a PNG's IHDR chunk (None if not a PNG)."""
    if head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR" or len(head) < 25:
        return None
    return head[24]


def _apply_alpha(color: np.ndarray, alpha: np.ndarray, rule: str, name: str, notes: dict[str, int]) -> np.ndarray:
    top = np.iinfo(color.dtype).max
    if (alpha == top).all():
        notes["opaque_alpha_dropped"] = notes.get("opaque_alpha_dropped", 0) + 1
        return color
    if rule == "refuse":
        share = float((alpha != top).mean())
        raise MembenchError(f"{name}: {share:.1%} of its pixels are not opaque; say what alpha means with "
                            "alpha=drop (ignore it), alpha=black or alpha=white (composite over that background)")
    notes[f"alpha_{rule}"] = notes.get(f"alpha_{rule}", 0) + 1
    if rule == "drop":
        return color
    a = alpha.astype(np.float64) / top
    bg = 0.0 if rule == "black" else float(top)
    out = np.rint(color.astype(np.float64) * a + bg * (1.0 - a))
    return out.astype(color.dtype)


def _to_channels(arr: np.ndarray, channels: int | None, notes: dict[str, int]) -> np.ndarray:
    if channels is None or arr.shape[2] == channels:
        return arr
    notes[f"converted_to_{channels}_channels"] = notes.get(f"converted_to_{channels}_channels", 0) + 1
    if channels == 3:
        return np.repeat(arr, 3, axis=2)
    # ITU-R 601-2 luma, the weights of Pillow's convert("L"), rounded like it
    x = arr.astype(np.float64)
    luma = x[..., 0] * 299 / 1000 + x[..., 1] * 587 / 1000 + x[..., 2] * 114 / 1000
    return np.rint(luma).astype(arr.dtype)[..., None]


def read_image(source: str | Path | BinaryIO | bytes, name: str, alpha: str = "refuse",
               channels: int | None = None, notes: dict[str, int] | None = None) -> np.ndarray:
    """One image file -> (H, W, C) uint8 or uint16, C in (1, 3), under the module's rules."""
    from PIL import Image

    notes = notes if notes is not None else {}
    if alpha not in ALPHA_RULES:
        raise MembenchError(f"{name}: unknown alpha rule {alpha!r}; use one of {', '.join(ALPHA_RULES)}")
    try:
        data = source if isinstance(source, bytes) else (
            Path(source).read_bytes() if isinstance(source, (str, Path)) else source.read())
    except OSError as exc:
        raise MembenchError(f"{name}: cannot read image: {exc.strerror or exc}") from None
    try:
        if _png_depth(data[:33]) == 16:
            arr = _decode_png16(data)
        else:
            with Image.open(io.BytesIO(data)) as im:
                return pil_to_array(im, name, alpha, channels, notes)
    except MembenchError:
        raise
    except Exception as exc:  # whatever a decoder raises on a bad file (truncated, a decompression bomb, ...)
        raise MembenchError(f"{name}: not a readable image ({type(exc).__name__}: {exc})") from None
    return _finish(arr, name, alpha, channels, notes)


def pil_to_array(im: Any, name: str, alpha: str = "refuse", channels: int | None = None,
                 notes: dict[str, int] | None = None) -> np.ndarray:
    """An open Pillow image -> (H, W, C) uint8 or uint16, C in (1, 3), under the module's rules."""
    if alpha not in ALPHA_RULES:
        raise MembenchError(f"{name}: unknown alpha rule {alpha!r}; use one of {', '.join(ALPHA_RULES)}")
    if getattr(im, "n_frames", 1) > 1:
        raise MembenchError(f"{name}: has {im.n_frames} frames; membench reads single images only")
    return _finish(_pillow_array(im, name), name, alpha, channels, notes if notes is not None else {})


def _finish(arr: np.ndarray, name: str, alpha: str, channels: int | None, notes: dict[str, int]) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[2] in (2, 4):
        arr = _apply_alpha(arr[..., :-1], arr[..., -1:], alpha, name, notes)
    return _to_channels(np.ascontiguousarray(arr), channels, notes)


def _pillow_array(im: Any, name: str) -> np.ndarray:
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    elif mode == "1":
        im = im.convert("L")
    elif mode == "RGBX":
        im = im.convert("RGB")
    elif mode in ("L", "RGB") and "transparency" in im.info:  # a transparent color key (PNG tRNS)
        im = im.convert(mode.replace("L", "LA") if mode == "L" else "RGBA")
    elif mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16)
    if im.mode not in ("L", "LA", "RGB", "RGBA"):
        raise MembenchError(f"{name}: image mode {mode} is not supported; convert it to 8- or 16-bit gray or RGB(A)")
    return np.asarray(im)


def _decode_png16(data: bytes) -> np.ndarray:
    """A 16-bit PNG at full depth, (H, W, C) uint16 (torchvision decodes it; Pillow keeps 8 bits of color)."""
    import warnings

    import torch

    with warnings.catch_warnings():  # torchvision >= 0.29 announces torchcodec; its decoder still works
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import ImageReadMode, decode_png

        t = decode_png(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.UNCHANGED)
    if t.element_size() != 2:
        raise MembenchError("this torchvision decodes 16-bit PNGs to 8 bits; upgrade torchvision (>= 0.21)")
    # uint16 tensors support few ops: reinterpret the bits as int16, then view them as uint16
    raw = t.view(torch.int16).numpy().view(np.uint16)
    return np.ascontiguousarray(raw.transpose(1, 2, 0))


# ---------------------------------------------------------------- folders


def _list_images(path: Path) -> list[Path]:
    try:
        return _walk(path)
    except OSError as exc:
        raise MembenchError(f"{exc.filename or path}: cannot list the folder: {exc.strerror or exc}") from None


def _walk(path: Path) -> list[Path]:
    files = []
    for f in path.rglob("*"):
        rel = f.relative_to(path)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file():
            files.append(f)
    return sorted(files, key=lambda f: f.relative_to(path).as_posix())


def folder_labels(path: Path, files: list[Path], rule: str | None) -> tuple[np.ndarray | None, list[str]]:
    """Class labels from top-level sub-folders (``labels=auto|folders|none``)."""
    rule = "none" if rule is None else rule  # `labels=none` parses to None
    if rule not in ("auto", "folders", "none"):
        raise MembenchError(f"{path}: unknown labels rule {rule!r}; use auto, folders or none")
    if rule == "none":
        return None, []
    rels = [f.relative_to(path).parts for f in files]
    top = [f for f, parts in zip(files, rels) if len(parts) == 1]
    nested = len(top) < len(files)
    if not nested:
        if rule == "folders":
            raise MembenchError(f"{path}: labels=folders, but no image lies in a class sub-folder")
        return None, []
    if top:
        raise MembenchError(f"{path}: images lie both at the top ({top[0].name}) and in sub-folders; move them into "
                            "class sub-folders, or pass labels=none to read them all without labels")
    classes = sorted({parts[0] for parts in rels})
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[parts[0]] for parts in rels], dtype=np.int64), classes


def read_folder(path: Path, alpha: str = "refuse", channels: int | None = None,
                labels: str = "auto") -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """A folder -> (stack (N, H, W, C) uint8/uint16, labels or None, meta)."""
    if channels not in (None, 1, 3):
        raise MembenchError(f"{path}: channels must be 1 or 3, got {channels!r}")
    if alpha not in ALPHA_RULES:
        raise MembenchError(f"{path}: unknown alpha rule {alpha!r}; use one of {', '.join(ALPHA_RULES)}")
    files = _list_images(path)
    if not files:
        raise MembenchError(f"{path}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder "
                            "or its sub-folders")
    label_array, classes = folder_labels(path, files, labels)
    notes: dict[str, int] = {}
    arrays: list[np.ndarray] = []
    for f in files:
        arr = read_image(f, str(f), alpha=alpha, channels=channels, notes=notes)
        if arrays and (arr.shape, arr.dtype) != (arrays[0].shape, arrays[0].dtype):
            first = arrays[0]
            raise MembenchError(
                f"{f}: {_describe(arr)} differs from {files[0].relative_to(path).as_posix()} ({_describe(first)}); "
                "a folder's images must share size, channels and bit depth"
                + ("" if channels else " (channels=1 or channels=3 converts explicitly)"))
        arrays.append(arr)
    meta: dict[str, Any] = {"files": [f.relative_to(path).as_posix() for f in files]}
    if classes:
        meta["classes"] = classes
    if notes:
        meta["image_notes"] = dict(sorted(notes.items()))
    return np.stack(arrays), label_array, meta


def _describe(arr: np.ndarray) -> str:
    bits = 8 * arr.dtype.itemsize
    return f"{arr.shape[1]}x{arr.shape[0]}, {arr.shape[2]} channel(s), {bits}-bit"
