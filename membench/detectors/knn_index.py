"""Approximate nearest-neighbour indexes (faiss IVF-Flat and HNSW) for training sets beyond ~1M rows.

Exact search costs 2 x queries x references x dim operations; past about a million
references an index that looks at a fraction of them is the practical choice. The index
is built by streaming the reference set in chunks (memory-mapped pages released after
each), gives ``k + margin`` candidates per query, and those are re-ranked by exact float64
distances like the exact search's (``membench.detectors.knn``), so every returned distance
is exact; only a true neighbour the index never proposed can be missed. How often that
happens is measured on each search: recall@1 against exact search on a sample of queries,
with its Wilson interval, goes into the record's ``info``.

IVF runs on the GPU when faiss sees one (``faiss.get_num_gpus() > 0``); faiss has no GPU
HNSW, so HNSW stays on the CPU (said in ``info``).
"""
from __future__ import annotations

import math
import weakref
from typing import Any

import numpy as np

from membench.core.mapped import release
from membench.core.stats import wilson_interval

RECALL_QUERIES = 200  # queries searched exactly to measure recall@1
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 128

_LAST: dict[str, Any] = {}  # the last index built, reused while the same reference array is searched again


def ivf_lists(n: int) -> int:
    """IVF cells: about 4 sqrt(n) (faiss's guideline), at least 39 training points per cell."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def _params(kind: str, n: int) -> dict[str, Any]:
    if kind == "ivf":
        nlist = ivf_lists(n)
        return {"nlist": nlist, "nprobe": min(nlist, max(8, nlist // 16))}
    return {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH}


def _rows(reference: np.ndarray, start: int, stop: int, cosine: bool) -> np.ndarray:
    from membench.detectors.knn import _flat, _normalized

    block = _flat(reference[start:stop])
    return _normalized(block) if cosine else block


def build_index(reference: np.ndarray, kind: str, chunk: int, cosine: bool = False) -> tuple[Any, dict[str, Any]]:
    """A faiss index of ``kind`` over ``reference`` (streamed in ``chunk`` rows) and its settings."""
    import faiss

    n = len(reference)
    dim = int(np.prod(reference.shape[1:]))
    metric = faiss.METRIC_INNER_PRODUCT if cosine else faiss.METRIC_L2
    params = _params(kind, n)
    device = "cpu"
    if kind == "ivf":
        quantizer = faiss.IndexFlatIP(dim) if cosine else faiss.IndexFlatL2(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, params["nlist"], metric)
        n_train = min(n, 64 * params["nlist"])
        pick = np.sort(np.random.default_rng(0).choice(n, n_train, replace=False))
        train = np.asarray(reference[pick], dtype=np.float32).reshape(n_train, dim)
        index.train(_normalized_if(train, cosine))
        del train
        index.nprobe = params["nprobe"]
        if faiss.get_num_gpus() > 0:
            index = faiss.index_cpu_to_all_gpus(index)
            device = "cuda"
    else:
        index = faiss.IndexHNSWFlat(dim, params["M"], metric)
        index.hnsw.efConstruction = params["efConstruction"]
        index.hnsw.efSearch = params["efSearch"]
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        index.add(_rows(reference, start, stop, cosine))
        release(reference, start, stop)
    info = {"knn_index": kind, "knn_index_params": params, "knn_index_device": device}
    if kind == "hnsw" and faiss.get_num_gpus() > 0:
        info["knn_index_note"] = "faiss has no GPU HNSW: searched on the CPU"
    return index, info


def _normalized_if(x: np.ndarray, cosine: bool) -> np.ndarray:
    from membench.detectors.knn import _normalized

    return _normalized(x) if cosine else x


def _cached_index(reference: np.ndarray, kind: str, chunk: int, cosine: bool) -> tuple[Any, dict[str, Any]]:
    # l2ratio and carlini on the same training set share one index: keyed on the array object itself
    # (a weak reference, so a new array at a recycled address is never mistaken for the old one).
    key = (kind, cosine, tuple(reference.shape), str(reference.dtype))
    held = _LAST.get("ref")
    if _LAST.get("key") == key and held is not None and held() is reference:
        return _LAST["index"], _LAST["info"]
    index, info = build_index(reference, kind, chunk, cosine)
    _LAST.clear()
    try:
        _LAST.update(ref=weakref.ref(reference), key=key, index=index, info=info)
    except TypeError:  # not weak-referenceable: no reuse
        pass
    return index, info


def approximate_candidates(q: np.ndarray, reference: np.ndarray, kk: int, kind: str, tiles: Any, *,
                           cosine: bool = False, info: dict[str, Any] | None = None) -> np.ndarray:
    """(n_query, kk) candidate indices from an approximate index (-1 where it found fewer)."""
    index, how = _cached_index(reference, kind, tiles.chunk, cosine)
    if info is not None:
        info.update(how)
    _, idx = index.search(_normalized_if(q, cosine), kk)
    idx = idx.astype(np.int64)
    short = np.flatnonzero((idx < 0).any(axis=1))
    if len(short):  # the probed cells held fewer than kk rows: those queries are searched exactly
        from membench.detectors.knn import candidates

        idx[short] = candidates(q[short], reference, kk, tiles, cosine=cosine)[1]
        if info is not None:
            info["knn_exact_fallback_queries"] = int(len(short))
    return idx


def recall_at_1(q: np.ndarray, reference: np.ndarray, approx_idx: np.ndarray, approx_key: np.ndarray, tiles: Any,
                cosine: bool = False) -> dict[str, Any]:
    """Fraction of sampled queries whose approximate nearest neighbour is the exact one (a tie counts)."""
    from membench.detectors.knn import _exact_rerank, candidates

    m = min(len(q), RECALL_QUERIES)
    pick = np.unique(np.linspace(0, len(q) - 1, m).round().astype(np.int64))
    _, cand = candidates(q[pick], reference, 1, tiles, cosine=cosine)
    key, idx = _exact_rerank(q[pick], reference, cand, 1, tiles.rerank, cosine=cosine)
    hits = int(((approx_idx[pick] == idx[:, 0]) | (approx_key[pick] == key[:, 0])).sum())
    lo, hi = wilson_interval(hits, len(pick))
    return {"value": hits / len(pick), "interval": [lo, hi], "interval_method": "wilson95",
            "over": "sampled queries", "n": len(pick)}
