"""What every executor shares: the sampling batch, shards aligned to it, checkpoints as bytes."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

# Samples per sampler call. The network's float arithmetic depends on the batch it runs in
# (oneDNN picks kernels by shape), so every executor cuts noise indices into the same batches:
# shards are whole batches, and sample i comes out bit for bit the same wherever it is made.
# 500 measured against 125..1000 in benchmarks/test_sampling_bench.py.
SAMPLE_BATCH = 500


def aligned_shards(n: int, workers: int, batch_size: int = SAMPLE_BATCH) -> list[tuple[int, int]]:
    """Split noise indices 0..n-1 into at most ``workers`` contiguous [start, stop) shards of whole batches."""
    if n <= 0 or workers <= 0 or batch_size <= 0:
        raise ValueError("n, workers and batch_size must be positive")
    batches = -(-n // batch_size)
    per = -(-batches // min(workers, batches))
    return [(b * batch_size, min(n, (b + per) * batch_size)) for b in range(0, batches, per)]


def checkpoint_files(path: str | Path) -> dict[str, bytes]:
    """The files of a checkpoint folder (relative path -> bytes), to rebuild it on another machine."""
    root = Path(path)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write_checkpoint_files(files: dict[str, bytes], root: Path) -> Path:
    for rel, data in files.items():
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    return root


def sample_range(model: Any, sampler_spec: str, seed: int, start: int, stop: int, shape: tuple[int, ...],
                 device: str, batch_size: int = SAMPLE_BATCH, progress: bool = False, desc: str = "sample",
                 labels: np.ndarray | None = None) -> np.ndarray:
    """Samples of noise indices start..stop-1 (``start`` on a batch boundary), as the local executor makes them;
    ``labels``: the class of each of those indices for a class-conditional model."""
    from membench.models.samples import generate
    from membench.models.specs import make_sampler

    if start % batch_size:
        raise ValueError(f"shard start {start} is not on a batch boundary ({batch_size})")
    images, _ = generate(model, make_sampler(sampler_spec), stop - start, seed, shape, device,
                         batch_size=batch_size, progress=progress, desc=desc, start=start, labels=labels)
    return images
