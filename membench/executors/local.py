"""The default executor: the model is loaded and sampled in this process."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from membench.executors.base import SAMPLE_BATCH, sample_range


@dataclass
class LocalExecutor:
    batch_size: int = SAMPLE_BATCH

    def generate(self, spec: Any, n: int, seed: int, device: str, progress: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, str, np.ndarray | None]:
        """Samples 0..n-1 of ``seed`` from the registered model ``spec``; returns (images, noise_index,
        device, class labels or None)."""
        from membench.models.checkpoints import load_denoiser
        from membench.models.samples import model_labels, resolve_device

        device = resolve_device(device)
        model, meta = load_denoiser(spec, device)
        index = np.arange(n, dtype=np.int64)
        labels = model_labels(spec, getattr(model, "num_classes", None), seed, index)
        images = sample_range(model, spec.sampler, seed, 0, n, tuple(meta["image_shape"]), device,
                              self.batch_size, progress, desc=f"sample {spec.name}", labels=labels)
        return images, index, device, labels
