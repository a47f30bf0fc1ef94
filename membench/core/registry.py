"""Name -> component lookup: one ``Registry`` per kind, one rule for every kind.

**Built-ins** are declared beside their code, in the light ``__init__`` of their subpackage,
as lazy ``"module:attr"`` entries that carry a one-line description::

    DETECTORS = Registry("detectors", required={"detect": callable, "higher_is_memorized": bool},
                         builtins={"l2ratio": Lazy("membench.detectors.l2ratio:L2Ratio", "nearest / 2nd-nearest distance ratio")})

Listing names and descriptions imports nothing but that table; the code is imported on
first use, validated, and given its ``registry_name`` (and ``description``).

**Third-party plugins** come from the entry-point groups ``membench.<kind>`` (plus alias
groups such as ``membench.embedders`` for ``features``). A plugin is loaded on first use
of its kind and validated: a required attribute missing (a detector's score direction
``higher_is_memorized``, say) refuses it with one line. A broken or refused plugin, or
one reusing a built-in name, is reported (a warning, and ``membench list`` prints it on
stderr), never fatal, and never replaces a built-in.

**Declarative entries** (kinds with ``folders=True``: models, datasets, detector variants)
are TOML files ``<registry folder>/<kind>/<name>.toml`` (the file stem is the name), read
with the stdlib's safe ``tomllib`` from ``membench.core.workspace.registry_dirs()`` (the
built-ins, the workspace, ``$MEMBENCH_REGISTRY``; first wins) and then from plugin folders:
for these kinds an entry point may load to a registry folder (a path, or a function
returning one) laid out the same way, e.g. ``mypkg/registry/models/my-model.toml``.

**A new kind** is one ``Registry(...)`` declaration beside its code plus one line in
``KINDS`` (so that ``names(kind)``, ``get_class(kind, ...)`` and ``membench list KIND``
find it). Unknown names fail with one line naming the nearest known names.
"""
from __future__ import annotations

import importlib
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Sequence, Union

from membench.core.errors import InvalidInputError, MembenchError, UnknownNameError, UsageError
from membench.core.lazy import lazy_exports

# kind -> "module:attr" of its Registry (declared beside the code it names)
KINDS: dict[str, str] = {
    "models": "membench.models:MODELS",
    "datasets": "membench.data:DATASETS",
    "samplers": "membench.models.samplers:SAMPLERS",
    "detectors": "membench.detectors:DETECTORS",
    "features": "membench.features:FEATURES",
    "distillers": "membench.training.distillers:DISTILLERS",
    "studies": "membench.studies:STUDIES",
    "weights": "membench.weights:WEIGHTS",
    "executors": "membench.executors:EXECUTORS",
}
KIND_ALIASES: dict[str, str] = {"embedders": "features"}  # older names of kinds

Check = Union[type, Callable[[Any], bool]]


class Lazy(NamedTuple):  # a NamedTuple, not a dataclass: `--help` should not pay for inspect
    """A built-in entry: where its code lives and one line saying what it is.

    ``tags`` mark entries for a caller without importing them (a study tagged
    ``"command"`` is also a top-level CLI command, ``membench sweep``).
    """

    target: str  # "package.module:attr"
    description: str
    tags: tuple[str, ...] = ()

    def load(self) -> Any:
        module, _, attr = self.target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


def _describe_check(check: Check) -> str:
    return check.__name__ if isinstance(check, type) else "callable" if check is callable else "valid"


def _passes(check: Check, value: Any) -> bool:
    # a bool is an int: a type check is exact about it so that 0/1 do not pass for a bool
    if isinstance(check, type):
        return isinstance(value, check) and (check is bool or not isinstance(value, bool))
    return bool(check(value))


def _is_folder(obj: Any) -> bool:
    return isinstance(obj, (str, os.PathLike))


def one_line(text: str, limit: int = 300) -> str:
    first = (str(text).strip().splitlines() or [""])[0]
    return first if len(first) <= limit else first[: limit - 3] + "..."


class _Plugins:
    """What the entry points of one kind gave: valid objects, registry folders and problems."""

    def __init__(self) -> None:
        self.objects: dict[str, Any] = {}
        self.origins: dict[str, str] = {}  # name -> "module:attr"
        self.folders: list[Path] = []
        self.errors: list[str] = []


