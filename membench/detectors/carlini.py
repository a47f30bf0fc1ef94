"""Calibrated L2 distance of Carlini et al. 2023 ("Extracting Training Data from Diffusion Models", Sec. 5).

    l(x) = ||x - a1|| / (alpha * mean_{j=1..n} ||x - a_j||)

where a1..an are the ``n`` nearest training images (the mean includes the nearest). The
denominator calibrates the distance by how crowded the neighbourhood is, so a sample
that is close to one training image *and* far from the rest scores low. Defaults follow
the paper's CIFAR-10 setting: n = 50, alpha = 0.5. With alpha inside the formula the
natural cut is 1 (nearest distance below alpha times the neighbourhood mean): flagged when
l < ``threshold`` = 1. When the training set has fewer than ``n`` images all are used (and
recorded). Flattened pixels, exact distances (faiss candidates re-ranked in float64).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from membench.data import Dataset
from membench.core.errors import MembenchError
from membench.detectors.knn import SearchOption, knn_l2
from membench.detectors.base import Detector, DetectorContext, DetectorOutput, check_compatible


@dataclass
class CalibratedL2(SearchOption, Detector):
    n: int = 50
    alpha: float = 0.5
    threshold: float = 1.0

    score_name = "calibrated_l2"
    higher_is_memorized = False
    needs_training_shape = True

    def check(self) -> None:
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 2:
            raise MembenchError(f"carlini: n must be an integer >= 2, got {self.n!r}")
        if not 0.0 < float(self.alpha) <= 1.0:
            raise MembenchError(f"carlini: alpha must be in (0, 1], got {self.alpha}")
        # l <= 1/alpha always (the nearest distance is at most the mean), so larger thresholds flag everything.
        if not 0.0 < float(self.threshold) <= 1.0 / float(self.alpha):
            raise MembenchError(f"carlini: threshold must be in (0, 1/alpha = {1 / float(self.alpha):g}], got {self.threshold}")

    def detect(self, samples: np.ndarray, train: Dataset, ctx: DetectorContext) -> DetectorOutput:
        check_compatible(samples, train)
        if len(train) < 2:
            raise MembenchError(f"carlini needs at least 2 training images, {train.spec} has {len(train)}")
        n = min(self.n, len(train))
        search: dict = {}
        dist, idx = knn_l2(samples, train.images, k=n, index=self.index, info=search)
        mean = dist.mean(axis=1)
        score = np.where(mean > 0, dist[:, 0] / (self.alpha * np.where(mean > 0, mean, 1.0)), 0.0)
        return DetectorOutput(
            scores=score, flags=score < self.threshold, nearest=idx[:, 0],
            extras={"d1": dist[:, 0], "mean_dn": mean},
            info={"space": "pixels", "n_used": n, "alpha": self.alpha, **search,
                  **({"note": f"n={self.n} > training set size; used all {n}"} if n < self.n else {})},
        )
