"""The intermediate level(s) of multistep consistency sampling as an option."""
from __future__ import annotations

import pytest

from membench.core.errors import MembenchError
from membench.models.specs import make_sampler


def test_sigmas_option_sets_the_intermediate_levels() -> None:
    assert make_sampler("consistency:steps=2,sigmas=1.4").taus() == [80.0, 1.4]
    assert make_sampler("consistency:steps=3,sigmas=5/1.4").taus() == [80.0, 5.0, 1.4]
    assert make_sampler("consistency:steps=2").taus()[1] == pytest.approx(3.26, abs=0.01)  # grid index 8 of 18


@pytest.mark.parametrize("spec", ["consistency:steps=2,sigmas=5/1.4", "consistency:steps=3,sigmas=1.4/5",
                                  "consistency:steps=2,sigmas=100,sigma_max=80", "consistency:steps=2,sigmas=a"])
def test_bad_sigmas_are_one_line_errors(spec: str) -> None:
    with pytest.raises(MembenchError):
        make_sampler(spec)


def test_sigmas_outside_the_models_range_fail_when_the_range_is_known() -> None:
    sampler = make_sampler("consistency:steps=2,sigmas=100")  # the range is the model's: known at sampling
    with pytest.raises(MembenchError, match=r"must decrease inside the model's sigma range \(0.002, 80"):
        sampler.taus()
