"""Where membench reads its built-ins and where it writes what a user creates.

* **Built-ins** (registry entries and the committed checkpoints) ship inside the package
  as data (``membench/assets``) and are only ever read.
* **Workspace**: everything a user creates — results, distilled or trained checkpoints,
  their registry entries, study outputs. ``--workspace DIR``, else ``$MEMBENCH_HOME``,
  else ``./membench-workspace`` under the current folder.
* **Cache**: samples, features, downloaded weights. ``--cache-dir``, else
  ``$MEMBENCH_CACHE``, else ``~/.cache/membench``.

Nothing is ever written into the package: a workspace, results or cache folder inside it
is refused (:func:`check_outside_package`); only an explicit ``--out`` (rebuilding a
committed checkpoint in a source checkout) writes there.

Nothing here imports anything heavy: the CLI resolves paths before any work.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from membench.core.errors import MembenchError

DEFAULT_WORKSPACE = "membench-workspace"
HOME_ENV = "MEMBENCH_HOME"
PACKAGE = Path(__file__).resolve().parent.parent  # the installed (or checked-out) membench/
ASSETS = PACKAGE / "assets"


def builtin_registry_dir() -> Path:
    """The built-in registry entries (package data, read-only)."""
    return ASSETS / "registry"


def builtin_models_dir() -> Path:
    """The committed checkpoints and feature networks (package data, read-only)."""
    return ASSETS / "models"


def default_cache_dir() -> Path:
    return Path(os.environ.get("MEMBENCH_CACHE") or (Path.home() / ".cache" / "membench")).expanduser()


def default_workspace() -> Path:
    return Path(os.environ.get(HOME_ENV) or DEFAULT_WORKSPACE).expanduser()


def inside_package(path: str | Path) -> bool:
    """Whether ``path`` is the package folder or lies under it (symlinks resolved)."""
    return Path(path).resolve().is_relative_to(PACKAGE)


def check_outside_package(path: str | Path, what: str, flag: str) -> Path:
    """``path``, or a one-line error when it would write into the installed package."""
    if inside_package(path):
        raise MembenchError(f"{what} {path} is inside the membench package ({PACKAGE}); "
                            f"nothing is written there: pass {flag} DIR")
    return Path(path)


@dataclass(frozen=True)
class Workspace:
    """The user's folder: ``results/``, ``models/``, ``registry/``, ``studies/``."""

    root: Path

    @classmethod
    def resolve(cls, path: str | Path | None = None) -> "Workspace":
        """``path``, else ``$MEMBENCH_HOME``, else ``./membench-workspace``; made absolute so
        that a later change of the current folder does not move it."""
        root = Path(path).expanduser() if path else default_workspace()
        return cls(root.absolute())

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def registry(self) -> Path:
        return self.root / "registry"

    @property
    def studies(self) -> Path:
        return self.root / "studies"


def resolve_results(path: str | Path | None = None, sub: str = "") -> Path:
    """An explicit results folder as given, else ``<workspace>/results[/sub]``."""
    return Path(path) if path is not None else Workspace.resolve().results / sub


@contextmanager
def using(root: str | Path) -> Iterator[Workspace]:
    """Make ``root`` the workspace for the block (the CLI's ``--workspace``).

    It is passed through ``$MEMBENCH_HOME`` so that everything resolving the workspace
    later (the registry folders, library defaults, worker processes started inside the
    block) agrees; the previous value is restored afterwards. Like any environment
    change it is process-wide: not for concurrent threads with different workspaces.
    """
    ws = Workspace.resolve(root)
    old = os.environ.get(HOME_ENV)
    os.environ[HOME_ENV] = str(ws.root)
    try:
        yield ws
    finally:
        if old is None:
            os.environ.pop(HOME_ENV, None)
        else:
            os.environ[HOME_ENV] = old


def registry_dirs() -> list[Path]:
    """Registry folders, first wins: built-ins, the workspace's, then ``$MEMBENCH_REGISTRY``."""
    dirs = [builtin_registry_dir(), Workspace.resolve().registry]
    extra = os.environ.get("MEMBENCH_REGISTRY", "")
    dirs += [Path(p) for p in extra.split(os.pathsep) if p]
    return dirs
