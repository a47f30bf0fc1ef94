"""The one library entry the CLI wraps: ``run`` (registered models) and ``detect`` (sample files).

Flow: resolve every name first (fail before any heavy work) -> sample each model once
(cached) -> run each detector -> write one result file per pair -> rebuild the leaderboard.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from membench import __version__
from membench.data import Dataset, load_dataset
from membench.detectors.base import Detector, DetectorContext, DetectorOutput, make_detector
from membench.core.errors import MembenchError, UnavailableError
from membench.models.specs import ModelSpec, model_names, resolve_model
from membench.core.registry import names
from membench.core.locks import claim_each, file_lock
from membench.store.records import lock_path, result_key, result_paths, write_result
from membench.models.samples import SampleSet, get_samples, resolve_device
from membench.core.stats import wilson_interval
from membench.core.workspace import resolve_results


def _expand(items: str | Sequence[str], all_names: list[str]) -> list[str]:
    from membench.core.specs import split_list

    if isinstance(items, str):
        items = split_list(items)
    items = list(items)
    if not items:
        raise MembenchError("no names given")
    if "all" in items:
        return all_names
    return items


def aggregate(out: DetectorOutput) -> dict[str, Any]:
    n = len(out.flags)
    k = int(np.count_nonzero(out.flags))
    lo, hi = wilson_interval(k, n)
    return {"fraction": k / n, "ci_low": lo, "ci_high": hi, "n_flagged": k, "n": n,
            "score_median": float(np.median(out.scores)), "score_mean": float(np.mean(out.scores)),
            "ci_method": "wilson95"}


def _detector_record(det: Detector) -> dict[str, Any]:
    return {"name": getattr(det, "display_name", det.registry_name), "base": det.registry_name,
            "config": det.config(), "score": det.score_name, "higher_is_memorized": det.higher_is_memorized}


def _model_record(spec: ModelSpec, samples: SampleSet) -> dict[str, Any]:
    return {"name": spec.name, "role": spec.role, "teacher": spec.teacher, "method": spec.method,
            "sampler": spec.sampler, "nfe": samples.meta.get("nfe"), "dataset": spec.dataset,
            "checkpoint_hash": samples.meta.get("checkpoint_hash")}


def run_detector(det: Detector, samples: SampleSet, train: Dataset, ctx: DetectorContext) -> tuple[DetectorOutput, float]:
    t0 = time.time()
    out = det.detect(samples.images, train, ctx)
    return out, time.time() - t0


def run(models: str | Sequence[str] = "teacher", detectors: str | Sequence[str] = "l2ratio", n_samples: int = 1000,
        seed: int = 0, device: str = "auto", results_dir: str | Path | None = None, cache_dir: str | Path | None = None,
        progress: bool = False, force: bool = False, quality: bool = True,
        quality_extractor: str = "digits") -> pd.DataFrame:
    """Evaluate every (model, detector) pair; returns this run's rows of the leaderboard.

    ``quality``: also measure each sample set's quality (FID, KID, precision/recall against the
    held-out and the training images; ``membench.quality``) with ``quality_extractor``.
    """
    from membench.store import leaderboard

    if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples <= 0:
        raise MembenchError(f"--n-samples must be a positive integer, got {n_samples!r}")
    specs = [resolve_model(m) for m in _expand(models, model_names())]
    det_names = _expand(detectors, names("detectors"))
    all_detectors = det_names == names("detectors")
    dets = [make_detector(d) for d in det_names]
    if quality:
        _check_quality_extractor(quality_extractor)
    unavailable: list[dict[str, Any]] = []
    quality_unavailable: list[dict[str, Any]] = []
    device = resolve_device(device)
    ctx = DetectorContext(device=device, cache_dir=Path(cache_dir) if cache_dir else None, progress=progress)
    results_dir = resolve_results(results_dir)  # None: <workspace>/results
    done: list[tuple[str, str]] = []
    jobs: list[tuple[ModelSpec, Dataset, Detector, dict[str, Any], Any]] = []
    for spec in specs:
        train = load_dataset(spec.dataset)
        for det in dets:
            rec_det = _detector_record(det)
            # The key names the content, not the name: same checkpoint + sampler + detector config.
            ckpt_key = _checkpoint_key(spec)
            key = result_key({"model": spec.name, "ckpt": ckpt_key, "sampler": spec.sampler, "n": n_samples,
                              "seed": seed, "detector": rec_det["base"], "config": rec_det["config"],
                              "train": train.fingerprint()})
            jobs.append((spec, train, det, rec_det, result_paths(results_dir, spec.name, rec_det["name"], key)))
            done.append((spec.name, rec_det["name"]))
    # Completed pairs are skipped on rerun; a pair another run is computing right now is
    # deferred, then waited for (per-pair lock), so concurrent runs never compute it twice.
    loaded: tuple[str | None, SampleSet | None] = (None, None)
    for spec, train, det, rec_det, paths in claim_each(
            jobs, lambda j: lock_path(results_dir, j[4].json), lambda j: j[4].json.is_file() and not force):
        if loaded[0] != spec.name:
            loaded = (spec.name, get_samples(spec, n_samples, seed, device, ctx.cache_dir, progress))
        samples = loaded[1]
        record = {"model": _model_record(spec, samples), "detector": rec_det, "n_samples": n_samples,
                  "seed": seed, "train_fingerprint": train.fingerprint(), "sample_key": samples.meta.get("key"),
                  "membench": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        ctx.model = spec
        try:
            out, secs = run_detector(det, samples, train, ctx)
        except UnavailableError as exc:
            if not all_detectors:
                raise
            # With --detector all, a detector that cannot run here (missing weights) is a
            # row marked unavailable, not the end of the run. Not cached: retried next time.
            unavailable.append({**record, "status": "unavailable", "reason": str(exc)})
            continue
        record.update({"status": "ok", "aggregate": aggregate(out), "info": out.info,
                       "detect_seconds": round(secs, 3)})
        arrays = {"noise_index": samples.noise_index, "scores": out.scores, "flags": out.flags,
                  "nearest": out.nearest, **{f"extra_{k}": v for k, v in out.extras.items()}}
        write_result(paths, record, arrays)
    # --- quality beside memorization (issue 5): once per sample set, a result file of its own
    if quality:
        from membench.quality.harness import run_quality
        from membench.models.samples import sample_key

        trains = {spec.name: train for spec, train, *_ in jobs}
        for spec in specs:
            def load_samples(spec: ModelSpec = spec) -> SampleSet:
                nonlocal loaded
                if loaded[0] != spec.name:
                    loaded = (spec.name, get_samples(spec, n_samples, seed, device, ctx.cache_dir, progress))
                return loaded[1]

            train = trains.get(spec.name) or load_dataset(spec.dataset)
            note = run_quality(spec, sample_key(_checkpoint_key(spec), spec.sampler, seed, n_samples), train,
                               load_samples, lambda s, spec=spec: _model_record(spec, s), n_samples, seed, device,
                               ctx.cache_dir, results_dir, force=force, extractor=quality_extractor)
            if note:
                quality_unavailable.append(note)
    # --- end quality
    with file_lock(lock_path(results_dir, "leaderboard")):  # concurrent rebuilds: the last one sees every file
        board = leaderboard.build(results_dir, extra_records=unavailable, extra_quality=quality_unavailable)
        leaderboard.write(board, results_dir)
    wanted = set(done)
    mask = np.array([(m, d) in wanted for m, d in zip(board["model"], board["detector"])], dtype=bool)
    rows = board[mask & (board["n_samples"] == n_samples).to_numpy() & (board["seed"] == seed).to_numpy()]
    return rows.reset_index(drop=True)


def _check_quality_extractor(name: str) -> None:
    """Fail on an unknown extractor name before any sampling; missing weights are reported later."""
    from membench.features.fidelity import resolve_extractor

    try:
        resolve_extractor(name)
    except UnavailableError:
        pass


_CKPT_KEYS: dict[tuple, str] = {}


def _checkpoint_key(spec: ModelSpec) -> str:
    from membench.models.checkpoints import checkpoint_hash

    # Keyed by the files' size and mtime too: a checkpoint replaced in place (retrained) in a
    # long-lived process must not keep its old hash, or its results would be taken as current.
    folder = Path(spec.checkpoint)
    stamp = tuple(sorted((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in folder.rglob("*") if f.is_file())
                  ) if folder.is_dir() else ()
    key = (spec.checkpoint, stamp)
    if key not in _CKPT_KEYS:
        _CKPT_KEYS[key] = checkpoint_hash(spec.checkpoint)
    return _CKPT_KEYS[key]


def detect(samples: str | Path | np.ndarray, train: str, detectors: str | Sequence[str] = "l2ratio",
           device: str = "auto", progress: bool = False) -> tuple[pd.DataFrame, dict[str, DetectorOutput]]:
    """Run detectors on samples made elsewhere (``.npz``/``.npy``/image folder or an array)."""
    from membench.data.datasets import to_model_range

    if isinstance(samples, np.ndarray):
        images = to_model_range(samples, "samples")
    else:
        images = load_dataset(str(samples)).images if Path(samples).exists() else None
        if images is None:
            raise MembenchError(f"samples not found: {samples}")
    train_ds = load_dataset(train)
    ctx = DetectorContext(device=resolve_device(device), progress=progress)
    rows, outputs = [], {}
    det_names = _expand(detectors, names("detectors"))
    all_detectors = det_names == names("detectors")
    for det in [make_detector(d) for d in det_names]:
        name = getattr(det, "display_name", det.registry_name)
        try:
            out = det.detect(np.asarray(images), train_ds, ctx)
        except UnavailableError as exc:
            if not all_detectors:
                raise
            # As in `run`: under "all", a detector that cannot run here is a row, not the end.
            rows.append({"detector": name, "train_data": train_ds.spec, "n_samples": len(images),
                         "status": "unavailable", "note": str(exc)})
            continue
        outputs[name] = out
        agg = aggregate(out)
        rows.append({"detector": name, "train_data": train_ds.spec, "n_samples": len(images),
                     "memorized": agg["fraction"], "ci_low": agg["ci_low"], "ci_high": agg["ci_high"],
                     "n_flagged": agg["n_flagged"], "score_median": agg["score_median"], "status": "ok", "note": ""})
    return pd.DataFrame(rows), outputs
