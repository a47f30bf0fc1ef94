"""Quality of one set of generated images against the references of its training data.

References are reported separately, never pooled:

* ``heldout``: the dataset's held-out split, unseen by the generative model (and by the
  digits classifier): the fair reference.
* ``train``: the training images. Quality against them *rewards memorization* (a model that
  copies its training set scores a perfect FID here), so the two must not be confused.

The result for a (generated images, references, extractor, configuration) tuple is cached
under ``<cache>/quality/metrics/<key>.json``, the key hashing the uint8 pixels of all sets.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from membench.core.io import atomic_write_json
from membench.data import Dataset
from membench.data.validate import check_same_shape
from membench.core.errors import MembenchError
from membench.features.fidelity import ExtractorSpec, resolve_extractor
from membench.quality.features import cached_features, check_images, features_key, to_uint8
from membench.quality.metrics import MetricConfig, quality_metrics

QUALITY_FORMAT = 1
REFERENCES = ("heldout", "train")


def reference_images(train: Dataset, which: str) -> np.ndarray | None:
    if which == "heldout":
        return train.heldout
    if which == "train":
        return train.images
    raise MembenchError(f"unknown quality reference {which!r}; known: {', '.join(REFERENCES)}")


def _metrics_key(parts: dict[str, Any]) -> str:
    from membench.core.io import json_digest

    return json_digest(parts, 24)


def evaluate(images: np.ndarray, train: Dataset, extractor: str | ExtractorSpec = "digits",
             cfg: MetricConfig | None = None, references: Sequence[str] = REFERENCES, device: str = "cpu",
             cache_dir: str | Path | None = None, strict: bool = True) -> dict[str, Any]:
    """Quality metrics of ``images`` ((N, C, H, W) in [-1, 1]) against each reference of ``train``.

    Returns ``{"extractor", "config", "references": {ref: {...}}, "metrics": {ref: {...}}, "notes"}``.
    ``strict``: bad or too small sets raise MembenchError (a one-line reason); otherwise a
    metric that cannot be computed is NaN and its reason is listed in ``notes``. ``extractor``
    is any name of the feature registry (``membench list features``) with options, or
    ``digits`` (the digits classifier), or a resolved ``ExtractorSpec``.
    """
    from membench.core.workspace import default_cache_dir

    cfg = cfg or MetricConfig()
    ext = resolve_extractor(extractor) if isinstance(extractor, str) else extractor
    references = list(references)
    if not references or set(references) - set(REFERENCES):
        raise MembenchError(f"quality references must be among {', '.join(REFERENCES)}, got {references}")
    images = np.asarray(images)
    check_images(images, ext, "samples")
    check_same_shape(images, train)
    refs: dict[str, np.ndarray] = {}
    notes: list[str] = []
    for name in references:
        arr = reference_images(train, name)
        if arr is None or len(arr) == 0:
            msg = f"{train.spec} has no {name} images to compare with"
            if strict:
                raise MembenchError(msg)
            notes.append(msg)
            continue
        refs[name] = np.asarray(arr)
    if strict:  # too few images: say so before any feature extraction (Inception is slow on a CPU)
        from membench.quality.metrics import count_problem

        for name, arr in refs.items():
            for metric in cfg.metrics:
                problem = count_problem(metric, {"the sample set": len(images), f"the {name} reference ({train.spec})":
                                                 len(arr)}, ext.dim(train.shape), cfg)
                if problem:
                    raise MembenchError(problem)
    cache_root = Path(cache_dir or default_cache_dir())
    gen_key = features_key(to_uint8(images), ext)
    ref_keys = {name: features_key(to_uint8(arr), ext) for name, arr in refs.items()}
    key = _metrics_key({"format": QUALITY_FORMAT, "generated": gen_key, "references": ref_keys,
                        "extractor": ext.identity(), "config": cfg.to_dict()})
    path = cache_root / "quality" / "metrics" / f"{key}.json"
    if path.is_file():
        try:
            rec = json.loads(path.read_text())
            if rec.get("format") == QUALITY_FORMAT:
                all_notes = rec["notes"] + [n for m in rec["metrics"].values() for n in m["notes"]]
                if strict and all_notes:
                    raise MembenchError(all_notes[0])
                return rec
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            pass  # corrupt cache entry: recomputed
    t0 = time.time()
    gen = cached_features(images, ext, device, cache_root, "samples")
    metrics: dict[str, Any] = {}
    ref_info: dict[str, Any] = {}
    for name, arr in refs.items():
        feats = cached_features(arr, ext, device, cache_root, f"{name} reference")
        label = f"the {name} reference ({train.spec})"
        metrics[name] = quality_metrics(gen, feats, cfg, strict=strict, names=("the sample set", label))
        ref_info[name] = {"dataset": train.spec, "n": len(arr), "content_key": ref_keys[name]}
    rec = {"format": QUALITY_FORMAT, "extractor": ext.identity(), "config": cfg.to_dict(), "n_samples": len(images),
           "samples_content_key": gen_key, "references": ref_info, "metrics": metrics, "notes": notes,
           "seconds": round(time.time() - t0, 3)}
    atomic_write_json(path, rec)
    return rec


def summary(rec: dict[str, Any]) -> dict[str, Any]:
    """Flat columns (the leaderboard's names) from an ``evaluate`` record: ``fid_heldout``, ..."""
    nan = float("nan")
    out: dict[str, Any] = {"quality_extractor": rec["extractor"]["name"]}
    notes = list(rec.get("notes", []))
    for ref in REFERENCES:
        m = rec["metrics"].get(ref, {})
        notes += [f"{ref}: {n}" for n in m.get("notes", [])]
        out[f"fid_{ref}"] = m.get("fid", nan)
        out[f"kid_{ref}"] = m.get("kid", nan)
        out[f"kid_{ref}_std"] = m.get("kid_std", nan)
        for frac in ("precision", "recall"):
            f = m.get(frac, {})
            out[f"{frac}_{ref}"] = f.get("value", nan)
            out[f"{frac}_{ref}_ci_low"] = f.get("ci_low", nan)
            out[f"{frac}_{ref}_ci_high"] = f.get("ci_high", nan)
        out[f"quality_n_{ref}"] = rec.get("references", {}).get(ref, {}).get("n", 0)
    out["quality_note"] = "; ".join(notes)
    return out
