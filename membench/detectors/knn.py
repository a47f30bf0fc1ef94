"""Exact k-nearest-neighbour search through faiss, streaming over the reference set.

The reference set (training images or their embeddings) is read in chunks, so it may be
a memory-mapped array larger than memory. faiss computes squared distances as
||x||^2 + ||y||^2 - 2<x, y> in float32, which loses precision for near-copies; the
returned distances are therefore recomputed exactly (float64) for the candidates and the
candidates re-ranked.
"""
from __future__ import annotations

import numpy as np

DEFAULT_CHUNK = 65536


def _faiss():
    import faiss  # imported lazily: it is only needed when a search runs

    return faiss


def _flat(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32).reshape(len(a), -1))


def knn_l2(queries: np.ndarray, reference: np.ndarray, k: int = 2, chunk: int = DEFAULT_CHUNK,
           margin: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances (float64, ascending) and indices of the ``k`` nearest reference rows."""
    q = _flat(queries)
    n_ref = len(reference)
    if n_ref < k:
        raise ValueError(f"need at least {k} reference items, got {n_ref}")
    kk = min(k + margin, n_ref)  # extra candidates absorb float32 ranking ties
    best_d = np.full((len(q), 0), np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), 0), dtype=np.int64)
    faiss = _faiss()
    for start in range(0, n_ref, chunk):
        block = _flat(reference[start : start + chunk])
        index = faiss.IndexFlatL2(block.shape[1])
        index.add(block)
        d, i = index.search(q, min(kk, len(block)))
        best_d = np.concatenate([best_d, d], axis=1)
        best_i = np.concatenate([best_i, i + start], axis=1)
        order = np.argsort(best_d, axis=1, kind="stable")[:, :kk]
        best_d = np.take_along_axis(best_d, order, 1)
        best_i = np.take_along_axis(best_i, order, 1)
    exact = _exact_distances(q, reference, best_i)
    order = np.argsort(exact, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(exact, order, 1), np.take_along_axis(best_i, order, 1)


def _exact_distances(q: np.ndarray, reference: np.ndarray, idx: np.ndarray) -> np.ndarray:
    uniq, inverse = np.unique(idx, return_inverse=True)
    ref = np.asarray(reference[uniq], dtype=np.float64).reshape(len(uniq), -1)
    cand = ref[inverse.reshape(idx.shape)]  # (n, kk, d)
    return np.sqrt(((q[:, None, :].astype(np.float64) - cand) ** 2).sum(-1))


def knn_cosine(queries: np.ndarray, reference: np.ndarray, k: int = 1,
               chunk: int = DEFAULT_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Largest cosine similarities (descending) and indices, by inner product on L2-normalized rows."""
    q = _flat(queries)
    q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    best_s = np.full((len(q), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), 0), dtype=np.int64)
    faiss = _faiss()
    for start in range(0, len(reference), chunk):
        block = _flat(reference[start : start + chunk])
        block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
        index = faiss.IndexFlatIP(block.shape[1])
        index.add(block)
        s, i = index.search(q, min(k, len(block)))
        best_s = np.concatenate([best_s, s], axis=1)
        best_i = np.concatenate([best_i, i + start], axis=1)
        order = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(best_s, order, 1)
        best_i = np.take_along_axis(best_i, order, 1)
    return best_s, best_i
