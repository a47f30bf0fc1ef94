"""The built-in dataset ``digits``: scikit-learn's bundled handwritten digits (no download).

1,797 gray 8x8 images, exact duplicates removed (none are found: 1,797 remain), scaled to [-1, 1]. All
subsets of one ``seed`` share the same held-out split and are nested (``digits:n=64`` is
inside ``digits:n=512``), so models trained on different sizes are compared against the
same unseen images.
"""
from __future__ import annotations

import numpy as np

from membench.core.errors import MembenchError
from membench.core.specs import format_spec
from membench.data.datasets import Dataset


def digits_pool() -> tuple[np.ndarray, np.ndarray]:
    """(index in scikit-learn's order, images (N, 1, 8, 8) in [-1, 1]) of the de-duplicated pool."""
    from sklearn.datasets import load_digits

    raw = load_digits().images.astype(np.float32)  # (1797, 8, 8) in 0..16
    _, first = np.unique(raw.reshape(len(raw), -1), axis=0, return_index=True)
    keep = np.sort(first)  # drop exact duplicates, keep source order
    return keep, raw[keep][:, None] / 8.0 - 1.0


def digits_targets() -> np.ndarray:
    """The digit (0-9) of every image of scikit-learn's order, as int64."""
    from sklearn.datasets import load_digits

    return load_digits().target.astype(np.int64)


def load(n: int | None = None, seed: int = 0, holdout: int = 300) -> Dataset:
    """``n`` training images (default: all not held out) and ``holdout`` held-out ones for ``seed``."""
    keep, pool = digits_pool()
    if not isinstance(holdout, int) or isinstance(holdout, bool) or not 0 <= holdout < len(pool):
        raise MembenchError(f"digits: holdout must be an integer in [0, {len(pool) - 1}], got {holdout!r}")
    available = len(pool) - holdout
    if n is None:
        n = available
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0 or n > available:
        raise MembenchError(f"digits: n must be an integer in [1, {available}] (holdout={holdout}), got {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise MembenchError(f"digits: seed must be an integer, got {seed!r}")
    order = np.random.default_rng(seed).permutation(len(pool))
    held, train = order[:holdout], order[holdout : holdout + n]
    targets = digits_targets()[keep]
    return Dataset(
        spec=format_spec("digits", {"n": n, "seed": seed, "holdout": holdout}),
        images=pool[train],
        heldout=pool[held] if holdout else None,
        source_index=keep[train],
        meta={"source": "sklearn.datasets.load_digits", "deduplicated_pool": len(pool), "num_classes": 10},
        labels=targets[train],
        heldout_labels=targets[held] if holdout else None,
    )
