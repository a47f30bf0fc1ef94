"""Where membench reads its built-ins and where it writes what a user creates.

* **Built-ins** (registry entries and the committed checkpoints) ship inside the package
  as data (``membench/assets``) and are only ever read.
* **Workspace**: everything a user creates — results, distilled or trained checkpoints,
  their registry entries, study outputs. ``--workspace DIR``, else ``$MEMBENCH_HOME``,
  else ``./membench-workspace`` under the current folder.
* **Cache**: samples, features, downloaded weights. ``--cache-dir``, else
  ``$MEMBENCH_CACHE``, else ``~/.cache/membench``.

Nothing here imports anything heavy: the CLI resolves paths before any work.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_WORKSPACE = "membench-workspace"
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def builtin_registry_dir() -> Path:
    """The built-in registry entries (package data, read-only)."""
    return ASSETS / "registry"


def builtin_models_dir() -> Path:
    """The committed checkpoints and feature networks (package data, read-only)."""
    return ASSETS / "models"


def default_cache_dir() -> Path:
    return Path(os.environ.get("MEMBENCH_CACHE") or (Path.home() / ".cache" / "membench"))


def default_workspace() -> Path:
    return Path(os.environ.get("MEMBENCH_HOME") or DEFAULT_WORKSPACE)


@dataclass(frozen=True)
class Workspace:
    """The user's folder: ``results/``, ``models/``, ``registry/``, ``studies/``."""

    root: Path

    @classmethod
    def resolve(cls, path: str | Path | None = None) -> "Workspace":
        return cls(Path(path) if path else default_workspace())

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


def resolve_results_dir(path: str | Path | None = None) -> Path:
    """An explicit results folder, else the workspace's ``results/``."""
    return Path(path) if path else Workspace.resolve().results


def registry_dirs() -> list[Path]:
    """Registry folders, first wins: built-ins, the workspace's, then ``$MEMBENCH_REGISTRY``."""
    dirs = [builtin_registry_dir(), Workspace.resolve().registry]
    extra = os.environ.get("MEMBENCH_REGISTRY", "")
    dirs += [Path(p) for p in extra.split(os.pathsep) if p]
    return dirs
