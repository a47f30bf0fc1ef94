import pytest

from membench.core.stats import wilson_interval


@pytest.mark.parametrize("k,n,lo,hi", [
    (0, 10, 0.0, 0.2775),     # known values of the Wilson score interval, z = 1.96
    (5, 10, 0.2366, 0.7634),
    (10, 10, 0.7225, 1.0),
    (81, 100, 0.7222, 0.8749),
])
def test_wilson_known_values(k, n, lo, hi):
    a, b = wilson_interval(k, n)
    assert a == pytest.approx(lo, abs=1e-4)
    assert b == pytest.approx(hi, abs=1e-4)


def test_wilson_contains_point_and_shrinks():
    wide = wilson_interval(30, 100)
    narrow = wilson_interval(300, 1000)
    assert wide[0] < 0.3 < wide[1]
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


def test_wilson_rejects_bad_input():
    with pytest.raises(ValueError):
        wilson_interval(1, 0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
