"""k-nearest-neighbour search over a reference set that may be larger than memory.

Exact search (the default) streams the reference set (training images or their embeddings,
in memory or memory-mapped) in chunks of rows. Each chunk goes through ``faiss.knn``, which
ranks it by ``||q||^2 + ||r||^2 - 2 q.r`` from BLAS products with a fused top-k, reading the
rows in place (no index, no copy); a running top-(k + margin) per query is kept across
chunks. Measured against a numpy product of the same shape and a hand-written numpy
product + selection (tiled GEMM, min/argmin passes), faiss's fused kernel was the faster at
dims 64 to 3,072 on the project machine, so it is the one engine (benchmarks/README.md).

float32 loses precision for near-copies (``||r||^2`` and ``2 q.r`` nearly cancel), so the
returned distances are recomputed exactly in float64 for the candidates only, one chunk of
queries at a time, and the candidates re-ranked by (exact distance, index): ties go to the
lower index. Memory is bounded by the chunk sizes, which follow a budget
(``MEMBENCH_KNN_MEMORY``, MiB, default 256), never by the data; the pages of a
memory-mapped reference set are released after each chunk (``membench.core.mapped``).

Approximate faiss indexes (``index="ivf"`` or ``"hnsw"``) live in ``membench.detectors.knn_index``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from membench.core.errors import MembenchError
from membench.core.mapped import release, take_rows

DEFAULT_MEMORY_MIB = 256
MAX_CHUNK = 65536
MARGIN = 2  # extra float32 candidates per query, absorbing float32 ranking errors before the exact re-rank
INDEXES = ("exact", "ivf", "hnsw")


def memory_budget() -> int:
    """Bytes the search may hold beyond its inputs and outputs (``MEMBENCH_KNN_MEMORY`` in MiB)."""
    raw = os.environ.get("MEMBENCH_KNN_MEMORY", "")
    if not raw:
        return DEFAULT_MEMORY_MIB << 20
    try:
        mib = float(raw)
    except ValueError:
        mib = -1.0
    if not mib >= 16:
        raise MembenchError(f"MEMBENCH_KNN_MEMORY must be a number of MiB >= 16, got {raw!r}")
    return int(mib * (1 << 20))


def check_index(index: Any, who: str = "knn") -> str:
    """The index name, or one line naming the bad one and the choices."""
    if not isinstance(index, str) or index not in INDEXES:
        raise MembenchError(f"{who}: unknown nearest-neighbour index {index!r} (choose from {', '.join(INDEXES)})")
    return index


@dataclass(frozen=True)
class Tiles:
    """How the work is cut: reference rows per chunk, queries per exact re-rank."""

    chunk: int
    rerank: int


def plan_tiles(n_query: int, n_ref: int, dim: int, kk: int, budget: int | None = None,
               chunk: int | None = None) -> Tiles:
    """Chunk sizes for this shape within ``budget`` bytes.

    A reference chunk (its float32 rows, or its resident pages when memory-mapped) takes at
    most half the budget and at most ``MAX_CHUNK`` rows (more rows no longer speed the
    product up: benchmarks/test_knn_bench.py); the exact re-rank's float64 differences
    (queries x candidates x dim, twice) a quarter.
    """
    budget = memory_budget() if budget is None else budget
    if chunk is None:
        chunk = max(1, min(MAX_CHUNK, (budget // 2) // (4 * dim)))
    chunk = max(1, min(int(chunk), n_ref))
    rerank = max(1, min(n_query, (budget // 4) // max(1, 2 * 8 * kk * dim)))
    return Tiles(chunk=chunk, rerank=rerank)


def _flat(a: np.ndarray) -> np.ndarray:
    """Rows as float32 vectors; a view (no copy) for C-contiguous float32 input, memmaps included."""
    a = np.asarray(a) if not isinstance(a, np.ndarray) else a
    return np.ascontiguousarray(a.reshape(len(a), -1), dtype=np.float32)


def _normalized(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def keep_best(d: np.ndarray, i: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``kk`` entries of smallest (score, index): the lower index wins a tie."""
    order = np.lexsort((i, d), axis=1)[:, :kk]
    return np.take_along_axis(d, order, 1), np.take_along_axis(i, order, 1)


