"""Feature extractors for the quality metrics, registered with torch-fidelity.

torch-fidelity's convention: an extractor is a ``FeatureExtractorBase`` subclass taking
uint8 images (N, C, H, W) and returning a tuple of named feature tensors; it is registered
once per process under a global name and built by ``create_feature_extractor``, which passes
every keyword (``feature_extractor_weights_path`` among them) to its constructor.

* ``digits`` -> torch-fidelity ``membench-digits``: the project's digits classifier
  (``models/digits-classifier``), layer ``32``. Works offline on the built-in data.
* ``inception-v3`` -> ``membench-inception-v3``: torch-fidelity's standard Inception-v3
  (layer ``2048``), with the weights loaded *safely* by membench (safetensors or
  ``torch.load(weights_only=True)``) from a local file; torch-fidelity itself would
  download them or unpickle the file. Gray images are repeated to three channels.
"""
from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from membench.core.errors import MembenchError, UnavailableError
from membench.core.specs import parse_spec

TF_DIGITS = "membench-digits"
TF_INCEPTION = "membench-inception-v3"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's release asset
INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FILE
EXTRACTORS = ("digits", "inception-v3")

_LOCK = threading.Lock()  # registration
_PATCH_LOCK = threading.Lock()  # the brief swap of torch-fidelity's weight loader
_SHA_CACHE: dict[tuple[str, float, int], str] = {}


@dataclass
class ExtractorSpec:
    """A resolved extractor: its torch-fidelity name, layer and the weights file that defines it."""

    name: str
    tf_name: str
    layer: str
    dim: int
    weights: Path
    weights_sha256: str
    channels: tuple[int, ...] = (1, 3)
    size: tuple[int, int] | None = None  # required H x W, None: any (resized inside)
    options: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """What makes two feature sets comparable: part of every cache key and result."""
        return {"name": self.name, "torch_fidelity_name": self.tf_name, "layer": self.layer, "dim": self.dim,
                "weights_sha256": self.weights_sha256}

    def accepts(self, shape: tuple[int, ...]) -> bool:
        c, h, w = shape
        return c in self.channels and (self.size is None or (h, w) == self.size)

    def check_images(self, shape: tuple[int, ...], what: str) -> None:
        c, h, w = shape
        if not self.accepts(shape):
            need = f"{'/'.join(map(str, self.channels))}x{self.size[0]}x{self.size[1]}" if self.size else "1- or 3-channel"
            hint = "; use --quality-extractor inception-v3 for other images" if self.name == "digits" else ""
            raise MembenchError(f"{what}: the {self.name} extractor takes {need} images, got {c}x{h}x{w}{hint}")


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime, st.st_size)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def inception_weights_path(explicit: str | Path | None = None) -> Path:
    """The local Inception-v3 weights: explicit path, $MEMBENCH_INCEPTION_WEIGHTS, or torch's hub cache."""
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise UnavailableError(f"inception-v3 weights file not found: {p}")
        return p
    env = os.environ.get("MEMBENCH_INCEPTION_WEIGHTS")
    if env:
        p = Path(env)
        if not p.is_file():
            raise UnavailableError(f"$MEMBENCH_INCEPTION_WEIGHTS={env}: file not found")
        return p
    import torch.hub

    p = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if not p.is_file():
        raise UnavailableError(
            f"inception-v3 weights are not available offline: download {INCEPTION_URL} elsewhere and pass "
            f"--quality-extractor inception-v3:weights=PATH (or set $MEMBENCH_INCEPTION_WEIGHTS, or place it at {p})")
    return p


