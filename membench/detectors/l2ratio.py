"""L2 ratio: distance to the nearest over distance to the second-nearest training image.

r = ||x - a1|| / ||x - a2|| on flattened pixels; memorized iff r < 1/3 (Yoon et al. 2023;
Gu et al. 2023 `mem_ratio.py`; Bonnaire et al. 2025). The ratio is invariant to scaling
or shifting samples and training images alike, so the pixel range does not matter;
``quantize=True`` rounds samples to uint8 levels first, as Gu et al. do (Bonnaire et al.
do not); the choice is recorded in every result.
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import Any

import numpy as np

from membench.data import Dataset
from membench.core.errors import MembenchError
from membench.detectors.knn import SearchOption, knn_l2
from membench.detectors.base import Detector, DetectorContext, DetectorOutput, check_compatible


def quantize_uint8(images: np.ndarray) -> np.ndarray:
    """Round [-1, 1] images to the 256 levels a saved PNG would have, back in [-1, 1]."""
    levels = np.clip(np.round((images + 1.0) * 127.5), 0, 255)
    return (levels / 127.5 - 1.0).astype(np.float32)


@dataclass
class L2Ratio(SearchOption, Detector):
    """Nearest / second-nearest training distance ratio; flagged below ``threshold``."""

    threshold: float = 1.0 / 3.0
    quantize: bool = False
    same_class: bool = False  # compare each sample with training images of its own class only

    score_name = "l2_ratio"
    higher_is_memorized = False
    needs_training_shape = True

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        if not cfg.get("same_class"):
            cfg.pop("same_class", None)  # the default keeps result keys as they were before the option existed
        return cfg

    def check(self) -> None:
        if not 0.0 < float(self.threshold) <= 1.0:
            raise MembenchError(f"l2ratio: threshold must be in (0, 1], got {self.threshold}")

    def detect(self, samples: np.ndarray, train: Dataset, ctx: DetectorContext) -> DetectorOutput:
        check_compatible(samples, train)
        if len(train) < 2:
            raise MembenchError(f"l2ratio needs at least 2 training images, {train.spec} has {len(train)}")
        x = quantize_uint8(samples) if self.quantize else samples
        search: dict = {}
        if self.same_class:
            from membench.detectors.classes import knn_by_class

            dist, idx = knn_by_class(x, ctx.labels, train, 2, "l2ratio")
        else:
            dist, idx = knn_l2(x, train.images, k=2, index=self.index, info=search)
        d1, d2 = dist[:, 0], dist[:, 1]
        ratio = np.where(d2 > 0, d1 / np.where(d2 > 0, d2, 1.0), 0.0)
        return DetectorOutput(
            scores=ratio,
            flags=ratio < self.threshold,
            nearest=idx[:, 0],
            extras={"d1": d1, "d2": d2, "second": idx[:, 1]},
            info={"space": "pixels", "quantized_uint8": bool(self.quantize), "same_class": bool(self.same_class),
                  **search},
        )
