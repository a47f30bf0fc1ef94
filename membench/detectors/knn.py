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

import contextlib
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
FAISS_BLOCK = 4096  # reference rows per faiss distance block (faiss's own default: 1,024)
BLAS_DIM = 2048  # from this dim on, numpy's product + torch's top-k (``_blas_block``) instead of faiss.knn
FAISS_QUERY_BLOCK = 4096  # faiss's queries per distance block (distance_compute_blas_query_bs)
RERANK_BYTES = 4 << 20  # float64 differences per re-rank step: kept near the cache, the passes are memory-bound


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
    """How the work is cut: reference rows per chunk, queries per exact re-rank, and the
    reference rows of one faiss distance block (``block``: faiss multiplies queries by this
    many rows at a time, then selects the top-k from the block)."""

    chunk: int
    rerank: int
    block: int = FAISS_BLOCK


def plan_tiles(n_query: int, n_ref: int, dim: int, kk: int, budget: int | None = None,
               chunk: int | None = None) -> Tiles:
    """Chunk sizes for this shape within ``budget`` bytes.

    A reference chunk (its float32 rows, or its resident pages when memory-mapped) takes at
    most half the budget and at most ``MAX_CHUNK`` rows (more rows no longer speed the
    product up: benchmarks/test_knn_bench.py); faiss's float32 distance block (queries x
    ``FAISS_BLOCK`` rows: measured on the project machine, 1,024 rows left the product at
    dims 768 to 12,288 short of the GEMM rate and blocks of 8,192 rows or more fell out of
    cache at dims 64 and 768) at most a quarter; the exact re-rank (queries x candidates x
    dim float32 rows) a quarter.
    """
    budget = memory_budget() if budget is None else budget
    if chunk is None:
        chunk = max(1, min(MAX_CHUNK, (budget // 2) // (4 * dim)))
    chunk = max(1, min(int(chunk), n_ref))
    rerank = max(1, min(n_query, (budget // 4) // max(1, 4 * kk * dim)))
    block_rows = (budget // 4) // (4 * max(1, min(n_query, FAISS_QUERY_BLOCK)))
    block = max(1, min(chunk, FAISS_BLOCK, block_rows))
    return Tiles(chunk=chunk, rerank=rerank, block=block)


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
    blas = q.shape[1] >= BLAS_DIM
    with _faiss_block(faiss, tiles.block):
        for start in range(0, len(reference), tiles.chunk):
            stop = min(start + tiles.chunk, len(reference))
            block = _flat(reference[start:stop])
            if cosine:
                block = _normalized(block)
            if blas:
                d, i = _blas_block(qq, block, min(kk, stop - start), cosine, tiles.block)
            else:
                d, i = faiss.knn(qq, block, min(kk, stop - start), metric=metric)
            release(reference, start, stop)
            best_d, best_i = keep_best(np.concatenate([best_d, -d if cosine else d], axis=1),
                                       np.concatenate([best_i, i + start], axis=1), kk)
    return best_d, best_i


def _blas_block(q: np.ndarray, block: np.ndarray, kk: int, cosine: bool, rows: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the ``kk`` best rows of ``block`` from numpy's product and torch's top-k.

    Returns the same ranking as ``faiss.knn`` (squared distance less the query's own norm,
    which does not change a query's order; or the similarity), ``rows`` reference rows at a
    time. Used at large dims, where numpy's BLAS product ran faster than faiss's on the
    project machine and the selection is a small part of the work."""
    import torch

    out_d = np.empty((len(q), 0), dtype=np.float32)
    out_i = np.empty((len(q), 0), dtype=np.int64)
    for s0 in range(0, len(block), rows):
        b = block[s0 : s0 + rows]
        score = q @ b.T
        if cosine:
            np.negative(score, out=score)
        else:
            score *= -2.0
            score += np.einsum("ij,ij->i", b, b)[None, :]
        d, i = torch.topk(torch.from_numpy(score), min(kk, len(b)), dim=1, largest=False)
        out_d = np.concatenate([out_d, d.numpy()], axis=1)
        out_i = np.concatenate([out_i, i.numpy() + s0], axis=1)
    if out_d.shape[1] > kk:
        out_d, out_i = keep_best(out_d, out_i, kk)
    return (-out_d if cosine else out_d), out_i


@contextlib.contextmanager
def _faiss_block(faiss: Any, rows: int):
    """faiss's reference rows per distance block set to ``rows`` for one search (a process-wide
    faiss setting, so it is restored after; the answer does not depend on it, only the speed)."""
    cvar = faiss.cvar
    before = cvar.distance_compute_blas_database_bs
    cvar.distance_compute_blas_database_bs = int(rows)
    try:
        yield
    finally:
        cvar.distance_compute_blas_database_bs = before


def _faiss():
    import faiss  # imported lazily: only a search needs it

    return faiss


def _exact_rerank(q: np.ndarray, reference: np.ndarray, cand: np.ndarray, k: int, rerank: int,
                  cosine: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact float64 distances (or cosine similarities) of the candidates, re-ranked, ``k`` kept."""
    n_q = len(q)
    out_d = np.empty((n_q, k), dtype=np.float64)
    out_i = np.empty((n_q, k), dtype=np.int64)
    step = max(1, RERANK_BYTES // (8 * q.shape[1]))  # queries per float64 pass
    in_memory = (isinstance(reference, np.ndarray) and not isinstance(reference, np.memmap)
                 and reference.flags.c_contiguous)
    for qs in range(0, n_q, rerank):
        idx = cand[qs : qs + rerank]
        if in_memory:  # rows read in place: no gathered copy
            rows, inverse = reference.reshape(len(reference), -1), idx
        else:  # memory-mapped (or strided): the candidates' rows gathered once, pages released
            uniq, inverse = np.unique(idx, return_inverse=True)
            inverse = inverse.reshape(idx.shape)
            rows = take_rows(reference, uniq).reshape(len(uniq), -1)
        key = np.empty(idx.shape, dtype=np.float64)
        for s0 in range(0, len(idx), step):  # small float64 pieces: the passes stay in cache
            qq = q[qs + s0 : qs + min(s0 + step, len(idx))].astype(np.float64)
            if cosine:
                qq /= np.maximum(np.linalg.norm(qq, axis=1, keepdims=True), 1e-12)
            for j in range(idx.shape[1]):
                r = rows[inverse[s0 : s0 + step, j]].astype(np.float64)
                if cosine:
                    r /= np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)
                    key[s0 : s0 + step, j] = -np.einsum("qd,qd->q", r, qq)
                else:
                    r -= qq
                    key[s0 : s0 + step, j] = np.sqrt(np.einsum("qd,qd->q", r, r))
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