def resolve_extractor(spec: str = "digits") -> ExtractorSpec:
    """``digits``, ``digits:weights=DIR``, ``inception-v3``, ``inception-v3:weights=FILE``."""
    from membench.features.digits_classifier import FEATURE_DIM, WEIGHTS_FILE, resolve_dir

    name, opts = parse_spec(spec)
    bad = set(opts) - {"weights"}
    if name not in EXTRACTORS:
        import difflib

        close = difflib.get_close_matches(name, EXTRACTORS, n=2, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise MembenchError(f"unknown quality extractor {name!r}{hint} (known: {', '.join(EXTRACTORS)})")
    if bad:
        raise MembenchError(f"quality extractor {name!r}: unknown option(s) {sorted(bad)}; options: ['weights']")
    weights = opts.get("weights")
    if name == "digits":
        folder = resolve_dir(weights)
        if not (folder / WEIGHTS_FILE).is_file():
            raise UnavailableError(f"digits classifier weights not found: {folder / WEIGHTS_FILE} "
                                   "(rebuild with `membench train-classifier`)")
        return ExtractorSpec("digits", TF_DIGITS, str(FEATURE_DIM), FEATURE_DIM, folder,
                             _sha256(folder / WEIGHTS_FILE), channels=(1, 3), size=(8, 8), options=opts)
    path = inception_weights_path(weights)
    return ExtractorSpec("inception-v3", TF_INCEPTION, "2048", 2048, path, _sha256(path), channels=(1, 3),
                         size=None, options=opts)


# ---------------------------------------------------------------- torch-fidelity classes


def _load_inception_state(path: str | Path) -> dict[str, Any]:
    """Inception weights as a plain state dict, without unpickling code."""
    import pickle

    import torch

    p = Path(path)
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, ValueError, EOFError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MembenchError(f"{p}: not a loadable Inception-v3 state dict (safe loading refused or failed: {first})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MembenchError(f"{p}: not an Inception-v3 state dict (expected a mapping of tensors)")
    return state


def _make_classes() -> tuple[type, type]:
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase
    from torch_fidelity.helpers import vassert

    from membench.features.digits_classifier import FEATURE_DIM, load_classifier

    class DigitsFeatureExtractor(FeatureExtractorBase):
        """The digits classifier as a torch-fidelity extractor: uint8 1x8x8 (or 3x8x8) -> 32-d."""

        def __init__(self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None,
                     **kwargs: Any) -> None:
            super().__init__(name, features_list)
            self.net, cfg = load_classifier(feature_extractor_weights_path)
            if int(cfg.get("feature_dim", -1)) != FEATURE_DIM:
                raise MembenchError(f"digits classifier: feature_dim {cfg.get('feature_dim')} is not {FEATURE_DIM}")

        @staticmethod
        def get_provided_features_list() -> tuple[str, ...]:
            return (str(FEATURE_DIM), "logits")

        @staticmethod
        def get_default_feature_layer_for_metric(metric: str) -> str:
            return {"isc": "logits", "fid": str(FEATURE_DIM), "kid": str(FEATURE_DIM), "prc": str(FEATURE_DIM)}[metric]

        @staticmethod
        def can_be_compiled() -> bool:
            return False

        @staticmethod
        def get_dummy_input_for_compile() -> torch.Tensor:
            return torch.zeros(1, 1, 8, 8, dtype=torch.uint8)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            vassert(torch.is_tensor(x) and x.dtype == torch.uint8, "Expecting image as torch.Tensor with dtype=torch.uint8")
            vassert(x.dim() == 4 and x.shape[1] in (1, 3) and tuple(x.shape[2:]) == (8, 8),
                    f"Input is not Bx1x8x8 or Bx3x8x8: {tuple(x.shape)}")
            img = x.float() / 127.5 - 1.0  # the classifier was trained on [-1, 1]
            if img.shape[1] == 3:
                img = img.mean(dim=1, keepdim=True)
            raw = self.net.raw_features(img)
            out = {str(FEATURE_DIM): (raw - self.net.feat_mean) / self.net.feat_std, "logits": self.net.head(raw)}
            return tuple(out[k].float() for k in self.features_list)

    class SafeInceptionV3(tf_inception.FeatureExtractorInceptionV3):
        """torch-fidelity's Inception-v3, its weights read by membench without unpickling."""

        def __init__(self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None,
                     **kwargs: Any) -> None:
            state = _load_inception_state(inception_weights_path(feature_extractor_weights_path))
            original = tf_inception.load_state_dict_from_url
            with _PATCH_LOCK:  # hand our state dict to the parent instead of a download
                tf_inception.load_state_dict_from_url = lambda *a, **k: state
                try:
                    super().__init__(name, features_list, feature_extractor_weights_path=None, **kwargs)
                except RuntimeError as exc:  # load_state_dict: missing/unexpected keys or shapes
                    first = str(exc).strip().splitlines()[0]
                    raise MembenchError(f"inception-v3 weights do not fit the network: {first}") from None
                finally:
                    tf_inception.load_state_dict_from_url = original

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            if torch.is_tensor(x) and x.dim() == 4 and x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)  # gray -> RGB, as image folders of gray PNGs would be read
            return super().forward(x)

    return DigitsFeatureExtractor, SafeInceptionV3


_CLASSES: dict[str, type] = {}


def ensure_registered() -> dict[str, type]:
    """Register membench's extractors with torch-fidelity, once per process (its names are global)."""
    with _LOCK:
        if _CLASSES:
            return _CLASSES
        from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

        digits, inception = _make_classes()
        for name, cls in ((TF_DIGITS, digits), (TF_INCEPTION, inception)):
            if name in FEATURE_EXTRACTORS_REGISTRY:  # e.g. a module reload: keep the first
                cls = FEATURE_EXTRACTORS_REGISTRY[name]
            else:
                register_feature_extractor(name, cls)
            _CLASSES[name] = cls
        return _CLASSES
