"""``digits-classifier``: the project's digits classifier, the offline features for quality metrics.

A small CNN on 1x8x8 images in [-1, 1]. Its 32-d penultimate layer (before the ReLU, so no
feature dimension is dead), standardized, plays the role Inception's 2048-d pool layer
plays for FID on natural images. Weights live in ``models/digits-classifier/`` as
safetensors plus a JSON config; loading never unpickles anything. Not to be confused with
``digits-embedder`` (``digits.py``), the copy-detection network of ``digits-sim``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from membench.core.io import read_tagged_json
from membench.core.errors import MembenchError, UnavailableError
from membench.core.workspace import builtin_models_dir
from membench.features.base import FeatureExtractor, file_identity

DEFAULT_DIR = builtin_models_dir() / "digits-classifier"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "membench-digits-classifier/1"
FEATURE_DIM = 32
N_CLASSES = 10
IMAGE_SHAPE = (1, 8, 8)


def build_classifier(feature_dim: int = FEATURE_DIM, n_classes: int = N_CLASSES) -> Any:
    import torch
    from torch import nn

    class DigitsClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 8x8 -> 4x4
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Flatten(),  # keep the layout: 64x4x4
            )
            self.embed = nn.Linear(64 * 4 * 4, feature_dim)
            self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.2), nn.Linear(feature_dim, n_classes))
            # Fixed standardization of the features, set once after training from the training pool:
            # KID's cubic kernel (x.y/d + 1)^3 is ill-conditioned in float32 on raw activations of
            # scale ~5-10 (Inception's pool features are O(1)).
            self.register_buffer("feat_mean", torch.zeros(feature_dim))
            self.register_buffer("feat_std", torch.ones(feature_dim))

        def raw_features(self, x: torch.Tensor) -> torch.Tensor:
            return self.embed(self.body(x))

        def features(self, x: torch.Tensor) -> torch.Tensor:
            return (self.raw_features(x) - self.feat_mean) / self.feat_std

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # logits
            return self.head(self.raw_features(x))

    return DigitsClassifier()


def resolve_dir(path: str | Path | None) -> Path:
    return Path(path) if path else DEFAULT_DIR


def load_classifier(path: str | Path | None = None) -> tuple[Any, dict[str, Any]]:
    """Load weights (safetensors only) and config; raises UnavailableError when they are missing."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = resolve_dir(path)
    weights, cfg_file = folder / WEIGHTS_FILE, folder / CONFIG_FILE
    if not weights.is_file() or not cfg_file.is_file():
        raise UnavailableError(
            f"digits classifier weights not found in {folder} (need {WEIGHTS_FILE} and {CONFIG_FILE}); "
            "rebuild them with `membench train-classifier`")
    cfg = read_tagged_json(cfg_file, FORMAT, "digits classifier config")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise MembenchError(f"{weights}: cannot read safetensors weights: {exc}") from None
    model = build_classifier(int(cfg.get("feature_dim", FEATURE_DIM)), int(cfg.get("n_classes", N_CLASSES)))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise MembenchError(f"{weights}: weights do not fit the digits classifier: {first}") from None
    if not all(torch.isfinite(t).all() for t in state.values()):
        raise MembenchError(f"{weights}: weights contain NaN or infinite values")
    return model.eval().requires_grad_(False), cfg


def save_classifier(model: Any, folder: Path, cfg: dict[str, Any]) -> None:
    """Write weights + config into ``folder`` (the caller makes the folder atomic)."""
    from safetensors.torch import save_file

    from membench.core.io import atomic_write_json

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    atomic_write_json(folder / CONFIG_FILE, {**cfg, "format": FORMAT})


@dataclass
class DigitsClassifierFeatures(FeatureExtractor):
    """The classifier's standardized 32-d features of 1x8x8 gray digits (nothing else: other shapes are refused)."""

    weights: str = ""  # folder with model.safetensors + config.json; empty: the committed classifier

    input_size = (8, 8)  # the network has no resizing: other sizes are refused, not converted
    calibrated_on = (1, 8, 8)  # trained on gray digits: an RGB or larger image is refused, not converted
    calibrated_what = "gray digit"
    instead = "--quality-extractor inception-v3 or clip (their weights: `membench weights list`)"
    batch_size = 256

    def folder(self) -> Path:
        return resolve_dir(self.weights or None)

    def weights_id(self) -> str:
        f = self.folder() / WEIGHTS_FILE
        if not f.is_file():
            raise UnavailableError(f"digits classifier weights not found: {f} (rebuild with `membench train-classifier`)")
        return file_identity(f)

    def config(self) -> dict[str, Any]:
        return {}  # the weights' content hash is the whole identity

    def feature_dim(self, shape: tuple[int, ...]) -> int:
        cfg = read_tagged_json(self.folder() / CONFIG_FILE, FORMAT, "digits classifier config")
        return int(cfg.get("feature_dim", FEATURE_DIM))

    def _load(self, device: str) -> Any:
        net, _ = load_classifier(self.folder())
        return net.to(device)

    def _embed_batch(self, model: Any, x: Any) -> Any:
        return model.features(x)  # 1x8x8 only (input_problem refuses the rest)

    def describe(self, shape: tuple[int, ...]) -> str:
        return "none (1x8x8 gray digits only)"

    def info(self) -> dict[str, Any]:
        return {**super().info(), "weights_dir": str(self.folder())}
