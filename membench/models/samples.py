"""Generating and caching sample sets.

A sample set is keyed by the content hash of the checkpoint, the sampler spec, the seed
and the count; it is written once (atomically) to the cache and reused by every detector
and every later run. Sample ``i`` always starts from noise ``noise_for(seed, i)``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from membench.core.io import atomic_save_npz
from membench.core.errors import MembenchError
from membench.core.workspace import default_cache_dir

SAMPLE_FORMAT = 1


@dataclass
class SampleSet:
    images: np.ndarray  # (N, C, H, W) float32 in [-1, 1]
    noise_index: np.ndarray  # (N,) index i of noise_for(seed, i) that made each image
    seed: int
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def save(self, path: str | Path) -> None:
        atomic_save_npz(path, images=self.images, noise_index=self.noise_index,
                        meta=np.array(json.dumps({**self.meta, "seed": self.seed})))

    @classmethod
    def load(cls, path: str | Path) -> "SampleSet":
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"])) if "meta" in z else {}
                return cls(images=z["images"], noise_index=z["noise_index"], seed=int(meta.pop("seed", 0)), meta=meta)
        except Exception as exc:
            raise MembenchError(f"{path}: unreadable sample file: {type(exc).__name__}: {exc}") from None


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MembenchError(f"--device {device}: CUDA is not available on this machine")
    return device


def sample_key(checkpoint_hash: str, sampler: str, seed: int, n: int) -> str:
    from membench.core.io import json_digest

    return json_digest([SAMPLE_FORMAT, checkpoint_hash, sampler, int(seed), int(n)], 20)


def generate(model: Any, sampler: Any, n: int, seed: int, shape: tuple[int, int, int], device: str,
             batch_size: int = 500, progress: bool = False, desc: str = "sample") -> tuple[np.ndarray, np.ndarray]:
    """Run ``sampler`` on ``model`` for noises 0..n-1 of ``seed``; returns (images, noise_index)."""
    import torch

    from membench.core.progress import task, ticking
    from membench.models.samplers.noise import noise_for

    index = np.arange(n, dtype=np.int64)
    out = np.empty((n, *shape), dtype=np.float32)
    nfe = max(1, int(getattr(sampler, "nfe", 1) or 1))
    with task(f"{desc} ({n} samples)", total=n, enabled=progress) as bar:
        for start in range(0, n, batch_size):
            idx = index[start : start + batch_size]
            z = noise_for(seed, idx, shape).to(device)

            def noise_fn(step: int, idx: np.ndarray = idx) -> torch.Tensor:
                return noise_for(seed, idx, shape, step=step).to(device)

            # progress moves with every network evaluation, not only per batch
            x = sampler.sample(ticking(model, bar, len(idx) / nfe), z, noise_fn)
            out[start : start + len(idx)] = x.detach().float().cpu().numpy()
            bar.update(completed=start + len(idx))
    if not np.isfinite(out).all():
        raise MembenchError(f"{desc}: the model produced NaN or infinite samples")
    return out, index


def get_samples(spec: Any, n: int, seed: int, device: str = "auto", cache_dir: Path | None = None,
                progress: bool = False) -> SampleSet:
    """Samples of a registered model (a ``ModelSpec``), from the cache when present."""
    from membench.models.checkpoints import checkpoint_hash, load_denoiser
    from membench.models.specs import make_sampler

    if not isinstance(n, int) or n <= 0:
        raise MembenchError(f"the sample count must be a positive integer, got {n!r}")
    sampler = make_sampler(spec.sampler)
    ckpt_hash = checkpoint_hash(spec.checkpoint)
    key = sample_key(ckpt_hash, spec.sampler, seed, n)
    path = Path(cache_dir or default_cache_dir()) / "samples" / f"{key}.npz"
    from membench.core.locks import file_lock

    # One generator per sample set at a time: a concurrent run waits, then reads the cache.
    with file_lock(path.with_suffix(".lock")):
        if path.is_file():
            try:
                return SampleSet.load(path)
            except MembenchError:
                path.unlink(missing_ok=True)  # a corrupt cache entry is regenerated
        device = resolve_device(device)
        model, meta = load_denoiser(spec.checkpoint, device)
        c, h, w = meta["image_shape"]
        images, index = generate(model, sampler, n, seed, (c, h, w), device, progress=progress,
                                 desc=f"sample {spec.name}")
        ss = SampleSet(images=images, noise_index=index, seed=seed, meta={
            "model": spec.name, "sampler": spec.sampler, "nfe": int(getattr(sampler, "nfe", -1)),
            "checkpoint_hash": ckpt_hash, "key": key, "device": device,
        })
        ss.save(path)
        return ss
