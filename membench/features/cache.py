"""Training-set embeddings, computed once per (dataset content, embedder identity) and cached.

``<cache>/embeddings/<dataset fingerprint>-<embedder cache key>.npy``, written atomically;
an unreadable or mis-shaped entry is recomputed. The key covers the embedder's
configuration and the content hash of its weights, so new weights never reuse old vectors.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from membench.core.io import atomic_write_bytes
from membench.data import Dataset
from membench.features.base import FeatureExtractor

CHUNK = 8192  # images embedded per step, so memory-mapped training sets stay out of memory


def cache_path(cache_dir: Path | None, dataset: Dataset, embedder: FeatureExtractor) -> Path:
    from membench.core.workspace import default_cache_dir

    root = Path(cache_dir) if cache_dir else default_cache_dir()
    return root / "embeddings" / f"{dataset.fingerprint()}-{embedder.registry_name}-{embedder.cache_key()}.npy"


def training_embeddings(embedder: FeatureExtractor, dataset: Dataset, cache_dir: Path | None = None,
                        device: str = "cpu") -> tuple[np.ndarray, bool]:
    """(N, D) float32 embeddings of ``dataset.images`` and whether they came from the cache."""
    path = cache_path(cache_dir, dataset, embedder)
    if path.is_file():
        try:
            vecs = np.load(path, allow_pickle=False)
            if vecs.ndim == 2 and len(vecs) == len(dataset) and vecs.dtype == np.float32 and np.isfinite(vecs).all():
                return vecs, True
        except (OSError, ValueError):
            pass
        path.unlink(missing_ok=True)  # corrupt or stale: recompute
    parts = [embedder.embed(dataset.images[s : s + CHUNK], device) for s in range(0, len(dataset), CHUNK)]
    vecs = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    buf = io.BytesIO()
    np.save(buf, vecs, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())
    return vecs, False