def candidates(q: np.ndarray, reference: np.ndarray, kk: int, tiles: Tiles, *, cosine: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the ``kk`` reference rows of smallest float32 squared distance (or largest cosine).

    Each chunk goes through ``faiss.knn`` (BLAS products with a fused top-k, reading the rows
    in place: no index, no copy), as fast as a numpy product of the same shape; a running
    top-``kk`` is kept across chunks. Returns (scores, indices), (n_query, kk) each, the
    scores ascending (negated similarities for cosine)."""
    faiss = _faiss()
    metric = faiss.METRIC_INNER_PRODUCT if cosine else faiss.METRIC_L2
    qq = _normalized(q) if cosine else q
    best_d = np.full((len(q), 0), np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), 0), dtype=np.int64)
    for start in range(0, len(reference), tiles.chunk):
        stop = min(start + tiles.chunk, len(reference))
        block = _flat(reference[start:stop])
        if cosine:
            block = _normalized(block)
        d, i = faiss.knn(qq, block, min(kk, stop - start), metric=metric)
        release(reference, start, stop)
        best_d, best_i = keep_best(np.concatenate([best_d, -d if cosine else d], axis=1),
                                   np.concatenate([best_i, i + start], axis=1), kk)
    return best_d, best_i


def _faiss():
    import faiss  # imported lazily: only a search needs it

    return faiss


def _exact_rerank(q: np.ndarray, reference: np.ndarray, cand: np.ndarray, k: int, rerank: int,
                  cosine: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact float64 distances (or cosine similarities) of the candidates, re-ranked, ``k`` kept."""
    n_q = len(q)
    out_d = np.empty((n_q, k), dtype=np.float64)
    out_i = np.empty((n_q, k), dtype=np.int64)
    for qs in range(0, n_q, rerank):
        idx = cand[qs : qs + rerank]
        uniq, inverse = np.unique(idx, return_inverse=True)
        rows = take_rows(reference, uniq).astype(np.float64).reshape(len(uniq), -1)
        qq = q[qs : qs + rerank].astype(np.float64)
        if cosine:
            rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
            qq /= np.maximum(np.linalg.norm(qq, axis=1, keepdims=True), 1e-12)
            key = -np.einsum("qkd,qd->qk", rows[inverse.reshape(idx.shape)], qq)
        else:
            diff = rows[inverse.reshape(idx.shape)] - qq[:, None, :]
            key = np.sqrt(np.einsum("qkd,qkd->qk", diff, diff))
        order = np.lexsort((idx, key), axis=1)[:, :k]
        out_d[qs : qs + rerank] = np.take_along_axis(key, order, 1)
        out_i[qs : qs + rerank] = np.take_along_axis(idx, order, 1)
    return (-out_d if cosine else out_d), out_i


def knn_l2(queries: np.ndarray, reference: np.ndarray, k: int = 2, chunk: int | None = None,
           margin: int = MARGIN, index: str = "exact", info: dict[str, Any] | None = None,
           budget: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances (float64, ascending) and indices of the ``k`` nearest reference rows.

    ``index``: ``exact`` (default), or an approximate faiss index (``ivf``, ``hnsw``) whose
    settings and recall@1 against exact search go into ``info`` when given."""
    return _search(queries, reference, k, chunk, margin, index, info, budget, cosine=False)


def knn_cosine(queries: np.ndarray, reference: np.ndarray, k: int = 1, chunk: int | None = None,
               margin: int = MARGIN, index: str = "exact", info: dict[str, Any] | None = None,
               budget: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Largest cosine similarities (float64, descending) and indices of the ``k`` most similar rows."""
    return _search(queries, reference, k, chunk, margin, index, info, budget, cosine=True)


def _search(queries, reference, k, chunk, margin, index, info, budget, cosine):
    check_index(index)
    q = _flat(queries)
    n_ref = len(reference)
    if n_ref < k:
        raise ValueError(f"need at least {k} reference items, got {n_ref}")
    dim = q.shape[1]
    kk = min(k + margin, n_ref)
    tiles = plan_tiles(len(q), n_ref, dim, kk, budget, chunk)
    if index == "exact":
        _, cand = candidates(q, reference, kk, tiles, cosine=cosine)
    else:
        from membench.detectors.knn_index import approximate_candidates

        cand = approximate_candidates(q, reference, kk, index, tiles, cosine=cosine, info=info)
    dist, idx = _exact_rerank(q, reference, cand, k, tiles.rerank, cosine=cosine)
    if index != "exact" and info is not None:
        from membench.detectors.knn_index import recall_at_1

        info["knn_recall_at_1"] = recall_at_1(q, reference, idx[:, 0], dist[:, 0], tiles, cosine=cosine)
    return dist, idx


@dataclass
class SearchOption:
    """The ``index=`` option of the detectors that search the training set: ``exact`` (default),
    ``ivf`` or ``hnsw`` (approximate; recall@1 against exact search lands in the record's info)."""

    index: str = "exact"

    def __post_init__(self) -> None:
        check_index(self.index, getattr(self, "registry_name", "knn"))

    def config(self) -> dict[str, Any]:
        cfg = super().config()  # type: ignore[misc]
        if cfg.get("index") == "exact":
            del cfg["index"]  # the default leaves result keys as they were before the option existed
        return cfg
