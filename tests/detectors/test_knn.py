import numpy as np
import pytest

from membench.core.errors import MembenchError
from membench.core.mapped import _mapping, release, take_rows
from membench.detectors.knn import BLAS_DIM, knn_cosine, knn_l2, plan_tiles


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


def test_ties_go_to_the_lower_index_whatever_the_chunking(rng):
    base = rng.standard_normal((30, 8)).astype(np.float32)
    ref = np.concatenate([base, base, base])  # every row three times: exact distance ties
    q = base[:12] + 0.01 * rng.standard_normal((12, 8)).astype(np.float32)
    want = None
    for chunk in (None, 31, 11):
        d, i = knn_l2(q, ref, k=3, chunk=chunk)
        np.testing.assert_array_equal(i[:, 0], np.arange(12))  # the first copy, never a later one
        np.testing.assert_array_equal(i, np.arange(12)[:, None] + np.array([0, 30, 60]))
        if want is not None:
            np.testing.assert_array_equal(d, want)
        want = d


def test_small_memory_budget_gives_the_same_answer(rng, monkeypatch):
    ref = rng.standard_normal((600, 96)).astype(np.float32)
    q = rng.standard_normal((70, 96)).astype(np.float32)
    d0, i0 = knn_l2(q, ref, k=4)
    tiles = plan_tiles(70, 600, 96, 6, budget=16 << 10)  # 16 KiB: chunks of 42 rows, re-rank 2 queries at a time
    assert tiles.chunk < 600 and tiles.rerank < 70
    d1, i1 = knn_l2(q, ref, k=4, budget=16 << 10)
    np.testing.assert_array_equal(i0, i1)
    np.testing.assert_array_equal(d0, d1)
    monkeypatch.setenv("MEMBENCH_KNN_MEMORY", "lots")
    with pytest.raises(MembenchError, match="MEMBENCH_KNN_MEMORY"):
        knn_l2(q, ref, k=4)


def test_memmapped_pages_are_released_and_reads_stay_right(tmp_path, rng):
    ref = rng.standard_normal((5000, 32)).astype(np.float32)
    np.save(tmp_path / "ref.npy", ref)
    mm = np.load(tmp_path / "ref.npy", mmap_mode="r")
    found = _mapping(mm[1000:2000])
    assert found is not None and found[1] == mm.offset + 1000 * 32 * 4  # the slice's own bytes in the file mapping
    release(mm, 0, 5000)
    np.testing.assert_array_equal(np.asarray(mm[4990:]), ref[4990:])  # pages fault back in from the file
    q = rng.standard_normal((20, 32)).astype(np.float32)
    np.testing.assert_array_equal(knn_l2(q, mm, k=2, chunk=700)[1], brute_l2(q, ref, 2)[1])


