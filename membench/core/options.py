"""The one typing rule for user-given values: component options, seeds, counts and names.

Options (``l2ratio:threshold=0.25``, ``cd:iterations=500``, ``digits:n=64``) are typed by the
component's own annotations: a dataclass's fields, else a loader's keyword parameters.

* ``int``: an integer (``1e3`` and ``2.5`` are refused, ``true`` too);
* ``float``: a finite number;
* ``bool``: ``true/false/yes/no/1/0`` only;
* ``str``: the text as written; ``Literal["a", "b"]``: one of the choices;
* ``X | None``: also ``none``; other annotations (lists, dicts, ``Any``): the parsed value.

Ranges are declared beside the field, ``threshold: float = field(default=..., metadata=bounds(0, 1))``
(``lo``/``hi`` inclusive unless ``open_lo``/``open_hi``), or in :data:`RANGES` for a name shared
by every component: every option called ``seed`` is a seed (0 .. 2**63-1), every ``iterations``
or ``batch_size`` at least 1.
"""
from __future__ import annotations

import math
import re
import types
import typing
from typing import Any, Mapping

from membench.core.errors import UsageError

SEED_MAX = 2**63 - 1  # seeds feed numpy's and torch's generators: non-negative, at most 64 bits
TRUE, FALSE = ("true", "yes", "1"), ("false", "no", "0")
# A user-given registry name becomes a file name (models/<name>, registry/models/<name>.toml):
# letters, digits and ``._+-``, starting with a letter or digit, never a path.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")

# Ranges that hold for an option of this name in every component (a field's own metadata wins).
RANGES: dict[str, dict[str, Any]] = {
    "seed": {"lo": 0, "hi": SEED_MAX},
    "iterations": {"lo": 0},  # 0: the student is the teacher copy (tests, snapshots)
    "iterations_per_stage": {"lo": 0},
    "batch_size": {"lo": 1},
    "steps": {"lo": 1},
    "levels": {"lo": 1},
    "lr": {"lo": 0, "open_lo": True},
}


def bounds(lo: float | None = None, hi: float | None = None, open_lo: bool = False, open_hi: bool = False
           ) -> dict[str, Any]:
    """Field metadata declaring an option's range: ``field(default=0.5, metadata=bounds(0, 1))``."""
    return {"lo": lo, "hi": hi, "open_lo": open_lo, "open_hi": open_hi}


def check_name(name: Any, what: str = "name") -> str:
    """A user-given registry name (``--name``), refused in one line unless it matches NAME_RE."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name:
        raise UsageError(f"{what} {name!r} is not a valid name: use letters, digits and ._+- "
                         "(at most 100, starting with a letter or digit; no path)")
    return name


def check_seed(seed: Any, what: str = "--seed") -> int:
    """A seed: an integer in 0 .. 2**63-1."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise UsageError(f"{what} must be an integer from 0 to 2**63-1, got {seed!r}")
    return seed


def check_count(n: Any, what: str = "--n-samples", item_bytes: int | None = None) -> int:
    """A positive integer; with ``item_bytes`` (one item's size) also one that fits in memory."""
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise UsageError(f"{what} must be a positive integer, got {n!r}")
    if item_bytes:
        check_fits_memory(n * item_bytes, f"{what} {n}")
    return n


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux: MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits_memory(nbytes: int, what: str) -> None:
    """Refuse, before allocating, an array larger than the memory available."""
    avail = available_memory()
    if avail is not None and nbytes > avail:
        raise UsageError(f"{what} needs {_gib(nbytes)} of memory for the images alone, more than the "
                         f"{_gib(avail)} available; use fewer")


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB"


# ---------------------------------------------------------------------- component options


