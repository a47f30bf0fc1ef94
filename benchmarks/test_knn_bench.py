"""Exact k-NN (`knn_l2`) against the matrix-product rate, at dims 64, 768, 3,072 and 12,288.

Per dimension, one group whose baseline is a numpy float32 product of the same shape
(queries x references, the work exact search cannot avoid), with `knn_l2` (k=2, exact
float64 distances) and a naive `torch.cdist` + `topk` beside it. A separate group times the
square 4096^3 product, the machine's practical float32 rate; `benchmarks/report.py` turns
each time into an effective rate (2 x queries x references x dim / time) and divides.
The shapes are the issue's: 2,000 x 50,000 at dims 64 and 768, 1,000 x 50,000 at 3,072
(CIFAR-10 pixels), 500 x 20,000 at 12,288 (64x64 RGB).
"""
import numpy as np
import pytest
import torch

from membench.detectors.knn import knn_l2

SHAPES = {64: (2000, 50000), 768: (2000, 50000), 3072: (1000, 50000), 12288: (500, 20000)}
ROUNDS = dict(rounds=3, iterations=1, warmup_rounds=0)  # short: the 2 shared cores (3 rounds: the mean steadies)
SQUARE = 4096


def group(dim: int) -> str:
    q, n = SHAPES[dim]
    return f"knn k=2, {q} x {n}, dim {dim}"


@pytest.fixture(scope="module")
def data():
    cache: dict = {}

    def get(dim):
        if dim not in cache:
            cache.clear()  # one shape in memory at a time (the dim-12,288 set is 1 GB)
            q, n = SHAPES[dim]
            rng = np.random.default_rng(dim)
            cache[dim] = (rng.standard_normal((q, dim), dtype=np.float32),
                          rng.standard_normal((n, dim), dtype=np.float32))
        return cache[dim]

    knn_l2(np.zeros((2, 4), np.float32), np.eye(4, dtype=np.float32), 2)  # faiss imported outside the timings
    return get


def torch_cdist_topk(q, ref, k=2):
    d = torch.cdist(torch.from_numpy(q), torch.from_numpy(ref))
    v, i = d.topk(k, dim=1, largest=False)
    return v.numpy(), i.numpy()


def _info(benchmark, dim):
    q, n = SHAPES[dim]
    benchmark.extra_info.update(flops=2.0 * q * n * dim, queries=q, references=n, dim=dim)


@pytest.mark.parametrize("dim", sorted(SHAPES))
def test_baseline_numpy_matmul(benchmark, data, dim):
    benchmark.group = group(dim)
    _info(benchmark, dim)
    q, ref = data(dim)
    out = benchmark.pedantic(np.matmul, args=(q, ref.T), **ROUNDS)
    assert out.shape == SHAPES[dim]


@pytest.mark.parametrize("dim", sorted(SHAPES))
def test_membench_knn_l2(benchmark, data, dim):
    benchmark.group = group(dim)
    _info(benchmark, dim)
    q, ref = data(dim)
    d, i = benchmark.pedantic(knn_l2, args=(q, ref, 2), **ROUNDS)
    # the answer is checked, not only timed: for a few queries, the same neighbours as a float64 brute force
    for j in range(3):
        q64 = q[j].astype(np.float64)
        d64 = np.concatenate([((ref[s : s + 8192].astype(np.float64) - q64) ** 2).sum(1)
                              for s in range(0, len(ref), 8192)])
        np.testing.assert_array_equal(i[j], np.argsort(d64, kind="stable")[:2])


@pytest.mark.parametrize("dim", sorted(SHAPES))
def test_torch_cdist_topk(benchmark, data, dim):
    benchmark.group = group(dim)
    _info(benchmark, dim)
    q, ref = data(dim)
    _, i = benchmark.pedantic(torch_cdist_topk, args=(q, ref), **ROUNDS)
    assert i.shape == (SHAPES[dim][0], 2)


@pytest.mark.benchmark(group="square float32 GEMM 4096^3")
def test_baseline_square_gemm(benchmark):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((SQUARE, SQUARE), dtype=np.float32)
    b = rng.standard_normal((SQUARE, SQUARE), dtype=np.float32)
    benchmark.extra_info.update(flops=2.0 * SQUARE**3)
    out = benchmark.pedantic(np.matmul, args=(a, b), **ROUNDS)
    assert out.shape == (SQUARE, SQUARE)
