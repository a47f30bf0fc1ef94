"""The feature-extractor interface: images (N, C, H, W) in [-1, 1] -> (N, D) float32 vectors.

One interface for the similarity detectors (``embedsim``, ``digits-sim``, ``sscd``, ``clip``)
and the quality metrics (FID, KID, precision/recall through ``membench.features.fidelity``).
An extractor is a dataclass; its fields are its configuration. ``cache_key()`` names the
configuration *and* the content of its weights, so cached features are reused exactly
when they would be recomputed identically. Input conversions (channel count, size) are
explicit: ``describe(shape)`` says what will be done to images of a shape, and detectors
record it in every result; ``input_channels`` and ``input_size`` say which images it takes at all.

An extractor calibrated on one kind of image only (the two digits networks: trained and
thresholded on 1x8x8 gray digits) declares it in ``calibrated_on`` and *refuses* every other
shape with one line naming what to use instead (``instead``). Refusing, not warning: a
converted 3x32x32 photo gets a confident but meaningless score from a digits network (a
3x16x16 random RGB set scored 0.445 "memorized" under ``digits-sim``), and a warning is
easy to miss in a leaderboard.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from membench.core.errors import MembenchError
from membench.core.io import file_sha256 as file_identity  # noqa: F401 (the one file hasher, for extractors)

EMBED_FORMAT = 1  # bump when preprocessing code changes what an embedder returns


@dataclass
class FeatureExtractor:
    """Base class; subclasses are ``@dataclass``es declared in ``membench.features.FEATURES``
    (or plugins), which sets ``registry_name`` when it loads them."""

    registry_name: ClassVar[str] = "?"
    input_channels: ClassVar[tuple[int, ...] | None] = (1, 3)  # accepted channel counts (None: any)
    input_size: ClassVar[tuple[int, int] | None] = None  # the one accepted H x W (None: any, resized inside)
    calibrated_on: ClassVar[tuple[int, int, int] | None] = None  # the only (C, H, W) it is valid for (None: any)
    calibrated_what: ClassVar[str] = ""  # what ``calibrated_on`` images are, for the refusal
    instead: ClassVar[str] = ""  # what to use for other images, for the refusal

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
        """Content hash (or other stable identity) of the weights; part of the cache key.

        Raises UnavailableError when the weights are missing.
        """
        return "none"

    def feature_dim(self, shape: tuple[int, ...]) -> int:
        """D for (C, H, W) images; extractors that know it without their network override this."""
        return int(self.embed(np.zeros((1, *shape), np.float32)).shape[1])

    def info(self) -> dict[str, Any]:
        """How embeddings are computed (weights, preprocessing) for result provenance."""
        return {"embedder": self.registry_name, "config": self.config(), "weights": self.weights_id()}

    # ---------------------------------------------------------------- shared
    batch_size: ClassVar[int] = 256

    def config(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """Validate the configuration; raise MembenchError with one line if it is bad."""

    def input_problem(self, shape: tuple[int, ...]) -> str | None:
        """Why images of shape (C, H, W) cannot be embedded (one line), or None."""
        c, h, w = shape
        if self.calibrated_on is not None and tuple(shape) != tuple(self.calibrated_on):
            cc, ch, cw = self.calibrated_on
            return (f"calibrated only on {cc}x{ch}x{cw} {self.calibrated_what} images, got {c}x{h}x{w}; "
                    f"refused rather than converted (its scores would mean nothing there); use {self.instead}")
        if self.input_channels is not None and c not in self.input_channels:
            if self.input_channels == (1, 3):
                return f"images must have 1 (gray) or 3 (RGB) channels, got {c}"
            return f"images must have {'/'.join(map(str, self.input_channels))} channels, got {c}"
        if self.input_size is not None and (h, w) != tuple(self.input_size):
            return f"takes {self.input_size[0]}x{self.input_size[1]} images, got {h}x{w}"
        return None

    def cache_key(self) -> str:
        from membench.core.io import json_digest

        return json_digest([EMBED_FORMAT, self.registry_name, self.config(), self.weights_id()], 16)

    def model(self, device: str = "cpu") -> Any:
        cache = self.__dict__.setdefault("_models", {})
        if device not in cache:
            cache[device] = self._load(device)
        return cache[device]

    def embed(self, images: np.ndarray, device: str = "cpu") -> np.ndarray:
        """Embed (N, C, H, W) images in [-1, 1]; rows are float32, finite, not normalized unless the model does."""
        import torch

        from membench.data.validate import check_images

        if images.ndim != 4:
            raise MembenchError(f"{self.registry_name}: expected (N, C, H, W) images, got shape {images.shape}")
        problem = self.input_problem(tuple(images.shape[1:]))
        if problem:
            raise MembenchError(f"{self.registry_name}: {problem}")
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


Embedder = FeatureExtractor  # the name plugins subclassed before the registries merged


def make_extractor(spec: str, **options: Any) -> FeatureExtractor:
    """Build a feature extractor from ``name`` or ``name:k=v,...`` (plus keyword options, which win)."""
    from membench.features import FEATURES

    return FEATURES.create(spec, **options)


make_embedder = make_extractor  # the name detectors and plugins used before the registries merged

