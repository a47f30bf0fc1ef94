"""SSCD copy-detection descriptors (Pizzi et al. 2022, facebookresearch/sscd-copy-detection).

The published checkpoints are TorchScript files; ``weights`` points at one, or (default)
the file named after ``checkpoint`` in ``<cache>/weights/``, fetched from
dl.fbaipublicfiles.com when the machine is online. Preprocessing follows the model card:
resize to ``size`` x ``size`` (320 by default; 288 on the short edge is the alternative),
scale to [0, 1], ImageNet mean/std. Gray images are replicated to 3 channels. Descriptors
are 512-d (1024-d for ``sscd_disc_large``) and L2-normalized here again before use.

The weights are CC-BY-NC and are never committed. TorchScript is code: ``torch.jit.load``
is only ever called on the official files or on a file the user names with ``weights=``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from membench.core.errors import MembenchError, UnavailableError
from membench.features import preprocess as pp
from membench.features.base import FeatureExtractor, file_identity

URL = "https://dl.fbaipublicfiles.com/sscd-copy-detection/{name}.torchscript.pt"
CHECKPOINTS = ("sscd_disc_mixup", "sscd_disc_large", "sscd_disc_blur", "sscd_disc_advanced",
               "sscd_imagenet_mixup", "sscd_imagenet_blur", "sscd_imagenet_advanced")


def default_weights_dir() -> Path:
    from membench.core.workspace import default_cache_dir

    return default_cache_dir() / "weights"


@dataclass
class SSCDEmbedder(FeatureExtractor):
    checkpoint: str = "sscd_disc_mixup"  # the model card's recommended default
    weights: str = ""  # path to a TorchScript file; empty: <cache>/weights/<checkpoint>.torchscript.pt
    size: int = 320
    download: bool = True  # fetch the official file into the cache when online

    batch_size = 16

    def check(self) -> None:
        if not self.weights and self.checkpoint not in CHECKPOINTS:
            raise MembenchError(f"sscd: unknown checkpoint {self.checkpoint!r}; known: {', '.join(CHECKPOINTS)}")
        if not isinstance(self.size, int) or not 32 <= self.size <= 1024:
            raise MembenchError(f"sscd: size must be an integer in [32, 1024], got {self.size!r}")

    def config(self) -> dict[str, Any]:
        # The file's location is not part of the identity; its content (weights_id) is.
        return {"checkpoint": self.checkpoint if not self.weights else "custom", "size": self.size}

    def weights_path(self) -> Path:
        if self.weights:
            return Path(self.weights).expanduser()
        return default_weights_dir() / f"{self.checkpoint}.torchscript.pt"

    def _ensure_file(self) -> Path:
        from membench.features.download import can_download, download

        path = self.weights_path()
        if path.is_file():
            return path
        if self.weights:
            raise UnavailableError(f"sscd: weights file {path} not found")
        url = URL.format(name=self.checkpoint)
        if self.download and can_download(url):
            try:
                download(url, path)
                return path
            except Exception as exc:  # network trouble is "cannot run here", not a crash
                raise UnavailableError(f"sscd: downloading {url} failed ({type(exc).__name__}: {exc})") from None
        raise UnavailableError(f"sscd: weights file {path} is missing (offline); download {url} "
                               f"to that path, or pass sscd:weights=PATH")

    def weights_id(self) -> str:
        return file_identity(self._ensure_file())

    def _load(self, device: str) -> Any:
        import torch

        path = self._ensure_file()
        try:
            model = torch.jit.load(str(path), map_location=device)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise MembenchError(f"sscd: {path} is not a loadable TorchScript checkpoint: {type(exc).__name__}: {first}") from None
        return model.eval()

    def _embed_batch(self, model: Any, x: Any) -> Any:
        x = pp.to_channels(x, 3, "sscd")
        x = pp.resize_square(x, self.size, "bilinear")
        x = pp.normalize((x.clamp(-1, 1) + 1) / 2, pp.IMAGENET_MEAN, pp.IMAGENET_STD)
        return model(x)

    def describe(self, shape: tuple[int, ...]) -> str:
        c, h, w = shape
        pp.check_channels(c, "sscd")
        return pp.join(pp.describe_channels(c, 3), pp.describe_resize(h, w, self.size, "bilinear"),
                       "ImageNet mean/std")

    def info(self) -> dict[str, Any]:
        return {**super().info(), "weights_file": str(self.weights_path()), "license": "CC-BY-NC (SSCD weights)"}
