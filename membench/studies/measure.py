"""Measurements shared by the digits studies: memorization under every detector, paired
agreement with the teacher for the same noises, and sample quality.

Detectors and quality metrics are pluggable: ``detectors=("all",)`` uses every registered
detector that can run here (one that cannot, e.g. for missing weights, is listed in the
study's record and skipped); the quality metrics of ``membench.quality`` are used when that
module is installed, and a pixel-space Frechet distance to the held-out digits is always
reported (a cheap proxy, on 64 raw pixels, not an Inception FID).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from membench.data import Dataset
from membench.detectors.base import Detector, DetectorContext, DetectorOutput, make_detector
from membench.core.errors import MembenchError, UnavailableError
from membench.core.stats import wilson_interval


@dataclass
class Evaluator:
    """Runs the chosen detectors and quality metrics on image sets against one training set."""

    train: Dataset
    detector_names: Sequence[str] = ("all",)
    device: str = "cpu"
    quality: bool = True
    skipped: dict[str, str] = field(default_factory=dict)  # detector -> why it could not run
    quality_note: str = ""

    def __post_init__(self) -> None:
        from membench.core.registry import names

        wanted = list(self.detector_names)
        expand = "all" in wanted
        if expand:
            wanted = names("detectors")
        self.detectors: list[Detector] = []
        for name in wanted:
            try:
                self.detectors.append(make_detector(name))
            except UnavailableError as exc:
                if not expand:
                    raise
                self.skipped[name] = str(exc)
        self.ctx = DetectorContext(device=self.device)

    def detect(self, images: np.ndarray) -> dict[str, DetectorOutput]:
        outs: dict[str, DetectorOutput] = {}
        for det in list(self.detectors):
            name = getattr(det, "display_name", det.registry_name)
            try:
                outs[name] = det.detect(images, self.train, self.ctx)
            except UnavailableError as exc:  # e.g. needs a registered model or missing weights
                self.skipped[name] = str(exc)
                self.detectors.remove(det)
        return outs

    def quality_of(self, images: np.ndarray) -> dict[str, float]:
        row = {"pixel_fd_heldout": pixel_fd(images, self.train.heldout) if self.train.heldout is not None
               else float("nan")}
        if not self.quality:
            return row
        try:
            from membench.quality.evaluate import evaluate, summary  # the quality branch's metrics, when installed
        except ImportError:
            self.quality_note = "membench.quality not installed: pixel FD only"
            return row
        try:
            rec = evaluate(images, self.train, "digits", references=("heldout",), device=self.device, strict=False)
            s = summary(rec)
            row.update({k: s[k] for k in ("fid_heldout", "kid_heldout", "precision_heldout", "recall_heldout")
                        if k in s})
        except MembenchError as exc:  # UnavailableError included (e.g. no digits classifier weights)
            self.quality_note = f"membench.quality unavailable: {exc}"
        return row


def pixel_fd(images: np.ndarray, reference: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to raw pixels of two image sets."""
    from membench.studies.rfnn_model import frechet_distance

    a = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    b = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    return frechet_distance(a, b)


def memorization_columns(det: str, out: DetectorOutput) -> dict[str, Any]:
    n, k = len(out.flags), int(np.count_nonzero(out.flags))
    lo, hi = wilson_interval(k, n)
    return {"detector": det, "memorized": k / n, "ci_low": lo, "ci_high": hi, "n_flagged": k, "n": n,
            "score_median": float(np.median(out.scores))}


def paired_columns(out: DetectorOutput, ref: DetectorOutput, images: np.ndarray, ref_images: np.ndarray,
                   seed: int = 0) -> dict[str, Any]:
    """Paired comparison with the reference model (the teacher) over the same noises.

    * ``nearest_agreement``: the matched training image is the teacher's, for the same noise;
    * ``copies_kept``: of the noises the teacher turns into a flagged copy, the share whose sample
      here has the same matched training image (kept the copy, flagged or not);
    * ``copies_flagged``: of those, the share also flagged here;
    * ``diff``: memorized fraction here minus the teacher's, with a paired 95% interval.
    """
    n = len(out.flags)
    if len(ref.flags) != n:
        raise MembenchError(f"paired comparison needs the same noises: {n} vs {len(ref.flags)} samples")
    same = out.nearest == ref.nearest
    k = int(same.sum())
    lo, hi = wilson_interval(k, n)
    row: dict[str, Any] = {"nearest_agreement": k / n, "agree_ci_low": lo, "agree_ci_high": hi}
    tf = ref.flags.astype(bool)
    m = int(tf.sum())
    for name, hit in (("copies_kept", same & tf), ("copies_flagged", out.flags.astype(bool) & tf)):
        if m:
            c = int(hit.sum())
            lo, hi = wilson_interval(c, m)
            row.update({name: c / m, f"{name}_ci_low": lo, f"{name}_ci_high": hi})
        else:
            row.update({name: np.nan, f"{name}_ci_low": np.nan, f"{name}_ci_high": np.nan})
    row["teacher_copies"] = m
    d, dlo, dhi, method = paired_difference(out.flags.astype(bool), tf, seed)
    row.update({"diff_vs_teacher": d, "diff_ci_low": dlo, "diff_ci_high": dhi, "diff_ci_method": method})
    dist = np.linalg.norm((images - ref_images).reshape(n, -1), axis=1)
    row["median_l2_to_teacher_sample"] = float(np.median(dist))
    return row


def paired_difference(a: np.ndarray, b: np.ndarray, seed: int = 0) -> tuple[float, float, float, str]:
    """mean(a) - mean(b) for paired booleans, with a 95% interval that respects the pairing.

    Newcombe's square-and-add interval from ``membench.analysis.effect`` when that module is installed;
    otherwise a paired bootstrap over noises (2,000 resamples, seeded).
    """
    n11 = int(np.sum(a & b))
    n10 = int(np.sum(a & ~b))
    n01 = int(np.sum(~a & b))
    n00 = int(np.sum(~a & ~b))
    diff = (n10 - n01) / len(a)
    try:
        from membench.analysis.effect import paired_difference_interval

        _, lo, hi = paired_difference_interval(n11, n10, n01, n00)
        return diff, float(lo), float(hi), "newcombe-paired"
    except ImportError:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(a), size=(2000, len(a)))
        boots = a[idx].mean(1) - b[idx].mean(1)
        return diff, float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975)), "paired-bootstrap"
