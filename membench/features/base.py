"""The embedder interface: images (N, C, H, W) in [-1, 1] -> (N, D) float32 vectors.

An embedder is a dataclass; its fields are its configuration. ``cache_key()`` names the
configuration *and* the content of its weights, so cached training-set embeddings are
reused exactly when they would be recomputed identically. Input conversions (channel
count, size) are explicit: ``describe(shape)`` says what will be done to images of a shape,
and detectors record it in every result.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from membench.core.errors import MembenchError
from membench.core.specs import parse_spec

EMBED_FORMAT = 1  # bump when preprocessing code changes what an embedder returns


@dataclass
class Embedder:
    """Base class; subclasses are ``@dataclass``es registered with ``@register("embedders", name)``."""

    registry_name: ClassVar[str] = "?"

    # ---------------------------------------------------------------- to implement
    def _load(self, device: str) -> Any:
        """Build or load the network (called once per device); raise UnavailableError if weights are missing."""
        return None

    def _embed_batch(self, model: Any, x: Any) -> Any:
        """(B, C, H, W) torch tensor in [-1, 1] on the model's device -> (B, D) tensor."""
        raise NotImplementedError

    def describe(self, shape: tuple[int, ...]) -> str:
        """One line: what is done to (C, H, W) images before the network (conversions included)."""
        return ""

    def weights_id(self) -> str:
        """Content hash (or other stable identity) of the weights; part of the cache key."""
        return "none"

    def info(self) -> dict[str, Any]:
        """How embeddings are computed (weights, preprocessing) for result provenance."""
        return {"embedder": self.registry_name, "config": self.config(), "weights": self.weights_id()}

    # ---------------------------------------------------------------- shared
    batch_size: ClassVar[int] = 256

    def config(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """Validate the configuration; raise MembenchError with one line if it is bad."""

    def cache_key(self) -> str:
        text = json.dumps([EMBED_FORMAT, self.registry_name, self.config(), self.weights_id()], sort_keys=True,
                          default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def model(self, device: str = "cpu") -> Any:
        cache = self.__dict__.setdefault("_models", {})
        if device not in cache:
            cache[device] = self._load(device)
        return cache[device]

    def embed(self, images: np.ndarray, device: str = "cpu") -> np.ndarray:
        """Embed (N, C, H, W) images in [-1, 1]; rows are float32, finite, not normalized unless the model does."""
        import torch

        from membench.data.datasets import check_images

        if images.ndim != 4:
            raise MembenchError(f"{self.registry_name}: expected (N, C, H, W) images, got shape {images.shape}")
        check_images(np.asarray(images[:1]), f"{self.registry_name} input", value_range=False)
        model = self.model(device)
        out: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                block = np.ascontiguousarray(images[start : start + self.batch_size], dtype=np.float32)
                if not np.isfinite(block).all():
                    raise MembenchError(f"{self.registry_name}: input images contain NaN or infinite values")
                x = torch.from_numpy(block).to(device)
                y = self._embed_batch(model, x)
                if y.ndim != 2 or y.shape[0] != x.shape[0]:
                    raise MembenchError(f"{self.registry_name}: the network returned shape {tuple(y.shape)}, "
                                        f"expected ({x.shape[0]}, D)")
                out.append(y.detach().float().cpu().numpy())
        vecs = np.concatenate(out).astype(np.float32, copy=False)
        if not np.isfinite(vecs).all():
            raise MembenchError(f"{self.registry_name}: the network produced NaN or infinite embeddings")
        return vecs


def make_embedder(spec: str, **options: Any) -> Embedder:
    """Build an embedder from ``name`` or ``name:k=v,...`` (plus keyword options, which win)."""
    from membench.core.registry import get_class, instantiate

    name, overrides = parse_spec(spec)
    cls = get_class("embedders", name)
    params = {**overrides, **options}
    emb = instantiate("embedders", name, cls, params)
    emb.check()
    return emb


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def file_identity(path: str | Path) -> str:
    """sha256 of a weights file, memoized on (path, size, mtime) so large files are hashed once."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]
