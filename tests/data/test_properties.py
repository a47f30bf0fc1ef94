"""Property tests over array inputs: any array, dtype, shape, range or NaN gives either a valid
Dataset (float32 (N, C, H, W), C in {1, 3}, finite, in [-1, 1]) or a one-line MembenchError."""
from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from membench.core.errors import MembenchError  # noqa: E402
from membench.data import from_arrays  # noqa: E402
from membench.data.validate import LAYOUTS, RANGES  # noqa: E402

DTYPES = [np.uint8, np.uint16, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_]
sides = st.integers(2, 5)
image_shapes = st.one_of(  # shapes images come in, and anything else
    st.tuples(st.integers(1, 4), sides, sides),
    st.tuples(st.integers(1, 4), st.sampled_from([1, 3]), sides, sides),
    st.tuples(st.integers(1, 4), sides, sides, st.sampled_from([1, 3])),
)
shapes = st.one_of(image_shapes, hnp.array_shapes(min_dims=1, max_dims=5, min_side=0, max_side=5))


@st.composite
def image_arrays(draw):
    dtype = draw(st.sampled_from(DTYPES))
    if draw(st.booleans()):  # the common cases, often enough to exercise the accepting path
        dtype = draw(st.sampled_from([np.uint8, np.uint16, np.float32]))
    shape = draw(shapes)
    if np.issubdtype(dtype, np.floating):
        width = np.dtype(dtype).itemsize * 8
        low = draw(st.sampled_from([-1e4, -1.0, -1.0, 0.0]))
        high = draw(st.sampled_from([1.0, 1.0, 255.0, 1e4]))
        elements = st.floats(low, high, width=width)
        if draw(st.booleans()):  # now and then a NaN or an infinity
            elements = st.one_of(elements, st.sampled_from([np.nan, np.inf, -np.inf]))
        return draw(hnp.arrays(dtype, shape, elements=elements))
    return draw(hnp.arrays(dtype, shape))


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(arr=image_arrays(), value_range=st.sampled_from([None, *RANGES, "0..7"]),
       layout=st.sampled_from([None, *LAYOUTS]), with_labels=st.booleans())
def test_any_array_is_a_valid_dataset_or_one_line(arr, value_range, layout, with_labels):
    labels = np.arange(arr.shape[0]) % 3 if with_labels and arr.ndim else None
    try:
        ds = from_arrays(arr, labels=labels, range=value_range, layout=layout)
    except MembenchError as exc:
        assert "\n" not in str(exc) and str(exc)
        hypothesis.event("refused")
        return
    hypothesis.event("accepted")
    images = ds.images
    assert images.dtype == np.float32 and images.ndim == 4 and images.shape[1] in (1, 3)
    assert images.shape[0] == arr.shape[0] >= 1 and images.size == arr.size
    assert np.isfinite(images).all() and images.min() >= -1 and images.max() <= 1
    if labels is not None:
        assert ds.labels.dtype == np.int64 and ds.labels.tolist() == labels.tolist()


@settings(max_examples=60, deadline=None, database=None)
@given(values=st.lists(st.integers(-3, 12), max_size=6), dtype=st.sampled_from([np.int8, np.int64, np.uint8, np.float32]),
       num_classes=st.one_of(st.none(), st.integers(-1, 12)))
def test_any_labels_are_checked(values, dtype, num_classes):
    labels = np.array(values).astype(dtype)  # negatives wrap around in uint8: still checked
    images = np.zeros((len(labels), 4, 4), np.uint8)
    try:
        ds = from_arrays(images, labels=labels, num_classes=num_classes)
    except MembenchError as exc:
        assert "\n" not in str(exc)
        return
    assert ds.labels.dtype == np.int64 and (ds.labels >= 0).all() and (ds.labels < ds.num_classes).all()
    assert labels.dtype.kind in "iu" and (num_classes is None or ds.num_classes == num_classes)
