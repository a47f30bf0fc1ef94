"""Any registered feature extractor as a torch-fidelity extractor, for the quality metrics.

torch-fidelity's convention: an extractor is a ``FeatureExtractorBase`` subclass taking
uint8 images (N, C, H, W) and returning a tuple of named feature tensors; it is registered
once per process under a global name and built by ``create_feature_extractor``, which
passes every keyword to its constructor. One generic adapter serves every extractor of
``membench.features.FEATURES``: ``membench-<name>``, one layer ``features``; uint8 levels
are mapped to [-1, 1] (``x / 127.5 - 1``) and handed to the extractor's own network.

``resolve_extractor("digits")`` is what the quality code uses: a registered name with
options (``inception-v3:weights=FILE``), plus ``digits``, the quality metrics' name for
``digits-classifier`` since before the registries merged (the CLI default).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from membench.core.errors import MembenchError
from membench.core.specs import format_spec, parse_spec
from membench.features.base import FeatureExtractor

LAYER = "features"  # the one layer the adapter provides
QUALITY_NAMES = {"digits": "digits-classifier"}  # `--quality-extractor digits` (the default)
PREFIX = "membench-"

_LOCK = threading.Lock()  # registration with torch-fidelity (its names are global)
_CLASSES: dict[str, type] = {}


def fidelity_name(name: str) -> str:
    """The torch-fidelity name of the registered extractor ``name``."""
    return PREFIX + name


@dataclass
class ExtractorSpec:
    """A feature extractor as the quality metrics use it: its torch-fidelity name, layer and identity."""

    extractor: FeatureExtractor
    key: str  # the extractor's cache key (configuration + weights content)

    @property
    def name(self) -> str:
        return self.extractor.registry_name

    @property
    def tf_name(self) -> str:
        return fidelity_name(self.name)

    @property
    def layer(self) -> str:
        return LAYER

    def dim(self, shape: tuple[int, ...]) -> int:
        return self.extractor.feature_dim(shape)

    def identity(self) -> dict[str, Any]:
        """What makes two feature sets comparable: part of every cache key and result."""
        return {"name": self.name, "torch_fidelity_name": self.tf_name, "layer": self.layer, "key": self.key}

    def accepts(self, shape: tuple[int, ...]) -> bool:
        return self.extractor.input_problem(shape) is None

    def problem(self, shape: tuple[int, ...]) -> str | None:
        """Why the extractor cannot take (C, H, W) images (one line naming what to use instead), or None."""
        why = self.extractor.input_problem(shape)
        if why is None:
            return None
        c, h, w = shape
        hint = "" if "; use " in why else "; use --quality-extractor inception-v3 or clip for other images"
        return f"the {self.name} extractor cannot take {c}x{h}x{w} images: {why}{hint}"

    def check_images(self, shape: tuple[int, ...], what: str) -> None:
        why = self.problem(shape)
        if why:
            raise MembenchError(f"{what}: {why}")


def resolve_extractor(spec: str = "digits") -> ExtractorSpec:
    """``digits``, ``digits-classifier:weights=DIR``, ``inception-v3:weights=FILE``, any registered name.

    Unknown names and options raise MembenchError; missing weights raise UnavailableError.
    """
    from membench.features import FEATURES

    asked, opts = parse_spec(spec)
    name = QUALITY_NAMES.get(asked, asked)
    if FEATURES.find(name) is None:
        raise FEATURES.unknown(asked, extra=list(QUALITY_NAMES), noun="quality extractor")
    ext = FEATURES.create(format_spec(name, opts))
    return ExtractorSpec(ext, ext.cache_key())  # the key hashes the weights: missing ones are said now


# ---------------------------------------------------------------- torch-fidelity


def _adapter_class(name: str) -> type:
    """A torch-fidelity extractor class for the registered extractor ``name``."""
    import torch
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase
    from torch_fidelity.helpers import vassert

    class FidelityAdapter(FeatureExtractorBase):
        """``extractor=`` (a built FeatureExtractor) or the registered default, with
        ``feature_extractor_weights_path`` as its ``weights`` option when given."""

        def __init__(self, tf_name: str, features_list: list[str], extractor: FeatureExtractor | None = None,
                     feature_extractor_weights_path: str | None = None, **kwargs: Any) -> None:
            from membench.features import FEATURES

            super().__init__(tf_name, features_list)
            if extractor is None:
                options = {"weights": str(feature_extractor_weights_path)} if feature_extractor_weights_path else {}
                extractor = FEATURES.create(name, **options)
            self.extractor = extractor
            # its own copy of the network: create_feature_extractor moves this module to the device
            self.net = extractor._load("cpu")

        @staticmethod
        def get_provided_features_list() -> tuple[str, ...]:
            return (LAYER,)

        @staticmethod
        def get_default_feature_layer_for_metric(metric: str) -> str:
            if metric not in ("fid", "kid", "prc"):
                raise MembenchError(f"quality extractor {name!r}: no layer for {metric!r} (only fid, kid, prc)")
            return LAYER

        @staticmethod
        def can_be_compiled() -> bool:
            return False

        @staticmethod
        def get_dummy_input_for_compile() -> torch.Tensor:
            return torch.zeros(1, 3, 8, 8, dtype=torch.uint8)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            vassert(torch.is_tensor(x) and x.dtype == torch.uint8, "Expecting image as torch.Tensor with dtype=torch.uint8")
            img = x.float() / 127.5 - 1.0  # membench's extractors take [-1, 1]
            return (self.extractor._embed_batch(self.net, img).float(),)

    FidelityAdapter.__name__ = FidelityAdapter.__qualname__ = f"FidelityAdapter[{name}]"
    return FidelityAdapter


def ensure_registered(name: str) -> str:
    """Register the extractor ``name`` with torch-fidelity, once per process; its torch-fidelity name."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    tf_name = fidelity_name(name)
    with _LOCK:
        if tf_name not in _CLASSES:
            if tf_name in FEATURE_EXTRACTORS_REGISTRY:  # e.g. a module reload: keep the first
                _CLASSES[tf_name] = FEATURE_EXTRACTORS_REGISTRY[tf_name]
            else:
                _CLASSES[tf_name] = _adapter_class(name)
                register_feature_extractor(tf_name, _CLASSES[tf_name])
    return tf_name