def test_cosine_is_exact_and_reranked(rng):
    ref = rng.standard_normal((300, 24)).astype(np.float32)
    q = rng.standard_normal((15, 24)).astype(np.float32)
    s, i = knn_cosine(q, ref, k=3, chunk=64)
    rn = ref.astype(np.float64) / np.linalg.norm(ref.astype(np.float64), axis=1, keepdims=True)
    qn = q.astype(np.float64) / np.linalg.norm(q.astype(np.float64), axis=1, keepdims=True)
    sims = qn @ rn.T
    bi = np.argsort(-sims, axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(s, np.take_along_axis(sims, bi, 1), rtol=1e-12)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_report_recall_against_exact(rng, kind):
    centres = rng.standard_normal((40, 16)).astype(np.float32) * 4
    ref = (centres[rng.integers(0, 40, 4000)] + rng.standard_normal((4000, 16))).astype(np.float32)
    q = (ref[rng.integers(0, 4000, 300)] + 0.1 * rng.standard_normal((300, 16))).astype(np.float32)
    info: dict = {}
    d, i = knn_l2(q, ref, k=2, index=kind, info=info)
    assert info["knn_index"] == kind and info["knn_index_params"]
    rec = info["knn_recall_at_1"]
    assert rec["n"] == 200 and rec["interval_method"] == "wilson95"
    assert rec["interval"][0] <= rec["value"] <= rec["interval"][1]
    bd, bi = brute_l2(q, ref, 2)
    agree = float(np.mean(i[:, 0] == bi[:, 0]))
    assert agree > 0.9  # near-copies are easy for either index
    picked = np.sqrt(((q.astype(np.float64) - ref[i[:, 0]].astype(np.float64)) ** 2).sum(1))
    np.testing.assert_allclose(d[:, 0], picked, rtol=1e-12)  # returned distances are exact, whatever the index
    exact_info: dict = {}
    knn_l2(q, ref, k=2, info=exact_info)
    assert exact_info == {}  # exact search adds nothing to a record


def test_index_option_on_detectors():
    from membench.detectors.base import make_detector

    assert "index" not in make_detector("l2ratio").config()  # default: keys as before
    assert make_detector("l2ratio:index=hnsw").config()["index"] == "hnsw"
    assert make_detector("carlini:index=ivf").index == "ivf"
    with pytest.raises(MembenchError, match="unknown nearest-neighbour index 'kd'") as err:
        make_detector("l2ratio:index=kd")
    assert "\n" not in str(err.value)


def _resident_kib(path) -> int | None:
    """Resident KiB of this process's mappings of ``path`` (Linux /proc/self/smaps), None elsewhere."""
    try:
        lines = open("/proc/self/smaps").read().splitlines()
    except OSError:
        return None
    total, inside = 0, False
    for line in lines:
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:  # a mapping's header line
            inside = line.endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(head[1])
    return total


def test_scattered_rows_of_a_memmap_do_not_stay_resident(tmp_path, rng):
    ref = rng.standard_normal((40000, 64)).astype(np.float32)  # 10 MiB
    path = tmp_path / "ref.npy"
    np.save(path, ref)
    rows = np.unique(rng.integers(0, len(ref), 400))
    mm = np.load(path, mmap_mode="r")
    got = take_rows(mm, rows, span_bytes=256 << 10)
    np.testing.assert_array_equal(got, ref[rows])
    np.testing.assert_array_equal(take_rows(ref, rows), ref[rows])  # in-memory arrays: plain indexing
    kept = _resident_kib(path)
    if kept is None:
        pytest.skip("no /proc/self/smaps")
    naive = np.load(path, mmap_mode="r")
    _ = np.asarray(naive[rows])  # the control: plain fancy indexing of the same rows
    both = _resident_kib(path)
    assert kept <= 512, f"{kept} KiB of the mapping still resident after take_rows"
    assert both - kept > 4 * kept + 1024, "control: plain indexing should leave far more resident"


@pytest.mark.parametrize("dim", [BLAS_DIM - 1, BLAS_DIM])  # faiss's kernel, then numpy's product + torch's top-k
def test_both_engines_give_the_exact_answer_with_ties_and_cosine(rng, dim):
    base = rng.standard_normal((40, dim)).astype(np.float32)
    ref = np.concatenate([base, base, base])  # exact ties: the lower index first, whichever engine
    q = base[:10] + 0.01 * rng.standard_normal((10, dim)).astype(np.float32)
    for chunk in (None, 37):
        d, i = knn_l2(q, ref, k=3, chunk=chunk)
        np.testing.assert_array_equal(i, np.arange(10)[:, None] + np.array([0, 40, 80]))
        np.testing.assert_allclose(d, brute_l2(q, ref, 3)[0], rtol=1e-12)
    far = rng.standard_normal((15, dim)).astype(np.float32)
    d, i = knn_l2(far, base, k=2, chunk=13)
    bd, bi = brute_l2(far, base, 2)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(d, bd, rtol=1e-12)
    s, i = knn_cosine(far, base, k=2, chunk=13)
    sims = (far / np.linalg.norm(far, axis=1, keepdims=True)) @ (base / np.linalg.norm(base, axis=1, keepdims=True)).T
    np.testing.assert_array_equal(i, np.argsort(-sims, axis=1)[:, :2])
    np.testing.assert_allclose(s, np.take_along_axis(sims, i, 1), atol=1e-5)
