"""SSCD copy-detection descriptors (Pizzi et al. 2022, facebookresearch/sscd-copy-detection).

The publisher releases each model in three formats. membench reads the ``.torchvision.pt``
one only: a state dict of a torchvision ResNet (``resnet50(num_classes=512)``, its average
pool replaced by generalized-mean pooling with p = 3, then the ``fc`` projection and L2
normalization, as the repository's ``sscd/models/model.py`` builds it), loaded with
``torch.load(weights_only=True)`` into a network built here. The ``.torchscript.pt`` files
are programs, not weights (``torch.jit.load`` runs their code), so they are refused; the
``.classy.pt`` files need Classy Vision's ResNeXt and are not supported (so neither is
``sscd_disc_large``, published only as Classy Vision and TorchScript files).

The weights file: ``weights=PATH``, else the cache (``membench weights fetch sscd-disc-mixup``
puts the default checkpoint at ``$MEMBENCH_CACHE/weights/sscd_disc_mixup.torchvision.pt``;
other checkpoints are placed by hand at ``$MEMBENCH_CACHE/weights/<checkpoint>.torchvision.pt``).
The publisher gives no checksum, so the file's sha256 is recorded in every result.
Preprocessing follows the model card: resize to ``size`` x ``size`` (320 by default; the
card's "skew" setting), scale to [0, 1], ImageNet mean/std; gray images are replicated to
RGB. Descriptors are 512-d, L2-normalized. The weights are CC-BY-NC and never committed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from membench.core.errors import MembenchError, UnavailableError
from membench.features import preprocess as pp
from membench.features.base import FeatureExtractor, file_identity

URL = "https://dl.fbaipublicfiles.com/sscd-copy-detection/{name}.torchvision.pt"
CHECKPOINTS = ("sscd_disc_mixup", "sscd_disc_blur", "sscd_disc_advanced",
               "sscd_imagenet_mixup", "sscd_imagenet_blur", "sscd_imagenet_advanced")
TABLE = {"sscd_disc_mixup": "sscd-disc-mixup"}  # checkpoint -> `membench weights` entry
GEM_P = 3.0  # the published models' pooling parameter (model.py's default pool_param)


def default_weights_dir() -> Path:
    from membench.core.workspace import default_cache_dir

    return default_cache_dir() / "weights"


def build_sscd(state: dict[str, Any]) -> Any:
    """The SSCD network for a torchvision-format state dict (ResNet-50, or ResNet-18 for small test files)."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torchvision.models import resnet18, resnet50

    class GeM(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.clamp(min=1e-6).pow(GEM_P).mean(dim=(2, 3)).pow(1.0 / GEM_P)

    class SSCD(nn.Module):
        def __init__(self, trunk: nn.Module) -> None:
            super().__init__()
            self.backbone = trunk

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.normalize(self.backbone(x), dim=1)

    state = {k.removeprefix("backbone."): v for k, v in state.items()}
    if "fc.weight" not in state:
        raise MembenchError("not an SSCD torchvision state dict (no fc.weight)")
    dims = int(state["fc.weight"].shape[0])
    trunk = (resnet50 if "layer1.0.conv3.weight" in state else resnet18)(num_classes=dims)
    trunk.avgpool = GeM()
    trunk.load_state_dict(state, strict=True)
    return SSCD(trunk)


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip holding ``constants.pkl`` (torch.serialization's own test)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") or n == "constants.pkl" for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


@dataclass
class SSCDEmbedder(FeatureExtractor):
    checkpoint: str = "sscd_disc_mixup"  # the model card's recommended default
    weights: str = ""  # a .torchvision.pt state dict; empty: the cache (see the module doc)
    size: int = 320

    batch_size = 16

    def check(self) -> None:
        if not self.weights and self.checkpoint not in CHECKPOINTS:
            raise MembenchError(f"sscd: unknown checkpoint {self.checkpoint!r} (torchvision-format ones: "
                                f"{', '.join(CHECKPOINTS)}; sscd_disc_large is published only as TorchScript and "
                                "Classy Vision files, which membench does not load)")
        if self.weights.endswith(".torchscript.pt"):
            raise MembenchError("sscd: TorchScript files are programs, not weights, and are not loaded; use the "
                                f"publisher's .torchvision.pt file of the same model ({URL.format(name=self.checkpoint)})")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or not 32 <= self.size <= 1024:
            raise MembenchError(f"sscd: size must be an integer in [32, 1024], got {self.size!r}")

    def config(self) -> dict[str, Any]:
        # The file's location is not part of the identity; its content (weights_id) is.
        return {"checkpoint": self.checkpoint if not self.weights else "custom", "size": self.size}

    def weights_path(self) -> Path:
        if self.weights:
            path = Path(self.weights).expanduser()
            if not path.is_file():
                raise UnavailableError(f"sscd: weights file {path} not found")
            return path
        if self.checkpoint in TABLE:
            from membench.weights.table import local_file

            return local_file(TABLE[self.checkpoint], "sscd", "sscd:weights=PATH")
        path = default_weights_dir() / f"{self.checkpoint}.torchvision.pt"
        if not path.is_file():
            raise UnavailableError(f"sscd: weights {path} are missing; download {URL.format(name=self.checkpoint)} "
                                   "and place it there, or pass sscd:weights=PATH")
        return path

    def weights_id(self) -> str:
        return file_identity(self.weights_path())

    def _load(self, device: str) -> Any:
        import pickle

        import torch

        path = self.weights_path()
        if _is_torchscript(path):
            raise MembenchError(f"sscd: {path} is a TorchScript archive (a program, not weights) and is not loaded; "
                                f"use the publisher's .torchvision.pt file ({URL.format(name=self.checkpoint)})")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, OSError, ValueError, EOFError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise MembenchError(f"sscd: {path} is not a torchvision-format SSCD state dict (safe loading refused "
                                f"or failed: {first})") from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise MembenchError(f"sscd: {path} is not a state dict (expected a mapping of tensors)")
        try:
            net = build_sscd(state)
        except (MembenchError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise MembenchError(f"sscd: {path} does not fit the SSCD network: {first}") from None
        return net.to(device).eval()

    def _embed_batch(self, model: Any, x: Any) -> Any:
        import torch.nn.functional as F

        x = pp.to_channels(x, 3, "sscd")
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                          antialias=min(x.shape[-2:]) > self.size)  # the card's square resize (aspect not kept)
        x = pp.normalize((x.clamp(-1, 1) + 1) / 2, pp.IMAGENET_MEAN, pp.IMAGENET_STD)
        return model(x)

    def describe(self, shape: tuple[int, ...]) -> str:
        c, h, w = shape
        pp.check_channels(c, "sscd")
        how = "downsampled (antialiased)" if min(h, w) > self.size else "upsampled"
        resize = "" if (h, w) == (self.size, self.size) else f"resized {h}x{w} -> {self.size}x{self.size} ({how}, bilinear)"
        return pp.join(pp.describe_channels(c, 3), resize, "ImageNet mean/std")

    def info(self) -> dict[str, Any]:
        return {**super().info(), "license": "CC-BY-NC (SSCD weights)"}
