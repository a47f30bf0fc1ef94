"""Raw pixels as the features: the baseline every learned extractor should beat."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from membench.features.base import FeatureExtractor


@dataclass
class PixelEmbedder(FeatureExtractor):
    """Flattened pixels; ``center=True`` subtracts each image's mean (cosine becomes Pearson correlation)."""

    center: bool = True

    batch_size = 4096
    input_channels = None  # any image flattens

    def _embed_batch(self, model: Any, x: Any) -> Any:
        flat = x.reshape(x.shape[0], -1)
        return flat - flat.mean(1, keepdim=True) if self.center else flat

    def describe(self, shape: tuple[int, ...]) -> str:
        return "flattened pixels in [-1, 1]" + (", per-image mean removed" if self.center else "")
