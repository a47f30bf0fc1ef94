"""How well each detector separates memorized from novel images: ``membench validate``.

Tasks (per model; the reference set is the model's training set):

* ``copies-noise``: training images versus held-out images, both with the same Gaussian
  noise (std ``noise`` in [-1, 1] units, clipped), so only membership differs;
* ``copies-shift``: the same with a one-pixel translation in a random direction (background
  filled), an edit that moves every pixel and defeats pixel distances;
* ``copies-flip``: the same with a left-right mirror image (robustness to flips);
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

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from membench.data import Dataset, load_dataset
from membench.detectors.base import DetectorContext, make_detector
from membench.core.errors import MembenchError
from membench.store.records import Metric, Record

TASKS = ("copies-noise", "copies-shift", "generated", "copies-flip")
COLUMNS = ["model", "train_data", "detector", "task", "seed", "n_pos", "n_neg", "status", "auc", "auc_ci_low",
           "auc_ci_high", "tpr_at_1fpr", "tpr_ci_low", "tpr_ci_high", "threshold_at_1fpr", "flag_rate_pos",
           "flag_rate_neg", "note", "seconds"]


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


def perturb_flip(images: np.ndarray) -> np.ndarray:
    """Mirror each image left-right (a copy a pixel detector should still catch: it does not)."""
    return np.ascontiguousarray(images[..., ::-1])


def task_images(task: str, spec: Any, train: Dataset, n_samples: int, seed: int, noise: float, device: str,
                cache_dir: Path | None, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels): label 1 = memorized (a training image or a copy of one), 0 = novel."""
    if task in ("copies-noise", "copies-shift", "copies-flip"):
        if train.heldout is None or len(train.heldout) == 0:
            raise MembenchError(f"validate: {train.spec} has no held-out images (task {task})")
        rng = np.random.default_rng([seed, TASKS.index(task)])
        images = np.concatenate([np.asarray(train.images, np.float32), np.asarray(train.heldout, np.float32)])
        images = (perturb_noise(images, noise, rng) if task == "copies-noise" else
                  perturb_shift(images, rng) if task == "copies-shift" else perturb_flip(images))
        labels = np.r_[np.ones(len(train), bool), np.zeros(len(train.heldout), bool)]
        return images, labels
    if task == "generated":
        from membench.measure import ImageSet, measure
        from membench.models.samples import get_samples

        samples = get_samples(spec, n_samples, seed, device, cache_dir, progress)
        iset = ImageSet.of_images(samples.images, {"name": spec.name}, train, seed, samples.noise_index)
        ref = measure([iset], [make_detector("l2ratio")], DetectorContext(device=device)).records[0]
        return samples.images, ref.arrays["flags"].astype(bool)
    raise MembenchError(f"validate: unknown task {task!r} (known: {', '.join(TASKS)})")


def separation(scores: np.ndarray, flags: np.ndarray, labels: np.ndarray, higher_is_memorized: bool,
               seed: int = 0) -> dict[str, Any]:
    from membench.analysis.roc import auc_bootstrap_ci, roc_auc, tpr_at_fpr
    from membench.core.stats import wilson_interval

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
    k_pos, k_neg = int(flags[labels].sum()), int(flags[~labels].sum())
    return {"auc": roc_auc(pos, neg), "auc_ci_low": lo, "auc_ci_high": hi, "tpr_at_1fpr": t["tpr"],
            "tpr_ci_low": t["tpr_ci_low"], "tpr_ci_high": t["tpr_ci_high"], "threshold_at_1fpr": thr,
            "flag_rate_pos": k_pos / len(pos), "flag_rate_pos_ci": wilson_interval(k_pos, len(pos)),
            "flag_rate_neg": k_neg / len(neg), "flag_rate_neg_ci": wilson_interval(k_neg, len(neg)), "note": ""}


def validate(models: str | Sequence[str] = "teacher", detectors: str | Sequence[str] = "all",
             tasks: str | Sequence[str] = TASKS, n_samples: int = 1000, seed: int = 0, noise: float = 0.1,
             device: str = "auto", results_dir: str | Path | None = None, cache_dir: str | Path | None = None,
             progress: bool = False) -> pd.DataFrame:
    """Score every (model, detector, task); returns this call's rows. Each row is a ``validation``
    record in the store (with its scores, flags and labels); ``validation.csv``/``.md`` are
    rebuilt from all of them."""
    from membench.api import check_count, expand_names, model_subject, resolve_detectors
    from membench.core.registry import names
    from membench.core.specs import split_list
    from membench.core.workspace import resolve_results
    from membench.measure import ImageSet, measure
    from membench.models.samples import resolve_device
    from membench.models.specs import resolve_model
    from membench.store.records import write_record

    from membench.core.options import check_seed
    from membench.core.paths import check_output_dir

    check_count(n_samples)
    check_seed(seed)
    if not isinstance(noise, (int, float)) or not 0.0 <= float(noise) <= 1.0:
        raise MembenchError(f"--noise must be in [0, 1], got {noise!r}")
    task_list = split_list(tasks) if isinstance(tasks, str) else list(tasks)
    bad = [t for t in task_list if t not in TASKS]
    if bad or not task_list:
        raise MembenchError(f"unknown task(s) {bad or task_list}; known: {', '.join(TASKS)}")
    specs = [resolve_model(m) for m in expand_names(models, names("models"))]
    dets, everything = resolve_detectors(detectors)
    # set- and model-level tests (nn-heldout, copying, mmd-heldout, membership) do not score the
    # given images as copies one by one (they use the held-out images themselves): not validated here
    skipped = [d.registry_name for d in dets if getattr(d, "level", "image") != "image"]
    dets = [d for d in dets if d.registry_name not in skipped]
    if not dets:
        raise MembenchError(f"validate: {', '.join(skipped)} are set- or model-level tests with their own nulls; "
                            "validate scores per-image copy detectors")
    device = resolve_device(device)
    results_dir = check_output_dir(resolve_results(results_dir))
    cache = Path(cache_dir) if cache_dir else None
    ctx = DetectorContext(device=device, cache_dir=cache, progress=progress)
    records: list[Record] = []
    for spec in specs:
        train = load_dataset(spec.dataset)
        for task in task_list:
            images, labels = task_images(task, spec, train, n_samples, seed, float(noise), device, cache, progress)
            iset = ImageSet.of_images(images, model_subject(spec), train, seed, model=spec, labels=labels,
                                      source=f"validate:{task}" + (f":noise={noise}" if task == "copies-noise" else ""))
            for rec in measure([iset], dets, ctx, keep_unavailable=everything).records:
                records.append(validation_record(rec, task, float(noise), labels))
    for rec in records:
        if rec.ok:
            write_record(results_dir, rec)
    df = table(records)
    write(results_dir, extra=[r for r in records if not r.ok])
    return df


