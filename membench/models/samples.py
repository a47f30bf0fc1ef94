"""Generating and caching sample sets.

A sample set is keyed by the content hash of the checkpoint, the sampler spec, the seed
and the count; it is written once (atomically) to the cache and reused by every detector
and every later run. Sample ``i`` always starts from noise ``noise_for(seed, i)``; a
class-conditional model's sample ``i`` gets label ``labels_for(seed, i, classes)`` (or the
labels its entry gives), stored in the sample set beside the images.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from membench.core.io import atomic_save_npz
from membench.core.errors import MembenchError
from membench.core.faults import fault_point
from membench.core.workspace import default_cache_dir
from membench.executors.base import SAMPLE_BATCH

SAMPLE_FORMAT = 1


@dataclass
class SampleSet:
    images: np.ndarray  # (N, C, H, W) float32 in [-1, 1]
    noise_index: np.ndarray  # (N,) index i of noise_for(seed, i) that made each image
    seed: int
    meta: dict[str, Any] = field(default_factory=dict)
    labels: np.ndarray | None = None  # (N,) int64 class labels of a class-conditional model

    def __len__(self) -> int:
        return len(self.images)

    def save(self, path: str | Path) -> None:
        extra = {} if self.labels is None else {"labels": self.labels}
        atomic_save_npz(path, images=self.images, noise_index=self.noise_index,
                        meta=np.array(json.dumps({**self.meta, "seed": self.seed})), **extra)

    @classmethod
    def load(cls, path: str | Path) -> "SampleSet":
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"])) if "meta" in z else {}
                labels = z["labels"] if "labels" in z.files else None
                return cls(images=z["images"], noise_index=z["noise_index"], seed=int(meta.pop("seed", 0)), meta=meta,
                           labels=labels)
        except Exception as exc:
            raise MembenchError(f"{path}: unreadable sample file: {type(exc).__name__}: {exc}") from None


def resolve_device(device: str) -> str:
    """The one device rule (``membench.core.devices.resolve_device``), kept importable from here."""
    from membench.core.devices import resolve_device as resolve

    return resolve(device)


def sample_key(checkpoint_hash: str, sampler: str, seed: int, n: int) -> str:
    from membench.core.io import json_digest

    return json_digest([SAMPLE_FORMAT, checkpoint_hash, sampler, int(seed), int(n)], 20)


def sampling_id(spec: Any) -> str:
    """What, beside the checkpoint, decides a model's samples: the sampler spec, and given labels."""
    labels = getattr(spec, "labels", None)
    if labels is None or labels == "uniform":
        return spec.sampler  # unconditional, or seeded uniform labels: a function of (seed, i, classes)
    if isinstance(labels, str) and Path(labels).is_file():
        from membench.core.io import file_sha256

        labels = f"sha256:{file_sha256(Path(labels))}"
    return f"{spec.sampler}|labels={labels}"


def spec_sample_key(spec: Any, seed: int, n: int) -> tuple[str, str]:
    """(checkpoint hash, sample-set key) of a registered model's samples."""
    from membench.models.checkpoints import checkpoint_hash

    ckpt = checkpoint_hash(spec)
    return ckpt, sample_key(ckpt, sampling_id(spec), seed, n)


def generate(model: Any, sampler: Any, n: int, seed: int, shape: tuple[int, int, int], device: str,
             batch_size: int = SAMPLE_BATCH, progress: bool = False, desc: str = "sample",
             start: int = 0, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run ``sampler`` on ``model`` for noises start..start+n-1 of ``seed`` (and class ``labels[row]``
    for a class-conditional model, one per row); returns (images, noise_index).

    Batches are ``batch_size`` consecutive indices from ``start`` (executors keep them aligned:
    ``membench.executors.base``)."""
    import torch

    from membench.core.progress import task, ticking
    from membench.models.denoisers.labels import Conditioned
    from membench.models.samplers.noise import noise_for

    index = np.arange(start, start + n, dtype=np.int64)
    out = np.empty((n, *shape), dtype=np.float32)
    nfe = max(1, int(getattr(sampler, "nfe", 1) or 1))
    with task(f"{desc} ({n} samples)", total=n, enabled=progress) as bar:
        for row in range(0, n, batch_size):
            idx = index[row : row + batch_size]
            z = noise_for(seed, idx, shape).to(device)

            def noise_fn(step: int, idx: np.ndarray = idx) -> torch.Tensor:
                return noise_for(seed, idx, shape, step=step).to(device)

            cond = None if labels is None else torch.from_numpy(np.asarray(labels[row : row + len(idx)])).to(device)
            # progress moves with every network evaluation, not only per batch
            x = sampler.sample(ticking(Conditioned(model, cond), bar, len(idx) / nfe), z, noise_fn)
            out[row : row + len(idx)] = x.detach().float().cpu().numpy()
            bar.update(completed=row + len(idx))
    if not np.isfinite(out).all():
        raise MembenchError(f"{desc}: the model produced NaN or infinite samples")
    return out, index


def get_samples(spec: Any, n: int, seed: int, device: str = "auto", cache_dir: Path | None = None,
                progress: bool = False, executor: Any = None) -> SampleSet:
    """Samples of a registered model (a ``ModelSpec``), from the cache when present.

    ``executor`` (``membench.executors``; default: this process) makes missing ones; what it
    returns is checked and cached here, the same for every executor.
    """
    from membench.executors.local import LocalExecutor
    from membench.models.checkpoints import checkpoint_hash
    from membench.models.specs import make_sampler

    if not isinstance(n, int) or n <= 0:
        raise MembenchError(f"the sample count must be a positive integer, got {n!r}")
    sampler = make_sampler(spec.sampler)
    ckpt_hash, key = spec_sample_key(spec, seed, n)
    path = Path(cache_dir or default_cache_dir()) / "samples" / f"{key}.npz"
    from membench.core.locks import file_lock

    # One generator per sample set at a time: a concurrent run waits, then reads the cache.
    with file_lock(path.with_suffix(".lock")):
        if path.is_file():
            try:
                return SampleSet.load(path)
            except MembenchError:
                path.unlink(missing_ok=True)  # a corrupt cache entry is regenerated
        images, index, device, labels = (executor or LocalExecutor()).generate(spec, n, seed, device, progress)
        if images.shape[0] != n or not np.array_equal(index, np.arange(n)):
            raise MembenchError(f"sample {spec.name}: the executor returned {images.shape[0]} samples "
                                f"(noise indices {index[:1]}..), expected 0..{n - 1}")
        if not np.isfinite(images).all():
            raise MembenchError(f"sample {spec.name}: the model produced NaN or infinite samples")
        fault_point("samples-generated")
        ss = SampleSet(images=images, noise_index=index, seed=seed, labels=labels, meta={
            "model": spec.name, "sampler": spec.sampler, "nfe": int(getattr(sampler, "nfe", -1)),
            "checkpoint_hash": ckpt_hash, "key": key, "device": device,
        })
        ss.save(path)
        return ss


def model_labels(spec: Any, num_classes: int | None, seed: int, index: np.ndarray) -> np.ndarray | None:
    """The class label of each sample index for a class-conditional model (None: unconditional)."""
    from membench.models.denoisers.labels import resolve_labels

    given = getattr(spec, "labels", None)
    if not num_classes:
        if given not in (None, "uniform"):
            raise MembenchError(f"model {spec.name!r}: labels={given!r} given but the model is not class-conditional")
        return None
    return resolve_labels(given, seed, index, int(num_classes), what=f"model {spec.name!r}")
