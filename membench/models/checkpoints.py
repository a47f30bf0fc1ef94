"""Checkpoints: a diffusers ``save_pretrained`` UNet plus ``membench.json`` (EDM config, provenance).

Layout of a checkpoint folder::

    membench.json                                  # format, EDM config, role, data, training
    unet/config.json                               # diffusers UNet2DModel config
    unet/diffusion_pytorch_model.safetensors       # weights (safetensors only; never pickle)
    README.md                                      # model card

``path`` may also be ``hf:<org>/<repo>`` to load the same layout from the Hugging Face Hub.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from membench.core.io import atomic_directory, atomic_write_json, file_stamp, hash_file_into, read_tagged_json
from membench.models.edm import EDMConfig, EDMDenoiser
from membench.core.errors import MembenchError

FORMAT = "membench-edm/1"
META_FILE = "membench.json"
WEIGHTS = "unet/diffusion_pytorch_model.safetensors"


def _resolve(path: str | Path) -> Path:
    text = str(path)
    if text.startswith("hf:"):
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(text[3:], allow_patterns=[META_FILE, "unet/*", "README.md"]))
        except Exception as exc:
            raise MembenchError(f"cannot fetch {text} from the Hugging Face Hub: {type(exc).__name__}: {exc}") from None
    p = Path(path)
    if not p.is_dir():
        raise MembenchError(f"checkpoint folder not found: {p}")
    return p


def read_meta(path: str | Path) -> dict[str, Any]:
    p = _resolve(path)
    meta_file = p / META_FILE
    if not meta_file.is_file():
        raise MembenchError(f"{p}: not a membench checkpoint (no {META_FILE})")
    meta = read_tagged_json(meta_file, FORMAT, "checkpoint metadata")
    shape = meta.get("image_shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                and v > 0 for v in shape)):
        raise MembenchError(f"{meta_file}: 'image_shape' must be [channels, height, width] (positive integers), "
                            f"got {shape!r}")
    return meta


_CHECKPOINT_HASHES: dict[tuple, str] = {}


def checkpoint_hash(path: str | Path) -> str:
    """SHA-256 over the weights and both configs: the identity of a checkpoint's content.

    Memoized on the files' stamps (size, mtime): a checkpoint replaced in place (retrained)
    in a long-lived process gets its new hash, an unchanged one is read once."""
    p = _resolve(path)
    files = [(rel, p / rel) for rel in (META_FILE, "unet/config.json", WEIGHTS)]
    for rel, f in files:
        if not f.is_file():
            raise MembenchError(f"{p}: checkpoint is incomplete (missing {rel})")
    key = tuple(file_stamp(f) for _, f in files)
    if key not in _CHECKPOINT_HASHES:
        h = hashlib.sha256()
        for rel, f in files:
            h.update(rel.encode())
            hash_file_into(h, f)
        _CHECKPOINT_HASHES[key] = h.hexdigest()
    return _CHECKPOINT_HASHES[key]


def load_denoiser(path: str | Path, device: str | torch.device = "cpu") -> tuple[EDMDenoiser, dict[str, Any]]:
    """Load a checkpoint safely (safetensors only) and return the denoiser in eval mode."""
    from diffusers import UNet2DModel

    p = _resolve(path)
    meta = read_meta(p)
    if not (p / WEIGHTS).is_file():
        raise MembenchError(f"{p}: checkpoint is incomplete (missing {WEIGHTS})")
    try:
        unet = UNet2DModel.from_pretrained(p, subfolder="unet", use_safetensors=True, local_files_only=True,
                                           low_cpu_mem_usage=False)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise MembenchError(f"{p}: cannot load checkpoint weights: {type(exc).__name__}: {first}") from None
    try:
        cfg = EDMConfig(**meta.get("edm", {}))
    except TypeError as exc:
        raise MembenchError(f"{p / META_FILE}: bad edm config: {exc}") from None
    model = EDMDenoiser(unet, cfg).to(device).eval()
    for param in model.parameters():
        if not torch.isfinite(param).all():
            raise MembenchError(f"{p}: checkpoint weights contain NaN or infinite values")
    return model, meta


def save_denoiser(model: EDMDenoiser, out: str | Path, meta: dict[str, Any], card: str | None = None,
                  force: bool = False, variants: dict[str, EDMDenoiser] | None = None) -> Path:
    """Write a checkpoint folder atomically (temp folder, then one rename).

    ``variants`` (other weights of the same model, e.g. a distiller's raw and bias-corrected
    EMA weights) go into ``variants/<name>/``, each a checkpoint folder of its own (loadable
    by path), inside the same atomic write."""
    out = Path(out)
    with atomic_directory(out, force=force) as tmp:
        model.unet.save_pretrained(tmp / "unet", safe_serialization=True)
        full = {**meta, "format": FORMAT, "edm": model.config.to_dict()}
        atomic_write_json(tmp / META_FILE, full)
        if card is not None:
            (tmp / "README.md").write_text(card)
        for name, var in (variants or {}).items():
            var.unet.save_pretrained(tmp / "variants" / name / "unet", safe_serialization=True)
            atomic_write_json(tmp / "variants" / name / META_FILE,
                              {**full, "variant": name, "edm": var.config.to_dict()})
    return out
