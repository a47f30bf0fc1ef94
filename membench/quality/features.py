"""Images -> features through torch-fidelity's own extraction loop, cached by content.

The extractor is any entry of the one feature registry (``membench.features``), wrapped
for torch-fidelity by ``membench.features.fidelity``. Images are quantized to uint8 first
(torch-fidelity's input convention, and what a saved PNG would hold), so a sample set and
the same images read back from files get the same features. Features are cached under
``<cache>/quality/features/<key>.npz``, the key being the hash of the uint8 pixels and the
extractor's identity (configuration, weights hash, layer): reference sets (held-out,
training) are extracted once per extractor.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from membench.core.io import atomic_save_npz
from membench.core.errors import MembenchError
from membench.features.fidelity import ExtractorSpec, ensure_registered

FEATURE_FORMAT = 1
_EXTRACTOR_CACHE: dict[tuple[str, str], Any] = {}


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] float images -> uint8 levels 0..255 (rounded, clipped)."""
    return np.clip(np.round((np.asarray(images, dtype=np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def check_images(images: np.ndarray, ext: ExtractorSpec, what: str) -> None:
    from membench.data.validate import check_images as check_finite

    if not isinstance(images, np.ndarray) or images.ndim != 4:
        raise MembenchError(f"{what}: expected images of shape (N, C, H, W), got {getattr(images, 'shape', type(images))}")
    check_finite(images, what, value_range=False)
    ext.check_images(tuple(images.shape[1:]), what)


def features_key(u8: np.ndarray, ext: ExtractorSpec) -> str:
    h = hashlib.sha256(json.dumps([FEATURE_FORMAT, ext.identity(), list(u8.shape)], sort_keys=True).encode())
    h.update(np.ascontiguousarray(u8).tobytes())
    return h.hexdigest()[:24]


def torch_fidelity_dataset(images: np.ndarray) -> Any:
    """``images`` ([-1, 1] floats) as the uint8 torch Dataset that torch-fidelity's loop (and
    ``torch_fidelity.calculate_metrics``) accepts."""
    import torch
    from torch.utils.data import Dataset

    class Uint8Images(Dataset):
        def __init__(self, u8: np.ndarray) -> None:
            self.u8 = u8

        def __len__(self) -> int:
            return len(self.u8)

        def __getitem__(self, i: int) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(self.u8[i]))

    return Uint8Images(to_uint8(images))


def _extractor(ext: ExtractorSpec, device: str) -> Any:
    from torch_fidelity.utils import create_feature_extractor

    key = (json.dumps(ext.identity(), sort_keys=True), device)
    if key not in _EXTRACTOR_CACHE:
        tf_name = ensure_registered(ext.name)
        fe = create_feature_extractor(tf_name, [ext.layer], cuda=device.startswith("cuda"), extractor=ext.extractor,
                                      verbose=False)
        _EXTRACTOR_CACHE[key] = fe
    return _EXTRACTOR_CACHE[key]


def extract(images: np.ndarray, ext: ExtractorSpec, device: str = "cpu", batch_size: int = 256,
            what: str = "images") -> np.ndarray:
    """Features (N, dim) float32 of [-1, 1] images, computed by torch-fidelity's extraction loop."""
    from torch_fidelity.utils import get_featuresdict_from_dataset

    check_images(images, ext, what)
    ds = torch_fidelity_dataset(images)
    # save_cpu_ram: no DataLoader worker processes (the CPU is shared)
    fd = get_featuresdict_from_dataset(ds, _extractor(ext, device), batch_size, device.startswith("cuda"),
                                       save_cpu_ram=True, verbose=False)
    feats = fd[ext.layer].numpy().astype(np.float32)
    if not np.isfinite(feats).all():
        raise MembenchError(f"{what}: the {ext.name} extractor produced NaN or infinite features")
    return feats


def cached_features(images: np.ndarray, ext: ExtractorSpec, device: str = "cpu", cache_dir: Path | None = None,
                    what: str = "images") -> np.ndarray:
    from membench.core.workspace import default_cache_dir

    check_images(images, ext, what)
    key = features_key(to_uint8(images), ext)
    path = Path(cache_dir or default_cache_dir()) / "quality" / "features" / f"{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                feats = z["features"]
            if feats.ndim == 2 and len(feats) == len(images):  # the key fixes the extractor, hence D
                return feats
        except Exception:
            pass  # a corrupt cache entry is recomputed and replaced
    feats = extract(images, ext, device, what=what)
    atomic_save_npz(path, features=feats)
    return feats
