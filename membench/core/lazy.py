"""Lazy re-exports for package ``__init__`` modules (PEP 562).

A subpackage's ``__init__`` declares its registry and stays light, so that listing names
imports no numpy or torch; what it re-exports from heavier modules is imported on first
access (``from membench.detectors import make_detector`` still works).
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Mapping


def lazy_exports(package: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__``: ``name`` is imported from the module ``table[name]`` on first use."""

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(table[name]), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    return __getattr__
