"""Exact k-NN for the L2-ratio detector: faiss (streamed, exact re-rank) vs brute force."""
import numpy as np
import pytest
import torch

from membench.detectors.knn import knn_l2

N_QUERY, N_REF, DIM = 2000, 1497, 64  # 2,000 samples against the largest digits training set


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((N_QUERY, DIM)).astype(np.float32),
            rng.standard_normal((N_REF, DIM)).astype(np.float32))


def torch_cdist_topk(q, ref, k=2):
    d = torch.cdist(torch.from_numpy(q), torch.from_numpy(ref))
    v, i = d.topk(k, dim=1, largest=False)
    return v.numpy(), i.numpy()


@pytest.mark.benchmark(group="knn k=2, 2000 x 1497, dim 64")
def test_baseline_torch_cdist_topk(benchmark, data):
    q, ref = data
    d, i = benchmark(torch_cdist_topk, q, ref)
    assert i.shape == (N_QUERY, 2)


@pytest.mark.benchmark(group="knn k=2, 2000 x 1497, dim 64")
def test_membench_knn_l2(benchmark, data):
    q, ref = data
    d, i = benchmark(knn_l2, q, ref, 2)
    np.testing.assert_array_equal(i, torch_cdist_topk(q, ref)[1])  # same neighbours as the baseline
