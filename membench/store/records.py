"""One result file per (model, detector, configuration), HELM-style.

``<results>/runs/<model>/<detector>-<key>.json`` holds provenance and aggregates and is
written last, so its presence marks a completed run; the per-sample arrays sit beside it
in ``.npz``. The leaderboard is always rebuilt from these files.
"""
from __future__ import annotations

import hashlib
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from membench.core.io import atomic_save_npz, atomic_write_json
from membench.core.errors import MembenchError

SCHEMA = 1
REQUIRED = ("model", "detector", "n_samples", "seed")  # what every reader (leaderboard, report) relies on
REQUIRED_MODEL = ("name", "role", "sampler", "dataset")


def result_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", name)


@dataclass
class ResultPaths:
    json: Path
    arrays: Path


def result_paths(results_dir: Path, model: str, detector: str, key: str) -> ResultPaths:
    folder, stem = Path(results_dir) / "runs" / _safe(model), f"{_safe(detector)}-{key}"
    # Not with_suffix(): a stem like "l2ratio_threshold=0.25-<key>" has a "." of its own.
    return ResultPaths(folder / f"{stem}.json", folder / f"{stem}.npz")


def lock_path(results_dir: Path, target: str | Path) -> Path:
    """The lock file guarding one result (or ``"leaderboard"``), under ``<results>/.locks``."""
    target = Path(target)
    try:
        rel = target.relative_to(Path(results_dir) / "runs")
    except ValueError:
        rel = Path(target.name)
    return Path(results_dir) / ".locks" / rel.parent / f"{rel.name.removesuffix('.json')}.lock"


def write_result(paths: ResultPaths, record: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    atomic_save_npz(paths.arrays, **arrays)
    atomic_write_json(paths.json, {**record, "schema": SCHEMA, "arrays": paths.arrays.name})


def read_result(path: Path) -> dict[str, Any]:
    try:
        rec = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MembenchError(f"{path}: corrupt result file ({exc})") from None
    if not isinstance(rec, dict) or rec.get("schema") != SCHEMA:
        raise MembenchError(f"{path}: result schema {rec.get('schema') if isinstance(rec, dict) else '?'} is not {SCHEMA}")
    missing = [k for k in REQUIRED if k not in rec]
    missing += [f"model.{k}" for k in REQUIRED_MODEL if not isinstance(rec.get("model"), dict) or k not in rec["model"]]
    missing += [f"detector.{k}" for k in ("name",) if not isinstance(rec.get("detector"), dict) or k not in rec["detector"]]
    if rec.get("status", "ok") == "ok" and not isinstance(rec.get("aggregate"), dict):
        missing.append("aggregate")
    if missing:
        raise MembenchError(f"{path}: corrupt result file (missing {', '.join(missing)})")
    return rec


def read_arrays(json_path: Path) -> dict[str, np.ndarray]:
    rec = read_result(json_path)
    path = Path(json_path).parent / Path(str(rec.get("arrays", ""))).name  # never outside the result's folder
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:  # missing, truncated or pickled arrays: one line, the caller skips the pair
        raise MembenchError(f"{path}: unreadable result arrays ({type(exc).__name__}: {exc})") from None


def iter_results(results_dir: Path, problems: list[str] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """All readable result records; corrupt ones are reported (warning, and appended to
    ``problems`` when given) and skipped."""
    out = []
    for path in sorted((Path(results_dir) / "runs").glob("*/*.json")):
        try:
            out.append((path, read_result(path)))
        except MembenchError as exc:
            if problems is not None:
                problems.append(str(exc))
            warnings.warn(f"skipping {exc}", stacklevel=2)
    return out
