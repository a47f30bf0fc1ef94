"""Per-sample noises derived from (seed, sample index, step).

Every model sampled with the same seed starts sample ``i`` from the same initial noise,
whatever the sample count, batch size or device; that is what makes teacher/student
comparisons pairable sample by sample.
"""
from __future__ import annotations

import numpy as np
import torch


def noise_for(seed: int, indices: np.ndarray, shape: tuple[int, ...], step: int = 0) -> torch.Tensor:
    """Standard normal noise, one independent stream per (seed, index, step); float32 on CPU."""
    out = np.empty((len(indices), *shape), dtype=np.float32)
    for row, i in enumerate(indices):
        rng = np.random.default_rng([int(seed), int(i), int(step)])
        out[row] = rng.standard_normal(shape, dtype=np.float32)
    return torch.from_numpy(out)
