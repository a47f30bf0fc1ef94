"""Name -> component lookup, one rule for every kind.

* Built-in classes register with ``@register(kind, name)``; the table ``BUILTINS`` maps
  each built-in name to ``"module:attr"`` so listing and ``--help`` import nothing heavy.
* Third-party classes come from the entry-point group ``membench.<kind>`` (loaded lazily;
  a broken plugin is reported as a warning; built-ins are never silently overridden).
* Declarative entries are TOML files ``registry/<kind>/<name>.toml`` (the file stem is the
  name), read with the stdlib's safe ``tomllib``. Extra registry folders can be added with
  the ``MEMBENCH_REGISTRY`` environment variable (``os.pathsep``-separated).
* Unknown names fail with one line naming the nearest known names.
"""
from __future__ import annotations

import difflib
import importlib
import os
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from membench.core.errors import MembenchError, UnknownNameError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CODE_KINDS = ("detectors", "distillers", "embedders", "samplers", "studies")
ENTRY_KINDS = ("models", "datasets", "detectors")  # kinds that may have declarative files

# name -> "module:attr" of the built-in implementations (kept in sync by a test).
BUILTINS: dict[str, dict[str, str]] = {
    "detectors": {
        "l2ratio": "membench.detectors.l2ratio:L2Ratio",
        # issue 4: detectors beyond pixels
        "carlini": "membench.detectors.carlini:CalibratedL2",
        "embedsim": "membench.detectors.embedsim:EmbeddingSimilarity",
        "sscd": "membench.detectors.embedsim:SSCDSimilarity",
        "clip": "membench.detectors.embedsim:ClipSimilarity",
        "digits-sim": "membench.detectors.embedsim:DigitsSimilarity",
        "sharpness": "membench.detectors.sharpness:Sharpness",
    },
    "distillers": {
        "cd": "membench.training.distillers.cd:ConsistencyDistillation",
        "ct": "membench.training.distillers.ct:ConsistencyTraining",
        "pd": "membench.training.distillers.pd:ProgressiveDistillation",
    },
    "embedders": {
        "pixels": "membench.features.pixels:PixelEmbedder",
        "sscd": "membench.features.sscd:SSCDEmbedder",
        "clip": "membench.features.clip:ClipEmbedder",
        "digits": "membench.features.digits:DigitsEmbedder",
    },
    "samplers": {
        "heun": "membench.models.samplers.karras:HeunSampler",
        "euler": "membench.models.samplers.karras:EulerSampler",
        "consistency": "membench.models.samplers.consistency:ConsistencySampler",
    },
    # issue 7: scientific studies (`membench study NAME`)
    "studies": {
        "rfnn": "membench.studies.rfnn_study:RFNNStudy",
        "distill-length": "membench.studies.distill_length:DistillLengthStudy",
        "training-time": "membench.studies.training_time:TrainingTimeStudy",
        "sweep": "membench.studies.sweep:SweepStudy",
    },
}

_REGISTERED: dict[str, dict[str, Any]] = {k: {} for k in CODE_KINDS}
_PLUGIN_ERRORS: dict[str, list[str]] = {k: [] for k in CODE_KINDS}
_PLUGINS_LOADED: set[str] = set()

def register(kind: str, name: str) -> Callable[[Any], Any]:
    """Class decorator: make ``cls`` findable as ``name`` among ``kind``."""
    if kind not in _REGISTERED:
        raise ValueError(f"unknown registry kind {kind!r}")

    def deco(cls: Any) -> Any:
        existing = _REGISTERED[kind].get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"{kind} name {name!r} is already registered by {existing!r}")
        _REGISTERED[kind][name] = cls
        cls.registry_name = name
        return cls

    return deco


from membench.core.workspace import registry_dirs  # noqa: E402  (re-exported)


def _entry_points(kind: str) -> list[metadata.EntryPoint]:
    return list(metadata.entry_points(group=f"membench.{kind}"))


def _load_plugins(kind: str) -> None:
    if kind in _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED.add(kind)
    for ep in _entry_points(kind):
        if ep.name in BUILTINS.get(kind, {}):
            msg = f"plugin {ep.value!r} tries to override built-in {kind[:-1]} {ep.name!r}; ignored"
            _PLUGIN_ERRORS[kind].append(msg)
            warnings.warn(msg, stacklevel=2)
            continue
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not break membench
            msg = f"plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}"
            _PLUGIN_ERRORS[kind].append(msg)
            warnings.warn(msg, stacklevel=2)
            continue
        _REGISTERED[kind].setdefault(ep.name, obj)
        getattr(obj, "__dict__", {}).get("registry_name") or _set_name(obj, ep.name)


def _set_name(obj: Any, name: str) -> None:
    try:
        obj.registry_name = name
    except (AttributeError, TypeError):
        pass


def entry_files(kind: str) -> dict[str, Path]:
    """Declarative entries of ``kind``: name -> TOML path (first registry folder wins)."""
    out: dict[str, Path] = {}
    for d in registry_dirs():
        folder = d / kind
        if folder.is_dir():
            for f in sorted(folder.glob("*.toml")):
                out.setdefault(f.stem, f)
    return out


def read_entry(kind: str, name: str) -> dict[str, Any]:
    files = entry_files(kind)
    if name not in files:
        raise unknown(kind, name, names(kind))
    path = files[name]
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MembenchError(f"registry entry {path}: cannot parse: {exc}") from None
    data["name"] = name
    data["_entry_path"] = str(path)
    return data


def names(kind: str) -> list[str]:
    """All names of ``kind`` (built-in, plugin and declarative), without importing built-ins."""
    found: set[str] = set(BUILTINS.get(kind, {}))
    if kind in CODE_KINDS:
        found |= set(_REGISTERED[kind])
        found |= {ep.name for ep in _entry_points(kind)}
    if kind in ENTRY_KINDS:
        found |= set(entry_files(kind))
    return sorted(found)


def unknown(kind: str, name: str, candidates: list[str]) -> UnknownNameError:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    listing = ", ".join(candidates) if candidates else "none registered"
    return UnknownNameError(f"unknown {kind[:-1]} {name!r}{hint} (known: {listing})")


def get_class(kind: str, name: str) -> Any:
    """The implementation registered as ``name`` among ``kind`` (imports it on first use)."""
    if kind not in CODE_KINDS:
        raise ValueError(f"{kind} has no code registry")
    if name in _REGISTERED[kind]:
        return _REGISTERED[kind][name]
    target = BUILTINS[kind].get(name)
    if target is not None:
        module, _, attr = target.partition(":")
        importlib.import_module(module)  # its @register decorator fills _REGISTERED
        if name not in _REGISTERED[kind]:
            _REGISTERED[kind][name] = getattr(sys.modules[module], attr)
        return _REGISTERED[kind][name]
    _load_plugins(kind)
    if name in _REGISTERED[kind]:
        return _REGISTERED[kind][name]
    raise unknown(kind, name, names(kind))


def instantiate(kind: str, name: str, cls: Any, params: dict[str, Any]) -> Any:
    """``cls(**params)`` for a dataclass component, with one-line errors for unknown or bad options."""
    import dataclasses

    valid = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    bad = set(params) - valid
    if bad:
        raise MembenchError(f"{kind[:-1]} {name!r}: unknown option(s) {sorted(bad)}; options: {sorted(valid)}")
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise MembenchError(f"{kind[:-1]} {name!r}: {exc}") from None


def plugin_errors(kind: str) -> list[str]:
    _load_plugins(kind)
    return list(_PLUGIN_ERRORS[kind])
