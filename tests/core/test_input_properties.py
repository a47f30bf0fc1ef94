"""Property-based tests (hypothesis, bounded) of the input rules: ``name:k=v`` specs, typed options,
names, seeds and model registry entries. Whatever the text, the answer is a value of the right
type or a one-line ``MembenchError``, never another exception."""
from __future__ import annotations

import math
import string
from dataclasses import dataclass
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from membench.core.errors import InvalidInputError, MembenchError, UsageError
from membench.core.options import NAME_RE, SEED_MAX, check_name, check_seed, coerce_options
from membench.core.specs import format_spec, parse_spec

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

names = st.from_regex(NAME_RE, fullmatch=True).filter(lambda s: ".." not in s and ":" not in s)
keys = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
words = st.text(string.ascii_letters + "_/.", min_size=1, max_size=12).filter(
    lambda s: s.strip() == s and s.lower() not in ("true", "false", "yes", "no", "none", "null", "nan", "inf",
                                                   "infinity") and not s.lower().lstrip("+-").startswith(("inf", "nan")))
values = st.one_of(st.integers(-10**6, 10**6), st.booleans(), words,
                   st.floats(allow_nan=False, allow_infinity=False, width=32).filter(lambda f: f != int(f)))
text = st.text(max_size=40)


@FAST
@given(names, st.dictionaries(keys, values, max_size=4))
def test_format_then_parse_gives_back_the_spec(name, overrides):
    parsed_name, parsed = parse_spec(format_spec(name, overrides))
    assert parsed_name == name
    assert parsed.keys() == overrides.keys()
    for k, v in overrides.items():
        if isinstance(v, float):
            assert math.isclose(parsed[k], v, rel_tol=1e-6)
        else:
            assert parsed[k] == v and type(parsed[k]) is type(v)


@FAST
@given(text)
def test_any_spec_text_parses_or_is_one_line(spec):
    try:
        name, overrides = parse_spec(spec)
    except MembenchError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(name, str) and isinstance(overrides, dict)


@dataclass
class Component:
    n: int = 1
    rate: float = 0.5
    flag: bool = False
    label: str = "x"
    mode: Literal["fast", "slow"] = "fast"
    seed: int = 0
    cap: float | None = None


@FAST
@given(st.sampled_from(["n", "rate", "flag", "label", "mode", "seed", "cap"]), text)
def test_any_option_text_is_typed_or_one_line(key, raw):
    from membench.core.specs import parse_value

    try:
        value = coerce_options("thing 'c'", {key: parse_value(raw)}, Component)[key]
    except UsageError as exc:
        assert str(exc).startswith(f"thing 'c': option {key}=") and "\n" not in str(exc)
        return
    expect = {"n": int, "rate": float, "flag": bool, "label": str, "mode": str, "seed": int}.get(key)
    if key == "cap":
        assert value is None or (isinstance(value, float) and math.isfinite(value))
    else:
        assert type(value) is expect
    if key == "flag":  # true/false/yes/no, or a number equal to 1 or 0
        assert raw.strip().lower() in ("true", "false", "yes", "no") or int(raw) in (0, 1)
    if key == "mode":
        assert value in ("fast", "slow")
    if key == "seed":
        assert 0 <= value <= SEED_MAX
    if key == "rate":
        assert math.isfinite(value)


@FAST
@given(st.integers(-2**70, 2**70))
def test_seeds_are_64_bit_non_negative(seed):
    if 0 <= seed <= SEED_MAX:
        assert check_seed(seed) == seed
    else:
        with pytest.raises(UsageError, match="from 0 to 2\\*\\*63-1"):
            check_seed(seed)


@FAST
@given(text)
def test_accepted_names_are_never_paths(name):
    try:
        check_name(name)
    except UsageError:
        return
    assert "/" not in name and "\\" not in name and ".." not in name and not name.startswith(".")
    assert name.strip() == name and 0 < len(name) <= 100


# ------------------------------------------------------------------ registry entries

toml_values = st.one_of(st.text(string.ascii_letters + ":=,_-/ ", max_size=12), st.integers(-5, 5), st.booleans(),
                        st.lists(st.integers(0, 3), max_size=2), st.floats(allow_nan=False, allow_infinity=False))


def _toml(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return repr(v)


@FAST
@given(st.fixed_dictionaries({}, optional={k: toml_values for k in ("role", "checkpoint", "sampler", "dataset",
                                                                     "teacher", "method", "extra")}),
       st.sampled_from(["teacher", "student", "control"]))
def test_any_model_entry_resolves_or_is_one_line(tmp_path, monkeypatch, entry, role):
    from membench.models.specs import resolve_model

    folder = tmp_path / "reg" / "models"
    folder.mkdir(parents=True, exist_ok=True)
    body = {"role": role, "checkpoint": "models/x", "sampler": "heun", "dataset": "digits:n=16", **entry}
    (folder / "prop.toml").write_text("".join(f"{k} = {_toml(v)}\n" for k, v in body.items()))
    monkeypatch.setenv("MEMBENCH_REGISTRY", str(tmp_path / "reg"))
    try:
        spec = resolve_model("prop")
    except MembenchError as exc:
        assert "\n" not in str(exc)
        if not isinstance(exc, UsageError):  # sampler text parses with the spec rule
            assert isinstance(exc, InvalidInputError)
        return
    assert all(isinstance(getattr(spec, k), str) for k in ("role", "checkpoint", "sampler", "dataset"))
    assert "extra" not in entry
