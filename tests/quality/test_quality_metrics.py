"""Quality metrics against independent computations and constructed cases (issue 5)."""
import numpy as np
import pytest
import scipy.linalg

from membench.core.errors import MembenchError
from membench.quality.metrics import MetricConfig, fid, kid, precision_recall, quality_metrics


def fid_scipy(a: np.ndarray, b: np.ndarray) -> float:
    """FID by the textbook formula with scipy's matrix square root (independent of torch-fidelity)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def pr_bruteforce(gen: np.ndarray, real: np.ndarray, k: int) -> tuple[float, float]:
    """Kynkaanniemi et al. 2019 straight from the definition, in float64 numpy."""
    def cd(x, y):
        return np.sqrt(((x[:, None, :].astype(np.float64) - y[None, :, :]) ** 2).sum(-1))

    r_real = np.sort(cd(real, real), axis=1)[:, k]  # column 0 is the point itself
    r_gen = np.sort(cd(gen, gen), axis=1)[:, k]
    precision = (cd(gen, real) <= r_real[None, :]).any(1).mean()
    recall = (cd(real, gen) <= r_gen[None, :]).any(1).mean()
    return float(precision), float(recall)


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the KID kernel (x.y/d + 1)^3 (Binkowski et al. 2018), float64."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    d, m = x.shape[1], len(x)
    k = lambda a, b: (a @ b.T / d + 1.0) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


def test_fid_matches_scipy_sqrtm_formula(rng):
    a = rng.normal(size=(400, 12)) @ rng.normal(size=(12, 12)) + 0.3
    b = rng.normal(size=(300, 12)) @ rng.normal(size=(12, 12)) * 0.7
    ours, ref = fid(a.astype(np.float32), b.astype(np.float32)), fid_scipy(a.astype(np.float32), b.astype(np.float32))
    assert ref > 1.0  # a non-trivial pair
    assert ours == pytest.approx(ref, rel=1e-5)


def test_fid_of_a_set_against_itself_is_zero(rng):
    a = rng.normal(size=(200, 16)).astype(np.float32)
    assert abs(fid(a, a)) < 1e-6
    assert fid(a, a + 0.5) == pytest.approx(16 * 0.25, rel=1e-4)  # a pure mean shift costs ||shift||^2


def test_kid_matches_independent_mmd_on_one_full_subset(rng):
    x = rng.normal(size=(60, 8)).astype(np.float32)
    y = (rng.normal(size=(60, 8)) * 1.3 + 0.2).astype(np.float32)
    # one subset of the full size is a permutation of the sets: MMD^2 is permutation invariant
    mean, std, size = kid(x, y, MetricConfig(kid_subsets=1, kid_subset_size=60))
    assert size == 60 and std == 0.0
    assert mean == pytest.approx(mmd2_unbiased(x, y), rel=1e-4, abs=1e-6)


def test_kid_near_zero_for_same_distribution_and_positive_otherwise(rng):
    cfg = MetricConfig(kid_subsets=20, kid_subset_size=200)
    x, y = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    same, same_std, _ = kid(x.astype(np.float32), y.astype(np.float32), cfg)
    diff, diff_std, _ = kid(x.astype(np.float32), (y * 1.5 + 0.5).astype(np.float32), cfg)
    assert abs(same) < 3 * same_std + 1e-3
    assert diff > 10 * max(abs(same), same_std)


def test_precision_recall_match_bruteforce_definition(rng):
    real = rng.normal(size=(150, 5)).astype(np.float32)
    gen = (rng.normal(size=(120, 5)) * 0.8 + 0.4).astype(np.float32)
    for k in (1, 3, 5):
        p, r = precision_recall(gen, real, k)
        pb, rb = pr_bruteforce(gen, real, k)
        assert (p, r) == pytest.approx((pb, rb), abs=1e-6)  # counts differ by >= 1/150
        assert 0.0 < p < 1.0 and 0.0 < r < 1.0  # the case is not degenerate


def test_precision_recall_constructed_cases(rng):
    real = rng.normal(size=(200, 6)).astype(np.float32)
    assert precision_recall(real.copy(), real) == (1.0, 1.0)  # the same set
    assert precision_recall(real + 100.0, real) == (0.0, 0.0)  # disjoint supports
    # mode collapse: every sample is (nearly) one training point -> precise, no recall
    collapse = real[[7]] + rng.normal(scale=1e-4, size=(200, 6)).astype(np.float32)
    p, r = precision_recall(collapse, real)
    assert p == 1.0 and r <= 4 / 200
    # two well-separated modes, the model covers only one: precision as for a perfect model of
    # that mode alone, recall at most a half
    left = (rng.normal(size=(200, 6)) - 20).astype(np.float32)
    modes = np.concatenate([left, (rng.normal(size=(200, 6)) + 20).astype(np.float32)])
    one_mode = (rng.normal(size=(200, 6)) - 20).astype(np.float32)
    p, r = precision_recall(one_mode, modes)
    p_alone, r_alone = precision_recall(one_mode, left)
    assert p == p_alone and p > 0.85
    assert r == pytest.approx(r_alone / 2, abs=1e-6) and 0.35 < r <= 0.5


def test_minimum_counts_fail_clearly_or_mark_nan(rng):
    gen, ref = rng.normal(size=(20, 32)).astype(np.float32), rng.normal(size=(300, 32)).astype(np.float32)
    with pytest.raises(MembenchError, match=r"FID needs at least 33 images per set .*generated has 20"):
        quality_metrics(gen, ref)
    out = quality_metrics(gen, ref, strict=False)
    assert np.isnan(out["fid"]) and np.isfinite(out["kid"]) and 0 <= out["precision"]["value"] <= 1
    assert len(out["notes"]) == 1 and "33" in out["notes"][0]
    with pytest.raises(MembenchError, match=r"precision/recall needs at least 4 images"):
        quality_metrics(gen[:3], ref, MetricConfig(metrics=("prc",)))
    with pytest.raises(MembenchError, match="KID needs at least 2"):
        quality_metrics(gen[:1], ref, MetricConfig(metrics=("kid",)))


def test_precision_recall_carry_wilson_intervals(rng):
    from membench.core.stats import wilson_interval

    gen, ref = rng.normal(size=(100, 4)).astype(np.float32), (rng.normal(size=(80, 4)) + 0.5).astype(np.float32)
    out = quality_metrics(gen, ref, MetricConfig(metrics=("prc",)))
    p, r = out["precision"], out["recall"]
    assert p["n"] == 100 and r["n"] == 80
    assert (p["ci_low"], p["ci_high"]) == wilson_interval(p["count"], 100)
    assert p["count"] == round(p["value"] * 100) and r["count"] == round(r["value"] * 80)


def test_bad_metric_config():
    with pytest.raises(MembenchError, match="unknown quality metric"):
        MetricConfig(metrics=("fid", "isc"))
    with pytest.raises(MembenchError, match="kid_subsets must be a positive integer"):
        MetricConfig(kid_subsets=0)
