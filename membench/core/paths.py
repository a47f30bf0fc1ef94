"""Checks of the places membench will write to, made before anything is written.

A results folder, a checkpoint folder or an output file the user named is refused in one line
(``OutputError``) when it cannot be written: a file where a folder is needed, a folder where a
file is needed, a folder without write permission. Nothing is created here. What these checks
cannot see in advance (a full disk, a read-only mount seen only on write) is an ``OSError``
that the CLI turns into one line naming the path (``membench.cli.main``).
"""
from __future__ import annotations

import os
from pathlib import Path

from membench.core.errors import OutputError


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output_dir(path: str | Path, what: str = "results folder", flag: str = "--results-dir") -> Path:
    """``path`` if a folder can be written there (existing or to be created), else one line."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path} is not a folder ({flag} must name a folder)")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise OutputError(f"{what} {path}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path}: {base} is not writable")
    return path


def check_output_file(path: str | Path, what: str = "output file", flag: str = "") -> Path:
    """``path`` if a file can be written there, else one line (a folder, an unwritable parent)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder" + (f" ({flag} must name a file)" if flag else ""))
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{what} {path} is not writable")
    check_output_dir(path.parent, f"{what} {path}: its folder", flag)
    return path


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError on a path: ``<problem> (<path>)``."""
    problem = exc.strerror or type(exc).__name__
    where = exc.filename if exc.filename is not None else ""
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    return f"{problem} ({where})" if where else f"{problem}: {exc}"
