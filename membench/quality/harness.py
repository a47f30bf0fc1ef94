"""Quality inside ``membench run``: once per sample set, one result file of its own.

``<results>/quality/<model>/quality-<key>.json`` (apart from ``runs/``, so the detector
results glob never sees it) holds the metrics against each reference and the sample set's
key, which the leaderboard uses to put quality beside every detector row of that same
sample set. A present file is skipped on rerun (``--force`` recomputes).
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from membench.core.io import atomic_write_json
from membench.data import Dataset
from membench.core.errors import UnavailableError
from membench.store.records import _safe, result_key
from membench.quality.evaluate import evaluate
from membench.features.fidelity import resolve_extractor
from membench.quality.metrics import MetricConfig

SCHEMA = 1
DEFAULT_EXTRACTOR = "digits-classifier"  # the registry name of `--quality-extractor digits`


def quality_path(results_dir: Path, model: str, key: str) -> Path:
    return Path(results_dir) / "quality" / _safe(model) / f"quality-{key}.json"


def run_quality(spec: Any, sample_key: str, train: Dataset, load_samples: Callable[[], Any],
                model_record: Callable[[Any], dict[str, Any]], n_samples: int, seed: int, device: str,
                cache_dir: Path | None, results_dir: Path, force: bool = False,
                extractor: str = DEFAULT_EXTRACTOR) -> dict[str, Any] | None:
    """Compute and store the quality of one model's sample set.

    Returns None when done (or already done), or an unstored "unavailable" record (missing
    extractor weights, images the extractor cannot take) for the leaderboard; these are
    retried on the next run. Other bad input raises MembenchError.
    """
    from membench import __version__

    cfg = MetricConfig()
    try:
        ext = resolve_extractor(extractor)
        if not ext.accepts(train.shape):  # e.g. the digits classifier on 32x32 RGB data
            c, h, w = train.shape
            raise UnavailableError(f"the {ext.name} extractor cannot take {c}x{h}x{w} images "
                                   "(use --quality-extractor inception-v3)")
    except UnavailableError as exc:
        warnings.warn(f"quality of {spec.name}: unavailable: {exc}", stacklevel=2)
        return {"sample_key": sample_key, "model": spec.name, "status": "unavailable", "reason": str(exc),
                "extractor": {"name": extractor}}
    key = result_key({"sample_key": sample_key, "train": train.fingerprint(), "extractor": ext.identity(),
                      "config": cfg.to_dict(), "schema": SCHEMA})
    path = quality_path(results_dir, spec.name, key)
    if path.is_file() and not force:
        return None
    samples = load_samples()
    t0 = time.time()
    rec = evaluate(samples.images, train, ext, cfg, device=device, cache_dir=cache_dir, strict=False)
    atomic_write_json(path, {
        "schema": SCHEMA, "kind": "quality", "status": "ok", "model": model_record(samples),
        "sample_key": sample_key, "n_samples": n_samples, "seed": seed, "train_fingerprint": train.fingerprint(),
        "quality": rec, "extractor": rec["extractor"], "quality_seconds": round(time.time() - t0, 3),
        "membench": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    return None


def iter_quality(results_dir: str | Path) -> list[dict[str, Any]]:
    """All readable quality records; corrupt ones are reported and skipped."""
    out = []
    for path in sorted((Path(results_dir) / "quality").glob("*/quality-*.json")):
        try:
            rec = json.loads(path.read_text())
            if not isinstance(rec, dict) or rec.get("schema") != SCHEMA or "quality" not in rec:
                raise ValueError(f"schema {rec.get('schema') if isinstance(rec, dict) else '?'} is not {SCHEMA}")
            out.append(rec)
        except (OSError, ValueError) as exc:
            warnings.warn(f"skipping {path}: corrupt quality file ({exc})", stacklevel=2)
    return out
