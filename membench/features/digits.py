"""``digits-embedder``: the project's own copy-detection embedder for 8x8 gray digits (offline).

Not to be confused with ``digits-classifier`` (``digits_classifier.py``), the network the
quality metrics use: this one is trained for copy detection, that one to classify digits.

A small CNN trained SSCD-style (contrastive InfoNCE between two augmented views of each
image, plus a KoLeo entropy term that spreads descriptors; Pizzi et al. 2022) on synthetic
glyphs rendered like the digits (``glyphs.py``), never on the digits themselves. Weights
are committed under ``models/digits-embedder/`` (safetensors + ``config.json`` + model card);
``python -m membench.features.train_digits`` rebuilds them.

Input: 1x8x8 in [-1, 1], and nothing else: it was trained and its ``digits-sim`` threshold
calibrated on 8x8 gray digits only, so other shapes are refused in one line (``calibrated_on``;
use ``sscd`` or ``clip``, which resize and convert explicitly). Output: 128-d, L2-normalized.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from membench.core.io import read_tagged_json
from membench.core.errors import MembenchError, UnavailableError
from membench.core.workspace import builtin_models_dir
from membench.features import preprocess as pp
from membench.features.base import FeatureExtractor, file_identity

DEFAULT_DIR = "models/digits-embedder"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "membench-digits-embedder/1"


def build_net(width: int = 32, dim: int = 128, size: int = 8) -> Any:
    from torch import nn

    if size % 2:
        raise MembenchError(f"digits embedder: image size must be even, got {size}")
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.GELU(),
        nn.Conv2d(width, width, 3, padding=1), nn.GELU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.GELU(),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.GELU(),
        nn.Flatten(),
        nn.Linear(2 * width * (size // 2) ** 2, 256), nn.GELU(),
        nn.Linear(256, dim),
    )


def resolve_dir(path: str) -> Path:
    if path == DEFAULT_DIR:  # the committed embedder, shipped as package data
        return builtin_models_dir() / "digits-embedder"
    return Path(path).expanduser()


def read_config(folder: Path) -> dict[str, Any]:
    cfg_file = folder / CONFIG_FILE
    return read_tagged_json(cfg_file, FORMAT, "digits embedder config")


@dataclass
class DigitsEmbedder(FeatureExtractor):
    weights: str = DEFAULT_DIR  # folder with model.safetensors + config.json (relative to the project root)

    batch_size = 1024
    calibrated_on = (1, 8, 8)
    calibrated_what = "gray digit"
    instead = "sscd or clip (they resize and convert explicitly), or embedsim:embedder=pixels"

    def folder(self) -> Path:
        return resolve_dir(self.weights)

    def _weights_file(self) -> Path:
        f = self.folder() / WEIGHTS_FILE
        if not f.is_file():
            raise UnavailableError(f"digits embedder: weights file {f} is missing; rebuild it with "
                                   f"`python -m membench.features.train_digits --out {self.weights}`")
        return f

    def weights_id(self) -> str:
        return file_identity(self._weights_file())

    def config(self) -> dict[str, Any]:
        return {}  # the weights' content hash is the whole identity

    def _load(self, device: str) -> Any:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        f = self._weights_file()
        arch = read_config(self.folder()).get("arch", {})
        try:
            net = build_net(**arch)
        except TypeError as exc:
            raise MembenchError(f"digits embedder: bad arch in {self.folder() / CONFIG_FILE}: {exc}") from None
        try:
            state = load_file(str(f))
            net.load_state_dict(state)
        except (SafetensorError, RuntimeError, OSError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise MembenchError(f"digits embedder: cannot load {f}: {type(exc).__name__}: {first}") from None
        import torch

        if not all(torch.isfinite(p).all() for p in net.parameters()):
            raise MembenchError(f"digits embedder: {f} contains NaN or infinite weights")
        net.image_size = int(arch.get("size", 8))
        return net.to(device).eval()

    def _embed_batch(self, model: Any, x: Any) -> Any:
        import torch.nn.functional as F

        return F.normalize(model(x), dim=1)  # 1x8x8 only (input_problem refuses the rest)

    def describe(self, shape: tuple[int, ...]) -> str:
        return "none (1x8x8 gray digits only)"

    def info(self) -> dict[str, Any]:
        return {**super().info(), "weights_dir": str(self.folder())}
