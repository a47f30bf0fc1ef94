"""What a registered model needs before anything is written for it: a readable checkpoint
(metadata, UNet config, safetensors header) whose image shape is its dataset's, and a sample
count whose images fit in memory. ``api.run`` calls :func:`check_model` for every model before
the first lock, cache or result file; loading the weights later cannot surprise it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from membench.core.errors import InvalidInputError


def check_checkpoint(path: str | Path, parameterization: str | None = None) -> dict[str, Any]:
    """The checkpoint's metadata, after checking its files can be read (header only for weights).

    An imported diffusers folder (no ``membench.json``) is inspected from its own configs
    (``models.formats``), with the entry's declared ``parameterization`` where they are silent."""
    from membench.models.checkpoints import META_FILE, WEIGHTS, read_meta
    from membench.models.formats import WEIGHTS_NAME, inspect_checkpoint

    if str(path).startswith("hf:"):
        return {}  # fetched on first use; checked then
    if Path(path).is_dir() and not (Path(path) / META_FILE).is_file():
        found = inspect_checkpoint(path, parameterization)
        _check_weights_header(Path(path) / found.unet_subfolder / WEIGHTS_NAME)
        return {"image_shape": list(found.image_shape)}
    meta = read_meta(path)
    p = Path(path)
    cfg_file = p / "unet" / "config.json"
    try:
        cfg = json.loads(cfg_file.read_text())
    except FileNotFoundError:
        raise InvalidInputError(f"{p}: checkpoint is incomplete (missing unet/config.json)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{cfg_file}: corrupt UNet config ({type(exc).__name__})") from None
    if not isinstance(cfg, dict):
        raise InvalidInputError(f"{cfg_file}: corrupt UNet config (not a JSON object)")
    _check_weights_header(p / WEIGHTS)
    c, h, w = meta["image_shape"]
    channels, size = cfg.get("in_channels"), cfg.get("sample_size")
    if isinstance(channels, int) and channels != c:
        raise InvalidInputError(f"{p / META_FILE}: image_shape {meta['image_shape']} has {c} channel(s) but the "
                                f"UNet takes {channels}")
    if isinstance(size, int) and (h, w) != (size, size):
        raise InvalidInputError(f"{p / META_FILE}: image_shape {meta['image_shape']} is not the UNet's "
                                f"{size}x{size}")
    return meta


def _check_weights_header(path: Path) -> None:
    """A safetensors file: 8-byte little-endian header length, then a JSON header of tensors."""
    if not path.is_file():
        raise InvalidInputError(f"{path.parent.parent}: checkpoint is incomplete (missing {path.parent.name}/{path.name})")
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            header = json.loads(fh.read(n)) if 0 < n <= min(size - 8, 100 << 20) else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict):
        raise InvalidInputError(f"{path}: not a safetensors file (corrupt or truncated weights)")
    try:
        end = 8 + n + max((int(v["data_offsets"][1]) for k, v in header.items()
                           if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v), default=0)
    except (TypeError, ValueError, IndexError):
        raise InvalidInputError(f"{path}: not a safetensors file (bad tensor offsets)") from None
    if end > size:
        raise InvalidInputError(f"{path}: truncated weights ({size} bytes, the header describes {end})")


def check_model(spec: Any, train_shape: tuple[int, ...], n: int) -> None:
    """``spec``'s checkpoint is readable, makes ``train_shape`` images, and ``n`` of them fit in memory."""
    from membench.core.options import check_count

    meta = check_checkpoint(spec.checkpoint, getattr(spec, "parameterization", None))
    shape = tuple(meta.get("image_shape", train_shape))
    if shape != tuple(train_shape):
        raise InvalidInputError(f"model {spec.name!r}: its checkpoint makes {list(shape)} images but its dataset "
                                f"{spec.dataset} has {list(train_shape)}")
    c, h, w = shape
    check_count(n, "--n-samples", item_bytes=4 * c * h * w)  # float32 images, held in memory at once
