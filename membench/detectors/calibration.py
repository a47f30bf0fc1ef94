"""Calibration of a detector against never-trained images: its false-flag rate, and a threshold
set for a stated false-flag rate.

Every per-sample detector is also run on the training set's **held-out** images (never trained
on) against the same training set. The share of them it flags is its false-flag rate at the
threshold used, the floor a memorized fraction must be read against (``carlini`` flags 30% of
noisy held-out digits at its default cut). It is stored in the detection record as the metric
``heldout_flagged`` (95% Wilson interval over held-out images) and as the record's control
(``null["heldout"]``), and shown beside every fraction in the leaderboard.

``<detector>:fpr=0.01`` sets the threshold from those held-out scores instead of the
detector's default: the strictest cut that flags at most ``fpr`` of the held-out images
(ties at the cut are not flagged). The cut is recorded (``info.calibration.threshold``). A
detector that has its own ``fpr`` option (``sharpness``) keeps it.

Detectors whose statistic is not a per-image copy score (the model-level membership tests, the
set-level data-copying tests) say so with ``calibrate_on_heldout = False``; their records
carry their own null instead.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from membench.core.errors import MembenchError

if TYPE_CHECKING:
    from membench.data import Dataset
    from membench.detectors.base import Detector, DetectorContext, DetectorOutput


def take_fpr(cls: Any, params: dict[str, Any]) -> float | None:
    """Remove the generic ``fpr`` option from ``params`` (unless ``cls`` has its own) and check it."""
    from membench.core.registry import option_names

    own = option_names(cls)
    if "fpr" not in params or own is None or "fpr" in own:
        return None
    fpr = params.pop("fpr")
    if isinstance(fpr, bool) or not isinstance(fpr, (int, float)) or not 0.0 < float(fpr) < 1.0:
        raise MembenchError(f"fpr must be a number in (0, 1), got {fpr!r}")
    if not getattr(cls, "calibrate_on_heldout", True):
        raise MembenchError(f"detector {getattr(cls, 'registry_name', cls.__name__)!r} has no per-image threshold "
                            "to calibrate (fpr= does not apply)")
    return float(fpr)


def threshold_at_fpr(heldout_scores: np.ndarray, fpr: float, higher_is_memorized: bool) -> float:
    """The strictest cut that flags at most ``fpr`` of ``heldout_scores`` (flag: score > cut, or < cut)."""
    s = np.sort(np.asarray(heldout_scores, dtype=np.float64))
    if len(s) == 0:
        raise MembenchError("fpr=: the training set has no held-out images to calibrate on")
    k = int(np.floor(fpr * len(s)))  # at most k held-out images may be flagged
    return float(s[len(s) - 1 - k]) if higher_is_memorized else float(s[k])


def flags_at(scores: np.ndarray, threshold: float, higher_is_memorized: bool) -> np.ndarray:
    return np.asarray(scores) > threshold if higher_is_memorized else np.asarray(scores) < threshold


def calibrate(det: "Detector", out: "DetectorOutput", train: "Dataset", ctx: "DetectorContext"
              ) -> tuple["DetectorOutput", dict[str, Any] | None]:
    """Score the held-out images; re-threshold ``out`` when ``fpr=`` was asked.

    Returns the (possibly re-flagged) output and the control: ``{"n", "n_flagged", "flagged",
    "interval", "threshold", "fpr_target", "scores"}``, or None when there is no held-out split or
    the detector is not calibrated this way.
    """
    fpr = getattr(det, "fpr_target", None)
    heldout = getattr(train, "heldout", None)
    if not getattr(det, "calibrate_on_heldout", True) or heldout is None or len(heldout) == 0:
        if fpr is not None:
            raise MembenchError(f"{getattr(det, 'display_name', det.registry_name)}: fpr= needs held-out images; "
                                f"{train.spec} has none")
        return out, None
    from membench.core.stats import wilson_interval

    if getattr(ctx, "labels", None) is not None:  # class-conditional: the held-out images carry their own classes
        from dataclasses import replace

        ctx = replace(ctx, labels=getattr(train, "heldout_labels", None))
    ctrl = det.detect(np.asarray(heldout, dtype=np.float32), train, ctx)
    higher = bool(det.higher_is_memorized)
    threshold = None
    held_flags = np.asarray(ctrl.flags, dtype=bool)
    if fpr is not None:
        threshold = threshold_at_fpr(ctrl.scores, fpr, higher)
        held_flags = flags_at(ctrl.scores, threshold, higher)
        out.flags = flags_at(out.scores, threshold, higher)
    k, n = int(held_flags.sum()), len(held_flags)
    return out, {"n": n, "n_flagged": k, "flagged": k / n, "interval": list(wilson_interval(k, n)),
                 "threshold": threshold, "fpr_target": fpr, "scores": np.asarray(ctrl.scores)}
