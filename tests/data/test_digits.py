"""Labels of the built-in digits dataset."""
import numpy as np


def test_labels_are_the_digits_of_the_images():
    from sklearn.datasets import load_digits

    from membench.data.digits import load

    ds = load(n=64, seed=0)
    raw = load_digits()
    assert ds.labels.shape == (64,) and ds.labels.dtype == np.int64
    assert ds.heldout_labels.shape == (300,)
    # each training image's label is scikit-learn's target of the source image it came from
    np.testing.assert_array_equal(ds.labels, raw.target[ds.source_index])
    assert set(np.unique(ds.heldout_labels)) <= set(range(10))
