"""Same-class nearest-neighbour search: each sample is compared only with training images of its class.

For class-conditional models (``same_class=true`` on ``l2ratio`` and ``carlini``). It needs the
samples' labels (a class-conditional model's samples carry them) and the training set's
labels; without either it is refused in one line. Ordinary search needs neither.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from membench.core.errors import MembenchError


def knn_by_class(samples: np.ndarray, sample_labels: Any, train: Any, k: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Distances and (global) training indices of the ``k`` nearest same-class training images."""
    from membench.detectors.knn import knn_l2

    if sample_labels is None:
        raise MembenchError(f"{what}: same_class=true needs the samples' class labels (samples of a class-conditional "
                            "model); ordinary search needs none")
    if train.labels is None:
        raise MembenchError(f"{what}: same_class=true needs class labels for the training set {train.spec}")
    labels = np.asarray(sample_labels)
    if len(labels) != len(samples):
        raise MembenchError(f"{what}: {len(labels)} sample labels for {len(samples)} samples")
    dist = np.empty((len(samples), k), dtype=np.float64)
    idx = np.empty((len(samples), k), dtype=np.int64)
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        members = np.flatnonzero(train.labels == c)
        if len(members) < k:
            raise MembenchError(f"{what}: class {int(c)} has {len(members)} training images in {train.spec}, "
                                f"same-class search needs at least {k}")
        d, i = knn_l2(samples[rows], train.images[members], k=k)
        dist[rows], idx[rows] = d, members[i]
    return dist, idx
