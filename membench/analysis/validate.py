"""How well each detector separates memorized from novel images: ``membench validate``.

Tasks (per model; the reference set is the model's training set):

* ``copies-noise``: training images versus held-out images, both with the same Gaussian
  noise (std ``noise`` in [-1, 1] units, clipped), so only membership differs;
* ``copies-shift``: the same with a one-pixel translation in a random direction (background
  filled), an edit that moves every pixel and defeats pixel distances;
* ``generated``: the model's own samples, labelled memorized by the L2-ratio test
  (nearest / second-nearest training distance < 1/3) and novel otherwise. The ``l2ratio``
  row of this task is 1 by construction and ``carlini`` shares its distances: read those
  two as consistency checks, not as evidence.

Each detector scores all images of a task in one call (sharpness calibrates once), and
the table gets the ROC AUC (95% stratified bootstrap interval), the TPR at 1% FPR (95%
Wilson interval over positives; the threshold is the strictest that lets at most 1% of
negatives through) and the detector's own flag rates on positives and negatives at its
default threshold. Rows are merged into ``<results>/validation.csv`` and ``.md``, keyed by
(model, detector, task, seed), atomically.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from membench.data import Dataset, load_dataset
from membench.detectors.base import DetectorContext, make_detector
from membench.core.errors import MembenchError, UnavailableError
from membench.core.workspace import resolve_results

TASKS = ("copies-noise", "copies-shift", "generated")
COLUMNS = ["model", "train_data", "detector", "task", "seed", "n_pos", "n_neg", "status", "auc", "auc_ci_low",
           "auc_ci_high", "tpr_at_1fpr", "tpr_ci_low", "tpr_ci_high", "threshold_at_1fpr", "flag_rate_pos",
           "flag_rate_neg", "note", "seconds"]
KEY = ["model", "detector", "task", "seed"]


def perturb_noise(images: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(images + std * rng.standard_normal(images.shape).astype(np.float32), -1.0, 1.0)


def perturb_shift(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Translate each image by one pixel up/down/left/right; the vacated row/column becomes background (-1)."""
    out = np.full_like(images, -1.0)
    moves = rng.integers(0, 4, len(images))
    for i, m in enumerate(moves):
        x = images[i]
        if m == 0:
            out[i, :, 1:, :] = x[:, :-1, :]
        elif m == 1:
            out[i, :, :-1, :] = x[:, 1:, :]
        elif m == 2:
            out[i, :, :, 1:] = x[:, :, :-1]
        else:
            out[i, :, :, :-1] = x[:, :, 1:]
    return out


def task_images(task: str, spec: Any, train: Dataset, n_samples: int, seed: int, noise: float, device: str,
                cache_dir: Path | None, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels): label 1 = memorized (a training image or a copy of one), 0 = novel."""
    if task in ("copies-noise", "copies-shift"):
        if train.heldout is None or len(train.heldout) == 0:
            raise MembenchError(f"validate: {train.spec} has no held-out images (task {task})")
        rng = np.random.default_rng([seed, TASKS.index(task)])
        images = np.concatenate([np.asarray(train.images, np.float32), np.asarray(train.heldout, np.float32)])
        images = perturb_noise(images, noise, rng) if task == "copies-noise" else perturb_shift(images, rng)
        labels = np.r_[np.ones(len(train), bool), np.zeros(len(train.heldout), bool)]
        return images, labels
    if task == "generated":
        from membench.models.samples import get_samples

        samples = get_samples(spec, n_samples, seed, device, cache_dir, progress)
        ref = make_detector("l2ratio").detect(samples.images, train, DetectorContext(device=device))
        return samples.images, ref.flags.astype(bool)
    raise MembenchError(f"validate: unknown task {task!r} (known: {', '.join(TASKS)})")


def separation(scores: np.ndarray, flags: np.ndarray, labels: np.ndarray, higher_is_memorized: bool,
               seed: int = 0) -> dict[str, Any]:
    from membench.analysis.roc import auc_bootstrap_ci, roc_auc, tpr_at_fpr

    s = np.asarray(scores, np.float64) * (1.0 if higher_is_memorized else -1.0)  # higher = more memorized
    pos, neg = s[labels], s[~labels]
    nan = float("nan")
    if len(pos) == 0 or len(neg) == 0:
        only = "memorized" if len(neg) == 0 else "novel"
        return {"auc": nan, "auc_ci_low": nan, "auc_ci_high": nan, "tpr_at_1fpr": nan, "tpr_ci_low": nan,
                "tpr_ci_high": nan, "threshold_at_1fpr": nan, "flag_rate_pos": nan, "flag_rate_neg": nan,
                "note": f"all {len(s)} images are labelled {only}: separation undefined"}
    lo, hi = auc_bootstrap_ci(pos, neg, seed=seed)
    t = tpr_at_fpr(pos, neg, 0.01)
    thr = t["threshold"] * (1.0 if higher_is_memorized else -1.0)  # back in the detector's own units
    return {"auc": roc_auc(pos, neg), "auc_ci_low": lo, "auc_ci_high": hi, "tpr_at_1fpr": t["tpr"],
            "tpr_ci_low": t["tpr_ci_low"], "tpr_ci_high": t["tpr_ci_high"], "threshold_at_1fpr": thr,
            "flag_rate_pos": float(flags[labels].mean()), "flag_rate_neg": float(flags[~labels].mean()), "note": ""}


def validate(models: str | Sequence[str] = "teacher", detectors: str | Sequence[str] = "all",
             tasks: str | Sequence[str] = TASKS, n_samples: int = 1000, seed: int = 0, noise: float = 0.1,
             device: str = "auto", results_dir: str | Path | None = None, cache_dir: str | Path | None = None,
             progress: bool = False) -> pd.DataFrame:
    """Score every (model, detector, task); returns this call's rows (also merged into validation.csv/.md)."""
    from membench.api import _expand
    from membench.models.specs import model_names, resolve_model
    from membench.core.registry import names
    from membench.models.samples import resolve_device
    from membench.core.specs import split_list

    if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples <= 0:
        raise MembenchError(f"--n-samples must be a positive integer, got {n_samples!r}")
    if not isinstance(noise, (int, float)) or not 0.0 <= float(noise) <= 1.0:
        raise MembenchError(f"--noise must be in [0, 1], got {noise!r}")
    task_list = split_list(tasks) if isinstance(tasks, str) else list(tasks)
    bad = [t for t in task_list if t not in TASKS]
    if bad or not task_list:
        raise MembenchError(f"unknown task(s) {bad or task_list}; known: {', '.join(TASKS)}")
    specs = [resolve_model(m) for m in _expand(models, model_names())]
    det_names = _expand(detectors, names("detectors"))
    all_detectors = det_names == names("detectors")
    dets = [make_detector(d) for d in det_names]
    device = resolve_device(device)
    cache = Path(cache_dir) if cache_dir else None
    rows: list[dict[str, Any]] = []
    for spec in specs:
        train = load_dataset(spec.dataset)
        ctx = DetectorContext(device=device, cache_dir=cache, progress=progress, model=spec)
        for task in task_list:
            images, labels = task_images(task, spec, train, n_samples, seed, float(noise), device, cache, progress)
            for det in dets:
                name = getattr(det, "display_name", det.registry_name)
                row = {"model": spec.name, "train_data": train.spec, "detector": name, "task": task, "seed": seed,
                       "n_pos": int(labels.sum()), "n_neg": int((~labels).sum())}
                t0 = time.time()
                try:
                    out = det.detect(images, train, ctx)
                except UnavailableError as exc:
                    if not all_detectors:
                        raise
                    rows.append({**row, "status": "unavailable", "note": str(exc)})
                    continue
                sep = separation(out.scores, out.flags, labels, det.higher_is_memorized, seed)
                if task == "generated" and det.registry_name == "l2ratio":
                    sep["note"] = (sep["note"] + "; " if sep["note"] else "") + "labels come from this detector"
                rows.append({**row, "status": "ok", **sep, "seconds": round(time.time() - t0, 2)})
    df = pd.DataFrame(rows).reindex(columns=COLUMNS)
    write(df, results_dir)
    return df