def validation_record(det_rec: Record, task: str, noise: float, labels: np.ndarray) -> Record:
    """A detection on a labelled image set -> its separation metrics, against the novel
    (never-trained) images as the null."""
    test = {**det_rec.test, "task": task, **({"noise": noise} if task == "copies-noise" else {})}
    rec = Record(kind="validation", subject=det_rec.subject, samples=det_rec.samples, data=det_rec.data, test=test,
                 null={"images": "novel: held-out images or samples the L2-ratio test does not flag"},
                 status=det_rec.status, reason=det_rec.reason, info=det_rec.info, created=det_rec.created,
                 membench=det_rec.membench)
    rec.stats = {"n_pos": int(labels.sum()), "n_neg": int((~labels).sum())}
    if not det_rec.ok:
        return rec
    arr = det_rec.arrays
    sep = separation(arr["scores"], arr["flags"], labels, bool(det_rec.test["higher_is_memorized"]), det_rec.seed)
    note = sep.pop("note")
    if task == "generated" and det_rec.test.get("base") == "l2ratio":
        note = (note + "; " if note else "") + "labels come from this detector"
    rec.stats.update({"note": note, "seconds": det_rec.stats.get("detect_seconds"),
                      "threshold_at_1fpr": sep["threshold_at_1fpr"]})
    if not np.isnan(sep["auc"]):
        rec.metrics = {
            "auc": Metric(sep["auc"], (sep["auc_ci_low"], sep["auc_ci_high"]), "percentile95", "bootstrap",
                          higher_is_better=True),
            "tpr_at_1fpr": Metric(sep["tpr_at_1fpr"], (sep["tpr_ci_low"], sep["tpr_ci_high"]), "wilson95",
                                  "memorized images", higher_is_better=True),
            "flag_rate_pos": Metric(sep["flag_rate_pos"], sep["flag_rate_pos_ci"], "wilson95", "memorized images",
                                    higher_is_better=True),
            "flag_rate_neg": Metric(sep["flag_rate_neg"], sep["flag_rate_neg_ci"], "wilson95", "novel images",
                                    higher_is_better=False),
        }
    rec.arrays = {k: arr[k] for k in ("noise_index", "scores", "flags", "nearest")} | {"labels": labels}
    return rec


def table(records: list[Record]) -> pd.DataFrame:
    """The validation table of ``records`` (one row per model, detector, task, seed)."""
    nan = float("nan")
    rows = []
    for r in records:
        row = {"model": r.subject["name"], "train_data": r.data.get("spec"), "detector": r.test["name"],
               "task": r.test.get("task"), "seed": r.seed, "n_pos": r.stats.get("n_pos"), "n_neg": r.stats.get("n_neg"),
               "status": r.status, "note": r.reason or r.stats.get("note", ""), "seconds": r.stats.get("seconds"),
               "threshold_at_1fpr": r.stats.get("threshold_at_1fpr", nan)}
        for name, (lo, hi) in {"auc": ("auc_ci_low", "auc_ci_high"), "tpr_at_1fpr": ("tpr_ci_low", "tpr_ci_high"),
                               "flag_rate_pos": (None, None), "flag_rate_neg": (None, None)}.items():
            m = r.metrics.get(name)
            row[name] = m.value if m else nan
            if lo:
                row[lo], row[hi] = m.interval if m and m.interval else (nan, nan)
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


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


def write(results_dir: str | Path, extra: Sequence[Record] = ()) -> tuple[Path, Path]:
    """Rebuild ``validation.csv``/``.md`` from every validation record in the store (plus ``extra``,
    this call's unavailable rows, which are not stored)."""
    from membench.core.io import atomic_write_text
    from membench.store.records import iter_records

    results_dir = Path(results_dir)
    df = table([*iter_records(results_dir, "validation"), *extra])
    df = df.sort_values(["model", "task", "detector", "seed"], ignore_index=True)
    csv_path, md_path = results_dir / "validation.csv", results_dir / "validation.md"
    atomic_write_text(csv_path, df.to_csv(index=False))
    md = ("# membench detector validation\n\nHow well each detector separates memorized from novel images "
          "(see docs/detectors.md, `membench validate`). AUC: 95% stratified bootstrap interval; TPR at 1% FPR: 95% "
          "Wilson interval over the memorized images; flagged: the detector's own default threshold.\n\n"
          + format_table(df).to_markdown(index=False) + "\n")
    atomic_write_text(md_path, md)
    return csv_path, md_path