class Registry:
    """The components of one kind: built-ins, plugins, runtime additions and TOML entries.

    ``required`` maps attribute names to a check (a type, or a predicate such as
    ``callable``), optionally with a hint: ``{"higher_is_memorized": (bool, "the score
    direction")}``; every built-in and plugin must pass it. ``groups`` are the entry-point
    groups, the first being ``membench.<kind>``. ``folders``: the kind also has TOML
    entries. ``code=False``: only TOML entries (plugins must be folders). ``describe``:
    ``"module:attr"`` of ``f(name) -> str`` for TOML entries (default: their
    ``description`` key).
    """

    def __init__(self, kind: str, *, builtins: Mapping[str, Lazy] | None = None, noun: str | None = None,
                 required: Mapping[str, Check | tuple[Check, str]] | None = None, groups: Sequence[str] = (),
                 folders: bool = False, code: bool = True, describe: str | None = None) -> None:
        self.kind = kind
        self.noun = noun or kind[:-1]
        self.builtins: dict[str, Lazy] = dict(builtins or {})
        self.required: dict[str, tuple[Check, str]] = {
            k: (v if isinstance(v, tuple) else (v, "")) for k, v in (required or {}).items()}
        self.groups = tuple(groups) or (f"membench.{kind}",)
        self.folders = folders
        self.code = code
        self.describer = describe
        self._loaded: dict[str, Any] = {}  # built-ins already imported
        self._added: dict[str, Any] = {}  # registered at runtime (scripts, notebooks)
        self._plugins: _Plugins | None = None  # None: entry points not read yet
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self.builtins)} built-ins)"

    # ------------------------------------------------------------------ validation

    def problem(self, obj: Any) -> str | None:
        """Why ``obj`` cannot be a component of this kind (one line), or None."""
        for attr, (check, hint) in self.required.items():
            why = f" ({_describe_check(check)}: {hint})" if hint else f" ({_describe_check(check)})"
            if not hasattr(obj, attr):
                return f"missing attribute {attr!r}{why}"
            value = getattr(obj, attr)
            if not _passes(check, value):
                return f"attribute {attr!r} must be {_describe_check(check)}, got {type(value).__name__}{why}"
        return None

    def _adopt(self, name: str, obj: Any, description: str = "") -> None:
        """Give a loaded component the name it is registered under (and its description)."""
        own = getattr(obj, "__dict__", {})
        for attr, value in (("registry_name", name), ("description", description)):
            if value and attr not in own:
                try:
                    setattr(obj, attr, value)
                except (AttributeError, TypeError):  # e.g. a built-in function
                    pass

    # ------------------------------------------------------------------ plugins

    def _entry_points(self) -> list[Any]:
        from importlib import metadata

        seen: dict[str, Any] = {}
        for group in self.groups:
            for ep in metadata.entry_points(group=group):
                seen.setdefault(ep.name, ep)  # the kind's own group first, then alias groups
        return list(seen.values())

    def plugins(self) -> _Plugins:
        """Load this kind's entry points once per process (or after ``reload_plugins``)."""
        with self._lock:
            if self._plugins is not None:
                return self._plugins
            state = _Plugins()
            self._plugins = state
            for ep in self._entry_points():
                msg = self._load_plugin(ep, state)
                if msg:
                    state.errors.append(msg)
                    warnings.warn(msg, stacklevel=3)
            return state

    def _load_plugin(self, ep: Any, state: _Plugins) -> str | None:
        where = f"plugin {self.noun} {ep.name!r} ({ep.value})"
        try:
            obj = ep.load()
            if self.folders and callable(obj) and not isinstance(obj, type) and not self.code:
                obj = obj()  # a function returning the registry folder
        except Exception as exc:  # a broken plugin must not break membench
            return f"{where} failed to load: {type(exc).__name__}: {one_line(exc)}"
        if self.folders and _is_folder(obj):
            folder = Path(obj)
            if not (folder / self.kind).is_dir():
                return f"{where} refused: {folder / self.kind} is not a folder of {self.kind} entries"
            state.folders.append(folder)
            return None
        if not self.code:
            return f"{where} refused: a {self.groups[0]} plugin must point at a registry folder (a path)"
        if ep.name in self.builtins or ep.name in state.objects:
            return f"{where} tries to override the {self.noun} {ep.name!r}; ignored"
        bad = self.problem(obj)
        if bad:
            return f"{where} refused: {bad}"
        self._adopt(ep.name, obj, _doc_line(obj))
        state.objects[ep.name] = obj
        state.origins[ep.name] = ep.value
        return None

    def reload_plugins(self) -> None:
        """Forget the loaded plugins: entry points are read again on next use."""
        with self._lock:
            self._plugins = None

    def plugin_errors(self) -> list[str]:
        return list(self.plugins().errors)

    # ------------------------------------------------------------------ declarative entries

    def entry_files(self) -> dict[str, Path]:
        """TOML entries: name -> path (registry folders in order, then plugin folders; first wins)."""
        if not self.folders:
            return {}
        from membench.core.workspace import registry_dirs

        out: dict[str, Path] = {}
        for d in [*registry_dirs(), *self.plugins().folders]:
            folder = Path(d) / self.kind
            if folder.is_dir():
                for f in sorted(folder.glob("*.toml")):
                    out.setdefault(f.stem, f)
        return out

    def read_entry(self, name: str) -> dict[str, Any]:
        """The TOML entry ``name`` as a dict, with ``name`` and ``_entry_path`` added."""
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib

        files = self.entry_files()
        if name not in files:
            raise self.unknown(name)
        path = files[name]
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except UnicodeDecodeError:
            raise InvalidInputError(f"registry entry {path}: not UTF-8 text") from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInputError(f"registry entry {path}: cannot parse: {one_line(exc)}") from None
        data["name"] = name
        data["_entry_path"] = str(path)
        return data

    # ------------------------------------------------------------------ lookup

    def add(self, name: str, obj: Any) -> Any:
        """Register ``obj`` as ``name`` at runtime (scripts, notebooks); validated like a plugin."""
        from membench.core.options import check_name

        check_name(name, f"{self.noun} name")
        with self._lock:
            existing = self.find(name, plugins=False)
            if existing is not None and existing is not obj:
                raise MembenchError(f"{self.noun} name {name!r} is already registered by {existing!r}")
            bad = self.problem(obj)
            if bad:
                raise MembenchError(f"{self.noun} {name!r} ({obj!r}) refused: {bad}")
            self._adopt(name, obj, _doc_line(obj))
            self._added[name] = obj
            return obj

    def find(self, name: str, plugins: bool = True) -> Any | None:
        """The code registered as ``name`` (imported on first use), or None."""
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
            lazy = self.builtins.get(name)
            if lazy is not None:
                obj = lazy.load()
                bad = self.problem(obj)
                if bad:  # a bug in membench, said in one line all the same
                    raise MembenchError(f"built-in {self.noun} {name!r} ({lazy.target}): {bad}")
                self._adopt(name, obj, lazy.description)
                self._loaded[name] = obj
                return obj
            if name in self._added:
                return self._added[name]
            return self.plugins().objects.get(name) if plugins else None

    def get(self, name: str) -> Any:
        """The code registered as ``name``; unknown names raise one line with the nearest names."""
        obj = self.find(name)
        if obj is None:
            raise self.unknown(name)
        return obj

    def names(self, tag: str | None = None) -> list[str]:
        """Every name (built-in, runtime, valid plugin, TOML entry); with ``tag``: built-ins so tagged."""
        if tag is not None:
            return sorted(n for n, lazy in self.builtins.items() if tag in lazy.tags)
        found = set(self.builtins) | set(self._added)
        if self.code:
            found |= set(self.plugins().objects)
        found |= set(self.entry_files())
        return sorted(found)

    def describe(self, name: str) -> str:
        """One line about ``name``; for built-ins without importing their code."""
        if name in self.builtins:
            return self.builtins[name].description
        obj = self.find(name)
        if obj is not None:
            return getattr(obj, "description", "") or _doc_line(obj)
        if self.describer:
            return Lazy(self.describer, "").load()(name)
        entry = self.read_entry(name)
        return str(entry.get("description") or entry["_entry_path"])

    def listing(self) -> list[tuple[str, str]]:
        """(name, one line) for every name; plugins are marked, unreadable entries say ``BROKEN``."""
        rows = []
        for name in self.names():
            try:
                text = self.describe(name)
            except MembenchError as exc:
                text = f"BROKEN: {exc}"
            origin = self.origin(name)
            rows.append((name, f"{text}  [{origin}]" if origin.startswith("plugin") else text))
        return rows

    def origin(self, name: str) -> str:
        """Where ``name`` comes from: built-in, runtime, plugin ``module:attr`` or a TOML file."""
        if name in self.builtins:
            return "built-in"
        if name in self._added:
            return "runtime"
        plugins = self.plugins()
        if name in plugins.origins:
            return f"plugin {plugins.origins[name]}"
        return str(self.entry_files().get(name, "?"))

    def unknown(self, name: str, extra: Sequence[str] = (), noun: str | None = None) -> UnknownNameError:
        return unknown_name(noun or self.noun, name, sorted({*self.names(), *extra}))

    # ------------------------------------------------------------------ construction

    def instantiate(self, name: str, cls: Any, params: Mapping[str, Any]) -> Any:
        """``cls(**params)`` with one-line errors for unknown or bad options.

        Options are a dataclass's fields, else the keyword parameters of ``cls`` (a loader
        function, a plain class), each typed by its annotation (``membench.core.options``: the one
        rule for int, float, bool, str and choices, with declared ranges).
        """
        from membench.core.options import coerce_options

        valid = option_names(cls)
        bad = set(params) - valid if valid is not None else set()
        if bad:
            raise UsageError(f"{self.noun} {name!r}: unknown option(s) {sorted(bad)}; options: {sorted(valid or ())}")
        params = coerce_options(f"{self.noun} {name!r}", params, cls)
        try:
            return cls(**params)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{self.noun} {name!r}: {one_line(exc)}") from None

    def create(self, spec: str, **options: Any) -> Any:
        """Build ``name`` or ``name:k=v,...`` (keyword ``options`` win) and run its ``check()``."""
        from membench.core.specs import parse_spec

        name, overrides = parse_spec(spec)
        obj = self.instantiate(name, self.get(name), {**overrides, **options})
        if callable(getattr(obj, "check", None)):
            obj.check()
        return obj