def option_types(cls: Any) -> dict[str, tuple[Any, Mapping[str, Any]]]:
    """name -> (annotation, metadata) of the options of ``cls`` (dataclass fields or keyword parameters)."""
    import dataclasses
    import inspect

    target = cls
    if not dataclasses.is_dataclass(cls) and not inspect.isfunction(cls) and isinstance(cls, type):
        target = cls.__init__
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # an annotation that does not resolve: such options are not typed
        hints = {}
    if dataclasses.is_dataclass(cls):
        return {f.name: (hints.get(f.name, Any), f.metadata) for f in dataclasses.fields(cls) if f.init}
    return {name: (hint, {}) for name, hint in hints.items() if name != "return"}


def coerce_options(owner: str, params: Mapping[str, Any], cls: Any) -> dict[str, Any]:
    """``params`` typed by the annotations of ``cls``; a value of the wrong type or out of range is
    one line naming ``owner`` (e.g. ``detector 'l2ratio'``), the option and what it takes."""
    types_ = option_types(cls)
    out = {}
    for key, value in params.items():
        hint, meta = types_.get(key, (Any, {}))
        out[key] = coerce_value(owner, key, value, hint, meta)
    return out


def coerce_value(owner: str, key: str, value: Any, hint: Any, meta: Mapping[str, Any] = {}) -> Any:
    try:
        value = _coerce(value, hint)
    except _Refused as exc:
        raise UsageError(f"{owner}: option {key}={_show(value)}: {exc}") from None
    rng = {**RANGES.get(key, {}), **{k: v for k, v in meta.items() if k in ("lo", "hi", "open_lo", "open_hi")}}
    if rng and isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_range(owner, key, value, rng)
    return value


class _Refused(Exception):
    pass


def _show(value: Any) -> str:
    text = str(value).lower() if isinstance(value, bool) or value is None else str(value)
    return text.encode("unicode_escape").decode("ascii")  # one line, whatever the user typed


def _coerce(value: Any, hint: Any) -> Any:
    if hint is Any or hint is None or isinstance(hint, typing.TypeVar):
        return value
    origin = typing.get_origin(hint)
    if origin is typing.Union or (types.UnionType is not None and origin is types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        last: _Refused | None = None
        for opt in (o for o in options if o is not type(None)):
            try:
                return _coerce(value, opt)
            except _Refused as exc:
                last = exc
        raise last or _Refused("unsupported value")
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        for c in choices:
            if _show(value) == _show(c):
                return c
        raise _Refused(f"must be one of {', '.join(_show(c) for c in choices)}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int):  # `1`, `0` (parsed as numbers)
            if value in (0, 1):
                return bool(value)
            raise _Refused("must be true or false (also yes/no, 1/0)")
        text = _show(value).strip().lower()
        if text in TRUE:
            return True
        if text in FALSE:
            return False
        raise _Refused("must be true or false (also yes/no, 1/0)")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Refused("must be an integer")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _Refused("must be a finite number")
            return float(value)
        raise _Refused("must be a number")
    if hint is str:
        if value is None or isinstance(value, (dict, list, tuple)):
            raise _Refused("must be text")
        return (str(value).lower() if isinstance(value, bool) else str(value)) if not isinstance(value, str) else value
    return value  # containers, classes, ...: the component checks them


def _check_range(owner: str, key: str, value: float, rng: Mapping[str, Any]) -> None:
    lo, hi = rng.get("lo"), rng.get("hi")
    low_bad = lo is not None and (value <= lo if rng.get("open_lo") else value < lo)
    high_bad = hi is not None and (value >= hi if rng.get("open_hi") else value > hi)
    if low_bad or high_bad:
        if key == "seed":
            span = "from 0 to 2**63-1"
        elif hi is None:
            span = f"greater than {lo}" if rng.get("open_lo") else f"at least {lo}"
        elif lo is None:
            span = f"less than {hi}" if rng.get("open_hi") else f"at most {hi}"
        else:
            span = f"in {'(' if rng.get('open_lo') else '['}{lo}, {hi}{')' if rng.get('open_hi') else ']'}"
        raise UsageError(f"{owner}: option {key}={_show(value)} is out of range: must be {span}")
