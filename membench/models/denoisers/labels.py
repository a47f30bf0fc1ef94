"""Class labels for class-conditional denoisers: one label per sample index, fixed for a seed.

``labels_for(seed, indices, num_classes)`` draws label i from its own stream
(seed, i, a tag apart from the noises), so teacher and student get the same label for sample i
whatever the batch; ``Conditioned`` binds labels to a denoiser so that samplers keep calling
``D(x, sigma)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from membench.core.errors import MembenchError

LABEL_STREAM = (0, 7)  # appended to (seed, index): disjoint from noise_for's (seed, index, step)


def labels_for(seed: int, indices: np.ndarray, num_classes: int) -> np.ndarray:
    """Uniform labels in [0, num_classes), one independent stream per (seed, index)."""
    return np.array([np.random.default_rng([int(seed), int(i), *LABEL_STREAM]).integers(num_classes)
                     for i in indices], dtype=np.int64)


def resolve_labels(choice: Any, seed: int, indices: np.ndarray, num_classes: int, what: str = "labels") -> np.ndarray:
    """The labels of samples ``indices``: ``None``/"uniform" (seeded), an int (every sample that
    class), a ``.npy`` file or an array indexed by sample index. Out-of-range labels are one line."""
    if choice is None or (isinstance(choice, str) and choice == "uniform"):
        return labels_for(seed, indices, num_classes)
    if isinstance(choice, (int, np.integer)) and not isinstance(choice, bool):
        out = np.full(len(indices), int(choice), dtype=np.int64)
    else:
        if isinstance(choice, (str, Path)):
            path = Path(choice)
            if path.suffix != ".npy" or not path.is_file():
                raise MembenchError(f"{what}: expected 'uniform', a class number or a .npy file of labels, got {choice!r}")
            arr = np.load(path, allow_pickle=False)
        else:
            arr = np.asarray(choice)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise MembenchError(f"{what}: labels must be a 1-D integer array, got {arr.dtype} of shape {arr.shape}")
        if len(indices) and int(np.max(indices)) >= len(arr):
            raise MembenchError(f"{what}: {len(arr)} labels given, sample index {int(np.max(indices))} needs more")
        out = arr[np.asarray(indices, dtype=np.int64)].astype(np.int64)
    if len(out) and (out.min() < 0 or out.max() >= num_classes):
        raise MembenchError(f"{what}: labels out of range: the model has {num_classes} classes, got "
                            f"{int(out.min())}..{int(out.max())}")
    return out


class Conditioned:
    """``denoiser`` with ``labels`` bound: called as D(x, sigma); other attributes pass through."""

    def __init__(self, denoiser: Any, labels: torch.Tensor | None):
        self.denoiser, self.labels = denoiser, labels

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        if self.labels is None:
            return self.denoiser(x, sigma)
        return self.denoiser(x, sigma, self.labels)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.denoiser, name)
