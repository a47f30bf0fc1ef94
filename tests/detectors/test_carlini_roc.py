"""Calibrated L2 (Carlini et al. 2023) and the ROC helpers, against independent computations."""
import numpy as np
import pytest

from membench.data import Dataset, load_dataset
from membench.detectors import DetectorContext, make_detector
from membench.core.errors import MembenchError
from membench.analysis.roc import auc_bootstrap_ci, roc_auc, tpr_at_fpr

CTX = DetectorContext()


def brute_calibrated(samples, train, n, alpha):
    s = samples.reshape(len(samples), -1).astype(np.float64)
    t = train.reshape(len(train), -1).astype(np.float64)
    d = np.sort(np.sqrt(((s[:, None] - t[None]) ** 2).sum(-1)), axis=1)
    return d[:, 0] / (alpha * d[:, :n].mean(1))


def test_carlini_matches_brute_force(rng):
    train = load_dataset("digits:n=128")
    samples = rng.uniform(-1, 1, (100, 1, 8, 8)).astype(np.float32)
    samples[:40] = train.images[rng.integers(0, 128, 40)] + 0.05 * rng.standard_normal((40, 1, 8, 8))
    for spec, n, alpha in [("carlini", 50, 0.5), ("carlini:n=10,alpha=0.8", 10, 0.8)]:
        out = make_detector(spec).detect(samples, train, CTX)
        np.testing.assert_allclose(out.scores, brute_calibrated(samples, train.images, n, alpha), rtol=1e-9)
        np.testing.assert_array_equal(out.flags, out.scores < 1.0)
    out = make_detector("carlini").detect(samples, train, CTX)
    assert out.flags[:40].all()  # near-copies sit much closer than half their neighbourhood mean


def test_carlini_uses_all_when_training_set_small(rng):
    train = load_dataset("digits:n=16")
    x = rng.uniform(-1, 1, (5, 1, 8, 8)).astype(np.float32)
    out = make_detector("carlini").detect(x, train, CTX)
    assert out.info["n_used"] == 16 and "n=50" in out.info["note"]
    np.testing.assert_allclose(out.scores, brute_calibrated(x, train.images, 16, 0.5), rtol=1e-9)


@pytest.mark.parametrize("spec", ["carlini:n=1", "carlini:alpha=0", "carlini:alpha=1.5", "carlini:threshold=0",
                                  "carlini:threshold=2.5", "carlini:n=2.5"])
def test_carlini_bad_config(spec):
    with pytest.raises(MembenchError):
        make_detector(spec)


def test_carlini_needs_two_images():
    one = Dataset(spec="one", images=np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(MembenchError, match="at least 2"):
        make_detector("carlini").detect(np.zeros((2, 1, 8, 8), np.float32), one, CTX)


def test_auc_matches_sklearn_with_ties(rng):
    from sklearn.metrics import roc_auc_score

    pos = np.round(rng.normal(1, 1, 200), 1)
    neg = np.round(rng.normal(0, 1, 300), 1)  # rounding makes many ties
    expected = roc_auc_score(np.r_[np.ones(200), np.zeros(300)], np.r_[pos, neg])
    assert roc_auc(pos, neg) == pytest.approx(expected, abs=1e-12)
    lo, hi = auc_bootstrap_ci(pos, neg, n_boot=300)
    assert lo < expected < hi and hi - lo < 0.2
    assert np.isnan(roc_auc(pos, []))


def test_tpr_at_fpr_by_hand():
    neg = np.arange(100, dtype=float)  # 1% of 100 negatives: one may pass, so the threshold is 98
    pos = np.array([97.0, 98.0, 98.5, 99.5, 150.0])
    r = tpr_at_fpr(pos, neg, 0.01)
    assert r["threshold"] == 98.0 and r["tpr"] == pytest.approx(3 / 5) and r["fpr_actual"] == pytest.approx(0.01)
    assert r["tpr_ci_low"] < 0.6 < r["tpr_ci_high"]
    few = tpr_at_fpr(pos, np.arange(50, dtype=float), 0.01)  # under 100 negatives: none may pass
    assert few["threshold"] == 49.0 and few["fpr_actual"] == 0.0 and few["tpr"] == 1.0
