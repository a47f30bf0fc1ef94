"""How the digits studies measure an image set: through the one measurement path.

Each image set a study makes (a teacher, its NFE-matched controls, its students) goes to
``membench.measure.measure`` with the study's detectors and quality metrics; its records
are stored under the study's output folder (``<out>/records``, so ``membench report
--results-dir <out>`` shows them), and a study row is read off each record. Paired
columns against the teacher (same noises) come from ``membench.analysis.effect.compare``.

``detectors=("all",)`` uses every registered detector that can run here (one that cannot,
e.g. for missing weights, is listed in the study's record and skipped); a pixel-space
Frechet distance to the held-out digits is always reported beside the digits-classifier
quality (a cheap proxy on 64 raw pixels, not an Inception FID).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from membench.data import Dataset
from membench.detectors.base import Detector, DetectorContext
from membench.store.records import Record

SUBJECT_ROLES = ("teacher", "student", "control")


@dataclass
class Reference:
    """A measured image set that later sets are paired with (the teacher, same noises)."""

    name: str
    records: dict[str, Record]  # detector name -> its detection record
    images: np.ndarray


@dataclass
class Evaluator:
    """Runs the chosen detectors and quality metrics on image sets against one training set."""

    train: Dataset
    detector_names: Sequence[str] = ("all",)
    device: str = "cpu"
    quality: bool = True
    store: Path | None = None  # where the records go (the study's output folder)
    study: str = "study"
    skipped: dict[str, str] = field(default_factory=dict)  # detector -> why it could not run
    quality_note: str = ""

    def __post_init__(self) -> None:
        from membench.api import resolve_detectors

        self.detectors: list[Detector]
        self.detectors, self.everything = resolve_detectors(list(self.detector_names))
        self.ctx = DetectorContext(device=self.device)

    def measure(self, images: np.ndarray, labels: dict[str, Any], seed: int,
                reference: Reference | None) -> tuple[dict[str, Record], Record | None]:
        """Detection records (by detector) and the quality record of one image set."""
        from membench.measure import ImageSet, QualitySpec, measure

        subject = subject_of(self.study, labels, reference)
        iset = ImageSet.of_images(images, subject, self.train, seed=seed, source=self.study)
        quality = QualitySpec("digits", references=("heldout",)) if self.quality else None
        result = measure([iset], self.detectors, self.ctx, quality=quality, results_dir=self.store,
                         keep_unavailable=True)
        detections: dict[str, Record] = {}
        quality_rec = None
        for rec in result.records:
            if rec.kind == "quality":
                quality_rec = rec
                if not rec.ok:
                    self.quality_note = f"quality unavailable: {rec.reason}"
            elif rec.ok:
                detections[rec.test["name"]] = rec
            else:  # e.g. needs a registered model (sharpness) or missing weights: dropped for the rest
                self.skipped[rec.test["name"]] = rec.reason
                self.detectors = [d for d in self.detectors if detector_name(d) != rec.test["name"]]
        return detections, quality_rec

    def quality_columns(self, images: np.ndarray, quality_rec: Record | None) -> dict[str, float]:
        row = {"pixel_fd_heldout": pixel_fd(images, self.train.heldout) if self.train.heldout is not None
               else float("nan")}
        if quality_rec is not None and quality_rec.ok:
            row.update({k: quality_rec.value(k) for k in ("fid_heldout", "kid_heldout", "precision_heldout",
                                                           "recall_heldout") if k in quality_rec.metrics})
        return row


def detector_name(det: Detector) -> str:
    return getattr(det, "display_name", det.registry_name)


def subject_of(study: str, labels: dict[str, Any], reference: Reference | None) -> dict[str, Any]:
    """A study's image set as the subject of its records: a unique name from its labels, its
    role, and its teacher (so the report pairs students and controls with it)."""
    parts = [f"{k}={v}" for k, v in labels.items()
             if k not in ("model", "sampler") and not (isinstance(v, float) and math.isnan(v))]
    role = labels.get("model") if labels.get("model") in SUBJECT_ROLES else "teacher"
    name = "/".join([study, str(labels.get("model", "images")), *parts])
    return {"name": name, "role": role, "teacher": reference.name if reference else None,
            "method": labels.get("method"), "sampler": labels.get("sampler", ""), "nfe": labels.get("nfe"),
            "dataset": labels.get("dataset", ""), "study": study}


def pixel_fd(images: np.ndarray, reference: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to raw pixels of two image sets."""
    from membench.studies.rfnn_model import frechet_distance

    a = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    b = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    return frechet_distance(a, b)


def memorization_columns(rec: Record) -> dict[str, Any]:
    """A study row's memorization columns, read off a detection record."""
    mem = rec.metrics["memorized"]
    return {"detector": rec.test["name"], "memorized": mem.value, "ci_low": mem.interval[0],
            "ci_high": mem.interval[1], "n_flagged": rec.stats["n_flagged"], "n": rec.stats["n"],
            "score_median": rec.value("score_median")}


def paired_columns(rec: Record, ref: Record, images: np.ndarray, ref_images: np.ndarray) -> dict[str, Any]:
    """Paired comparison with the reference model (the teacher) over the same noises:

    * ``nearest_agreement``: the matched training image is the teacher's, for the same noise;
    * ``copies_kept``: of the noises the teacher turns into a flagged copy, the share whose sample
      here has the same matched training image (kept the copy, flagged or not);
    * ``copies_flagged``: of those, the share also flagged here;
    * ``diff``: memorized fraction here minus the teacher's, with Newcombe's paired 95% interval.
    """
    from membench.analysis.effect import compare, pair_arrays

    stats = compare(pair_arrays(ref.load_arrays(), rec.load_arrays(), bool(rec.test["higher_is_memorized"])))
    row: dict[str, Any] = {"nearest_agreement": stats["same_nearest"], "agree_ci_low": stats["same_nearest_ci_low"],
                           "agree_ci_high": stats["same_nearest_ci_high"]}
    for name in ("copies_kept", "copies_flagged"):
        row.update({name: stats[name], f"{name}_ci_low": stats[f"{name}_ci_low"],
                    f"{name}_ci_high": stats[f"{name}_ci_high"]})
    row["teacher_copies"] = stats["n_teacher_copies"]
    row.update({"diff_vs_teacher": stats["diff"], "diff_ci_low": stats["diff_ci_low"],
                "diff_ci_high": stats["diff_ci_high"], "diff_ci_method": "newcombe-paired"})
    n = len(images)
    row["median_l2_to_teacher_sample"] = float(np.median(np.linalg.norm((images - ref_images).reshape(n, -1), axis=1)))
    return row