def option_names(cls: Any) -> set[str] | None:
    """Accepted keyword options of ``cls``; None when it takes any (``**kwargs``)."""
    import dataclasses
    import inspect

    if dataclasses.is_dataclass(cls):
        return {f.name for f in dataclasses.fields(cls) if f.init}
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return set()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _doc_line(obj: Any) -> str:
    import inspect

    own = getattr(obj, "__dict__", {}).get("description")
    if isinstance(own, str) and own:
        return own
    doc = inspect.getdoc(obj) or ""
    # dataclasses make up "Name(field: type = ...)" when a class has no docstring
    return "" if doc.startswith(f"{getattr(obj, '__name__', '?')}(") else one_line(doc)


def unknown_name(noun: str, name: str, candidates: Sequence[str]) -> UnknownNameError:
    """``unknown <noun> 'x'; did you mean ...? (known: ...)`` as one line."""
    import difflib

    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    listing = ", ".join(candidates) if candidates else "none registered"
    return UnknownNameError(f"unknown {noun} {name!r}{hint} (known: {listing})")


# ---------------------------------------------------------------------- by kind name


def registry(kind: str) -> Registry:
    """The registry of ``kind`` (``KINDS``; ``embedders`` is ``features``)."""
    kind = KIND_ALIASES.get(kind, kind)
    if kind not in KINDS:
        raise MembenchError(f"unknown registry kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    return Lazy(KINDS[kind], "").load()


def names(kind: str) -> list[str]:
    """All names of ``kind`` (built-in, plugin and declarative), without importing built-ins."""
    return registry(kind).names()


def get_class(kind: str, name: str) -> Any:
    """The implementation registered as ``name`` among ``kind`` (imported on first use)."""
    return registry(kind).get(name)


def entry_files(kind: str) -> dict[str, Path]:
    return registry(kind).entry_files()


def read_entry(kind: str, name: str) -> dict[str, Any]:
    return registry(kind).read_entry(name)


def plugin_errors(kind: str) -> list[str]:
    return registry(kind).plugin_errors()


def instantiate(kind: str, name: str, cls: Any, params: dict[str, Any]) -> Any:
    return registry(kind).instantiate(name, cls, params)


def unknown(kind: str, name: str, candidates: Sequence[str]) -> UnknownNameError:
    return unknown_name(registry(kind).noun, name, list(candidates))


# `registry_dirs` (membench.core.workspace) is still importable from here, lazily: the
# workspace module pulls in dataclasses, which `--help` need not pay for.
__getattr__ = lazy_exports(__name__, {"registry_dirs": "membench.core.workspace"})


def register(kind: str, name: str) -> Callable[[Any], Any]:
    """Decorator for scripts and notebooks: ``@register("detectors", "mine")``.

    Built-ins do not use it (they are declared lazily beside their code) and packages use
    entry points; this is for code that runs membench in-process.
    """
    def deco(obj: Any) -> Any:
        return registry(kind).add(name, obj)

    return deco