def format_table(df: pd.DataFrame) -> pd.DataFrame:
    def ci(v: float, lo: float, hi: float) -> str:
        return "" if pd.isna(v) else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"

    out = df[["model", "detector", "task", "n_pos", "n_neg"]].copy()
    out["AUC (95% CI)"] = [ci(*r) if st == "ok" else "unavailable" for st, *r in
                           zip(df["status"], df["auc"], df["auc_ci_low"], df["auc_ci_high"])]
    out["TPR@1%FPR (95% CI)"] = [ci(*r) if st == "ok" else "" for st, *r in
                                 zip(df["status"], df["tpr_at_1fpr"], df["tpr_ci_low"], df["tpr_ci_high"])]
    out["flagged: mem / novel"] = ["" if st != "ok" or pd.isna(a) else f"{a:.3f} / {b:.3f}" for st, a, b in
                                   zip(df["status"], df["flag_rate_pos"], df["flag_rate_neg"])]
    out["note"] = df["note"].fillna("")
    return out


def write(rows: pd.DataFrame, results_dir: str | Path | None) -> tuple[Path, Path]:
    """Merge ``rows`` into validation.csv (replacing rows with the same key) and rewrite the Markdown view."""
    from membench.core.io import atomic_write_text

    results_dir = resolve_results(results_dir)  # None: <workspace>/results
    csv_path, md_path = results_dir / "validation.csv", results_dir / "validation.md"
    old = pd.DataFrame(columns=COLUMNS)
    if csv_path.is_file():
        try:
            old = pd.read_csv(csv_path, keep_default_na=True).reindex(columns=COLUMNS)
        except (OSError, ValueError, pd.errors.ParserError):
            old = pd.DataFrame(columns=COLUMNS)  # a corrupt table is rebuilt from this run
    if len(old):
        new_keys = set(map(tuple, rows[KEY].astype(str).to_numpy()))
        keep = [tuple(k) not in new_keys for k in old[KEY].astype(str).to_numpy()]
        old = old[keep]
    frames = [f for f in (old, rows) if len(f)]
    df = pd.concat(frames, ignore_index=True) if frames else rows
    df = df.sort_values(["model", "task", "detector", "seed"], ignore_index=True)
    atomic_write_text(csv_path, df.to_csv(index=False))
    md = ("# membench detector validation\n\nHow well each detector separates memorized from novel images "
          "(see README, `membench validate`). AUC: 95% stratified bootstrap interval; TPR at 1% FPR: 95% Wilson "
          "interval over the memorized images; flagged: the detector's own default threshold.\n\n"
          + format_table(df).to_markdown(index=False) + "\n")
    atomic_write_text(md_path, md)
    return csv_path, md_path
