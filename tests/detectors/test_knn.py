import numpy as np

from membench.detectors.knn import knn_cosine, knn_l2


def brute_l2(q, ref, k):
    d = np.sqrt(((q[:, None, :].astype(np.float64) - ref[None].astype(np.float64)) ** 2).sum(-1))
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, idx, 1), idx


def test_knn_l2_matches_brute_force_with_streaming(rng):
    ref = rng.standard_normal((257, 64)).astype(np.float32)
    q = rng.standard_normal((40, 64)).astype(np.float32)
    for chunk in (1000, 50, 7):  # one block, several blocks, tiny blocks
        d, i = knn_l2(q, ref, k=3, chunk=chunk)
        bd, bi = brute_l2(q, ref, 3)
        np.testing.assert_array_equal(i, bi)
        np.testing.assert_allclose(d, bd, rtol=1e-12)


def test_knn_l2_exact_for_near_copies(rng):
    ref = rng.uniform(-1, 1, (100, 64)).astype(np.float32) * 50  # large norms: float32 cancellation
    q = ref[:10] + 1e-4 * rng.standard_normal((10, 64)).astype(np.float32)
    d, i = knn_l2(q, ref, k=2)
    np.testing.assert_array_equal(i[:, 0], np.arange(10))
    bd, _ = brute_l2(q, ref, 2)
    np.testing.assert_allclose(d, bd, rtol=1e-9)
    assert (d[:, 0] < 1e-2).all()


def test_knn_accepts_memmap(tmp_path, rng):
    ref = rng.standard_normal((300, 16)).astype(np.float32)
    np.save(tmp_path / "ref.npy", ref)
    mm = np.load(tmp_path / "ref.npy", mmap_mode="r")
    q = rng.standard_normal((5, 16)).astype(np.float32)
    d, i = knn_l2(q, mm, k=2, chunk=64)
    np.testing.assert_array_equal(i, brute_l2(q, ref, 2)[1])


def test_knn_cosine_matches_brute_force(rng):
    ref = rng.standard_normal((120, 32)).astype(np.float32)
    q = rng.standard_normal((9, 32)).astype(np.float32)
    s, i = knn_cosine(q, ref, k=2, chunk=33)
    rn = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    sims = qn @ rn.T
    bi = np.argsort(-sims, axis=1)[:, :2]
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(s, np.take_along_axis(sims, bi, 1), atol=1e-5)
