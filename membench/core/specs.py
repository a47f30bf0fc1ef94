"""Parsing of `name:k=v,k2=v2` specs, accepted anywhere a registered name is."""
from __future__ import annotations

from typing import Any

from membench.core.errors import UsageError

Scalar = Any


def parse_value(text: str) -> Scalar:
    """Parse an override value without eval: int, float, bool, none, or the string itself."""
    low = text.strip().lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse_spec(spec: str) -> tuple[str, dict[str, Scalar]]:
    """`'digits:n=64,seed=1'` -> `('digits', {'n': 64, 'seed': 1})`."""
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError("empty name")
    name, _, rest = spec.strip().partition(":")
    overrides: dict[str, Scalar] = {}
    if rest:
        for part in rest.split(","):
            if not part.strip():
                continue
            key, eq, value = part.partition("=")
            if not eq or not key.strip():
                raise UsageError(f"bad override {part!r} in {spec!r}: expected key=value")
            overrides[key.strip().replace("-", "_")] = parse_value(value)
    return name.strip(), overrides


def format_spec(name: str, overrides: dict[str, Scalar]) -> str:
    if not overrides:
        return name
    def fmt(v: Scalar) -> str:
        return str(v).lower() if isinstance(v, bool) or v is None else str(v)

    return name + ":" + ",".join(f"{k}={fmt(v)}" for k, v in sorted(overrides.items()))


def split_list(arg: str) -> list[str]:
    """Split a CLI list `a,b:k=1,c` on commas that start a new name (not inside overrides)."""
    out: list[str] = []
    for part in arg.split(","):
        part = part.strip()
        if not part:
            continue
        if out and "=" in part and ":" not in part.split("=")[0]:
            out[-1] += "," + part  # continuation of the previous name's overrides
        else:
            out.append(part)
    return out
