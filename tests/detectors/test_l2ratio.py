import numpy as np
import pytest

from membench.data import Dataset, load_dataset
from membench.detectors import DetectorContext, make_detector
from membench.core.errors import MembenchError

CTX = DetectorContext()


def brute_ratio(samples, train):
    s = samples.reshape(len(samples), -1).astype(np.float64)
    t = train.reshape(len(train), -1).astype(np.float64)
    d = np.sqrt(((s[:, None] - t[None]) ** 2).sum(-1))
    order = np.argsort(d, axis=1)
    d1 = d[np.arange(len(s)), order[:, 0]]
    d2 = d[np.arange(len(s)), order[:, 1]]
    return d1 / d2, order[:, 0]


def test_matches_independent_brute_force(rng):
    train = load_dataset("digits:n=64")
    samples = rng.uniform(-1, 1, (200, 1, 8, 8)).astype(np.float32)
    samples[:50] = train.images[rng.integers(0, 64, 50)] + 0.05 * rng.standard_normal((50, 1, 8, 8))
    out = make_detector("l2ratio").detect(samples, train, CTX)
    ratio, nearest = brute_ratio(samples, train.images)
    np.testing.assert_allclose(out.scores, ratio, rtol=1e-9)
    np.testing.assert_array_equal(out.nearest, nearest)
    np.testing.assert_array_equal(out.flags, ratio < 1 / 3)


def test_copies_flagged_heldout_not():
    ds = load_dataset("digits:n=64")
    noise = np.random.default_rng(1).standard_normal(ds.images.shape).astype(np.float32)
    copies = np.clip(ds.images + 0.02 * noise, -1, 1)
    det = make_detector("l2ratio")
    out = det.detect(copies, ds, CTX)
    assert out.flags.all()
    np.testing.assert_array_equal(out.nearest, np.arange(64))  # each copy matches its own source
    fresh = det.detect(ds.heldout, ds, CTX)
    assert fresh.flags.mean() < 0.02
    assert np.median(fresh.scores) > 0.6


def test_threshold_override_and_quantize():
    ds = load_dataset("digits:n=64")
    strict = make_detector("l2ratio:threshold=0.01")
    assert strict.threshold == 0.01
    q = make_detector("l2ratio:quantize=true")
    out = q.detect(ds.images[:5] + 0.001, ds, CTX)
    assert out.info["quantized_uint8"] is True
    assert out.flags.all()


@pytest.mark.parametrize("spec", ["l2ratio:threshold=0", "l2ratio:threshold=2", "l2ratio:bogus=1"])
def test_bad_config(spec):
    with pytest.raises(MembenchError):
        make_detector(spec)


def test_wrong_shape_and_nan():
    ds = load_dataset("digits:n=64")
    det = make_detector("l2ratio")
    with pytest.raises(MembenchError, match="shape"):
        det.detect(np.zeros((3, 1, 16, 16), np.float32), ds, CTX)
    bad = ds.images[:4].copy()
    bad[1, 0, 0, 0] = np.nan
    with pytest.raises(MembenchError, match="NaN"):
        det.detect(bad, ds, CTX)


def test_needs_two_training_images():
    one = Dataset(spec="one", images=np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(MembenchError, match="at least 2"):
        make_detector("l2ratio").detect(np.zeros((2, 1, 8, 8), np.float32), one, CTX)
