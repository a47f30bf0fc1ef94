"""Training-set features (embeddings), computed once per (dataset content, extractor identity) and cached.

``<cache>/embeddings/<dataset fingerprint>-<extractor name>-<extractor cache key>.npy``: the
fingerprint hashes the training images, the cache key the extractor's configuration and the
content hash of its weights, so new data or new weights never reuse old vectors, and a
second detector, or a second run, reads them instead of recomputing. The file is written in
chunks into a memory-mapped temporary ``.npy`` that is renamed into place when complete
(``membench.core.io.atomic_npy``), and read back memory-mapped when larger than ``IN_MEMORY``: neither step
holds a large matrix in memory. An unreadable or mis-shaped entry is recomputed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from membench.core.io import atomic_npy
from membench.core.mapped import release
from membench.data import Dataset
from membench.features.base import FeatureExtractor

CHUNK = 8192  # images embedded per step, so memory-mapped training sets stay out of memory
IN_MEMORY = 256 << 20  # entries up to this size are read into memory; larger ones stay memory-mapped


def cache_path(cache_dir: Path | None, dataset: Dataset, embedder: FeatureExtractor) -> Path:
    from membench.core.workspace import default_cache_dir

    root = Path(cache_dir) if cache_dir else default_cache_dir()
    return root / "embeddings" / f"{dataset.fingerprint()}-{embedder.registry_name}-{embedder.cache_key()}.npy"


def _read(path: Path, n: int) -> np.ndarray | None:
    try:
        vecs = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if vecs.ndim != 2 or len(vecs) != n or vecs.dtype != np.float32:
        return None
    if vecs.nbytes <= IN_MEMORY:  # small: a private copy, immune to the file being replaced in place
        vecs = np.array(vecs)
    for s in range(0, n, CHUNK):  # streamed: a NaN left by a broken extractor is recomputed, not searched
        ok = np.isfinite(vecs[s : s + CHUNK]).all()
        release(vecs, s, s + CHUNK)
        if not ok:
            return None
    return vecs


def training_embeddings(embedder: FeatureExtractor, dataset: Dataset, cache_dir: Path | None = None,
                        device: str = "cpu") -> tuple[np.ndarray, bool]:
    """(N, D) float32 embeddings of ``dataset.images`` (memory-mapped when large) and whether they came from the cache."""
    path = cache_path(cache_dir, dataset, embedder)
    if path.is_file():
        vecs = _read(path, len(dataset))
        if vecs is not None:
            return vecs, True
        path.unlink(missing_ok=True)  # corrupt or stale: recompute
    first = np.ascontiguousarray(embedder.embed(dataset.images[:CHUNK], device), dtype=np.float32)
    with atomic_npy(path, (len(dataset), first.shape[1]), np.float32) as out:
        out[: len(first)] = first
        for s in range(len(first), len(dataset), CHUNK):
            out[s : s + CHUNK] = embedder.embed(dataset.images[s : s + CHUNK], device)
            release(dataset.images, s, s + CHUNK)
    vecs = _read(path, len(dataset))
    if vecs is None:
        from membench.core.errors import MembenchError

        raise MembenchError(f"{embedder.registry_name}: embeddings of {dataset.spec} are not finite float32 vectors")
    return vecs, False
