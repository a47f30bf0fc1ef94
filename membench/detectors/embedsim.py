"""Embedding similarity: max cosine similarity of each sample to the training set in a feature space.

score = max_i cos(e(x), e(a_i)) over training images a_i (faiss inner product on
L2-normalized vectors), matched index = the argmax, flagged when score > ``threshold``.
Somepalli et al. 2023 use SSCD descriptors with threshold 0.5 and also report the 95th
percentile of the score (recorded in ``info``).

Built-in configurations: ``sscd`` (threshold 0.5, Somepalli et al. 2023), ``clip``
(open_clip; no canonical copy threshold exists, so the default is a parameter to be
calibrated with ``membench validate``), ``digits-sim`` (the project's ``digits-embedder``) and
``embedsim`` (any extractor of the feature registry by name, ``membench list features``;
default: centred raw pixels, a baseline). Training-set embeddings are cached per
(dataset, extractor) (``membench.features.cache``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from membench.data import Dataset
from membench.features.base import FeatureExtractor, make_extractor
from membench.core.errors import MembenchError, UnavailableError
from membench.detectors.knn import SearchOption, knn_cosine
from membench.detectors.base import Detector, DetectorContext, DetectorOutput


@dataclass
class _SimilarityBase(SearchOption, Detector):
    threshold: float = 0.5

    score_name = "max_cosine"
    higher_is_memorized = True

    def make_embedder(self) -> FeatureExtractor:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        # Part of every result key: new embedder weights must not reuse old results.
        cfg = super().config()
        try:
            cfg["embedder_id"] = self.make_embedder().cache_key()
        except UnavailableError:
            cfg["embedder_id"] = "unavailable"
        return cfg

    def check(self) -> None:
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) \
                or not -1.0 <= float(self.threshold) < 1.0:
            raise MembenchError(f"{self.registry_name}: threshold must be a cosine similarity in [-1, 1), "
                                f"got {self.threshold!r}")
        self.make_embedder()  # validates the embedder's options now, before any work

    def input_problem(self, shape: tuple[int, ...], train: Dataset) -> str | None:
        emb = self.make_embedder()
        s_shape, t_shape = tuple(shape), tuple(train.shape)
        for what, one in (("samples", s_shape), (f"training images {train.spec}", t_shape)):
            why = emb.input_problem(one)
            if why:
                return f"{self.registry_name}: {what}: {emb.registry_name} {why}"
        if s_shape != t_shape and emb.feature_dim(s_shape) != emb.feature_dim(t_shape):  # shape-bound (pixels)
            return (f"{self.registry_name}: {emb.registry_name} features of {_fmt(s_shape)} samples and "
                    f"{_fmt(t_shape)} training images differ in size; compare same-shaped images, or "
                    "use an extractor that resizes (sscd, clip)")
        return None

    def detect(self, samples: np.ndarray, train: Dataset, ctx: DetectorContext) -> DetectorOutput:
        from membench.features.cache import training_embeddings

        check_images_pair(samples, train)
        emb = self.make_embedder()
        s_shape, t_shape = tuple(samples.shape[1:]), tuple(train.shape)
        why = self.input_problem(s_shape, train)
        if why:  # e.g. digits-sim on RGB data: cannot run on it (a named detector fails, "all" shows the row)
            raise UnavailableError(why)
        ref, cached = training_embeddings(emb, train, ctx.cache_dir, ctx.device)
        query = emb.embed(samples, ctx.device)
        if query.shape[1] != ref.shape[1]:
            raise MembenchError(f"{self.registry_name}: {emb.registry_name} features of {_fmt(s_shape)} samples and "
                                f"{_fmt(t_shape)} training images differ in size ({query.shape[1]} vs {ref.shape[1]}); "
                                "compare same-shaped images, or use an extractor that resizes (sscd, clip)")
        search: dict = {}
        sim, idx = knn_cosine(query, ref, k=1, index=self.index, info=search)
        score = sim[:, 0].astype(np.float64)
        how, how_train = emb.describe(s_shape), emb.describe(t_shape)  # after embedding: the network is loaded
        info: dict[str, Any] = {**emb.info(), "preprocessing": how, "similarity": "cosine (exact float64 re-rank)",
                                "p95": float(np.quantile(score, 0.95)), "train_embeddings_cached": cached, **search}
        conversions = _conversions(how)
        if s_shape != t_shape:
            info["train_preprocessing"] = how_train
            conversions.append(f"training images {_fmt(t_shape)}: " + ("; ".join(_conversions(how_train)) or "none"))
        if conversions:
            info["note"] = f"{emb.registry_name}: " + "; ".join(conversions)
        return DetectorOutput(scores=score, flags=score > self.threshold, nearest=idx[:, 0], info=info)


def _fmt(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _conversions(how: str) -> list[str]:
    """The parts of a preprocessing line that change the images (channel conversion, resizing)."""
    return [p for p in how.split("; ") if p.startswith(("gray", "RGB", "upsampled", "downsampled", "resized"))]


def check_images_pair(samples: np.ndarray, train: Dataset) -> None:
    """Embedding detectors compare features, so samples and training images may differ in shape
    (each is converted by the extractor, and the record says how); both must be valid images."""
    from membench.data.validate import check_images

    if samples.ndim != 4:
        raise MembenchError(f"samples: expected (N, C, H, W) images, got shape {samples.shape}")
    check_images(samples, "samples", value_range=False)
    if len(train) == 0:
        raise MembenchError(f"training set {train.spec} is empty")


@dataclass
class EmbeddingSimilarity(_SimilarityBase):
    """Any registered feature extractor: ``embedsim:embedder=NAME``; options in ``embedder_options`` (TOML entries)."""

    embedder: str = "pixels"
    embedder_options: dict[str, Any] = field(default_factory=dict)
    # centred pixels: the 1%-FPR cut of `validate` copies-noise on digits:n=1497 was 0.981 (0.960 on n=64)
    threshold: float = 0.98

    def make_embedder(self) -> FeatureExtractor:
        if not isinstance(self.embedder_options, dict):
            raise MembenchError("embedsim: embedder_options must be a table of options")
        return make_extractor(str(self.embedder), **self.embedder_options)


@dataclass
class SSCDSimilarity(_SimilarityBase):
    threshold: float = 0.5  # Somepalli et al. 2023
    checkpoint: str = "sscd_disc_mixup"
    weights: str = ""
    size: int = 320

    def make_embedder(self) -> FeatureExtractor:
        return make_extractor("sscd", checkpoint=self.checkpoint, weights=self.weights, size=self.size)


@dataclass
class ClipSimilarity(_SimilarityBase):
    threshold: float = 0.95  # no canonical value and no CLIP weights here to measure one: calibrate with `validate`
    arch: str = "ViT-B-32"
    pretrained: str = "laion2b_s34b_b79k"

    def make_embedder(self) -> FeatureExtractor:
        return make_extractor("clip", arch=self.arch, pretrained=self.pretrained)


@dataclass
class DigitsSimilarity(_SimilarityBase):
    # the 1%-FPR cut on noisy copies vs held-out digits of digits:n=1497 (model card; 0.972 on n=64)
    threshold: float = 0.985
    weights: str = "models/digits-embedder"

    def make_embedder(self) -> FeatureExtractor:
        return make_extractor("digits-embedder", weights=self.weights)
