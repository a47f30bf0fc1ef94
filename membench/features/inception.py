"""``inception-v3``: torch-fidelity's standard Inception-v3 pool features (2048-d).

The usual features for FID on natural images. The weights are torch-fidelity's release
file, read *safely* by membench (safetensors, or ``torch.load(weights_only=True)``) from a
local file: ``weights=FILE``, else ``$MEMBENCH_INCEPTION_WEIGHTS``, else membench's cache
(``membench weights fetch inception-v3`` puts it there, checked against the sha256 prefix the
publisher's file name carries), else torch's hub cache; torch-fidelity itself would download
them or unpickle the file. Input goes through
torch-fidelity's own preprocessing (uint8 levels, TF1-compatible bilinear resize to
299x299); gray images are repeated to three channels.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from membench.core.errors import MembenchError, UnavailableError
from membench.features.base import FeatureExtractor, file_identity

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's release asset
INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FILE
LAYER = "2048"  # torch-fidelity's pool layer, the one FID uses

_PATCH_LOCK = threading.Lock()  # the brief swap of torch-fidelity's weight loader


def inception_weights_path(explicit: str | Path | None = None) -> Path:
    """The local Inception-v3 weights: explicit path, $MEMBENCH_INCEPTION_WEIGHTS, membench's cache, or
    torch's hub cache (the last two checked against the published sha256 prefix)."""
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

    from membench.core.io import file_sha256
    from membench.weights.table import entry, local_file

    hub = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE  # where torch-fidelity itself caches it
    w = entry("inception-v3")
    if hub.is_file() and not w.path().is_file():
        if not w.matches(file_sha256(hub)):
            raise MembenchError(f"inception-v3: {hub} does not match the published checksum ({w.check_kind} "
                                f"{w.expected}); delete it and run `membench weights fetch inception-v3`")
        return hub
    return local_file("inception-v3", "inception-v3",
                      "--quality-extractor inception-v3:weights=PATH, or set $MEMBENCH_INCEPTION_WEIGHTS")


def load_inception_state(path: str | Path) -> dict[str, Any]:
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


def build_inception(path: Path) -> Any:
    """torch-fidelity's network with the state dict of ``path`` (read safely by membench)."""
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    state = load_inception_state(path)
    original = tf_inception.load_state_dict_from_url
    with _PATCH_LOCK:  # hand our state dict to torch-fidelity instead of a download
        tf_inception.load_state_dict_from_url = lambda *a, **k: state
        try:
            return tf_inception.FeatureExtractorInceptionV3("membench-inception-v3", [LAYER])
        except RuntimeError as exc:  # load_state_dict: missing/unexpected keys or shapes
            first = str(exc).strip().splitlines()[0]
            raise MembenchError(f"inception-v3 weights do not fit the network: {first}") from None
        finally:
            tf_inception.load_state_dict_from_url = original


@dataclass
class InceptionV3Features(FeatureExtractor):
    """Inception-v3 pool features of 1- or 3-channel images of any size."""

    weights: str = ""  # a local weights file; empty: $MEMBENCH_INCEPTION_WEIGHTS or torch's hub cache

    batch_size = 64

    def weights_path(self) -> Path:
        return inception_weights_path(self.weights or None)

    def weights_id(self) -> str:
        return file_identity(self.weights_path())

    def config(self) -> dict[str, Any]:
        return {}  # the weights' content hash is the whole identity

    def feature_dim(self, shape: tuple[int, ...]) -> int:
        return int(LAYER)

    def _load(self, device: str) -> Any:
        return build_inception(self.weights_path()).to(device).eval().requires_grad_(False)

    def _embed_batch(self, model: Any, x: Any) -> Any:
        import torch

        # back to the uint8 levels torch-fidelity's network takes (exact for quantized images)
        u8 = ((x + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
        if u8.shape[1] == 1:
            u8 = u8.expand(-1, 3, -1, -1)  # gray -> RGB, as image folders of gray PNGs would be read
        return model(u8)[0]

    def describe(self, shape: tuple[int, ...]) -> str:
        c, h, w = shape
        gray = "gray replicated to RGB; " if c == 1 else ""
        return f"{gray}quantized to uint8; resized {h}x{w} -> 299x299 (torch-fidelity, TF1 bilinear)"
