import pytest

from membench.core.errors import MembenchError
from membench.core.specs import format_spec, parse_spec, split_list


def test_parse_spec_types():
    assert parse_spec("digits:n=64,seed=1,holdout=0") == ("digits", {"n": 64, "seed": 1, "holdout": 0})
    assert parse_spec("l2ratio:threshold=0.25,quantize=true") == ("l2ratio", {"threshold": 0.25, "quantize": True})
    assert parse_spec("x:name=abc") == ("x", {"name": "abc"})


def test_parse_spec_errors():
    with pytest.raises(MembenchError):
        parse_spec("digits:n")
    with pytest.raises(MembenchError):
        parse_spec("  ")


def test_format_roundtrip():
    name, opts = parse_spec("digits:seed=2,n=5")
    assert parse_spec(format_spec(name, opts)) == (name, opts)


def test_split_list_keeps_overrides_together():
    assert split_list("teacher,l2ratio:threshold=0.2,quantize=true,cd-student") == [
        "teacher", "l2ratio:threshold=0.2,quantize=true", "cd-student"]
