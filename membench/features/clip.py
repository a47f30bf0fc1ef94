"""open_clip image embeddings (Cherti et al. 2023; Radford et al. 2021).

``arch`` is an open_clip model name (``ViT-B-32``) or a path to a model-config JSON file
(registered with ``open_clip.add_model_config``; the file stem becomes the name).
``pretrained`` is an open_clip tag or a local weights file (``.safetensors``, or a state
dict read with ``torch.load(weights_only=True)``). A tag's file is looked up, never
downloaded here: in membench's cache when the weights table has it (the default
``ViT-B-32``/``laion2b_s34b_b79k``: ``membench weights fetch clip-vit-b-32-laion2b``, checked
against its published sha256), else in the Hugging Face cache; missing, the extractor is
unavailable with one line saying which file to place where.
Preprocessing is the model's own: short side resized to its image size (bicubic) and
centre-cropped, scaled to [0, 1], the model's mean/std. Gray images are replicated to RGB.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from membench.core.errors import MembenchError, UnavailableError
from membench.features import preprocess as pp
from membench.features.base import FeatureExtractor, file_identity

HF_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
TABLE = {("ViT-B-32", "laion2b_s34b_b79k"): "clip-vit-b-32-laion2b"}  # (arch, tag) -> `membench weights` entry


def _quiet_open_clip():
    import logging

    import open_clip  # heavy: imported only when a CLIP embedder runs

    logging.getLogger("root").setLevel(logging.ERROR)  # open_clip logs through the root logger
    return open_clip


@dataclass
class ClipEmbedder(FeatureExtractor):
    arch: str = "ViT-B-32"
    pretrained: str = "laion2b_s34b_b79k"

    batch_size = 32

    def _is_file(self) -> bool:
        return any(self.pretrained.endswith(s) for s in (".safetensors", ".bin", ".pt", ".pth")) or "/" in self.pretrained

    def _arch_name(self) -> str:
        open_clip = _quiet_open_clip()
        if self.arch.endswith(".json"):
            path = Path(self.arch).expanduser()
            if not path.is_file():
                raise MembenchError(f"clip: model config file {path} not found")
            open_clip.add_model_config(path)
            return path.stem
        if self.arch not in open_clip.list_models():
            import difflib

            close = difflib.get_close_matches(self.arch, open_clip.list_models(), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise MembenchError(f"clip: unknown open_clip architecture {self.arch!r}{hint}")
        return self.arch

    def _weights_file(self) -> Path:
        """The local weights file: the given one, membench's cache (weights table), or the Hugging Face cache."""
        if self._is_file():
            path = Path(self.pretrained).expanduser()
            if not path.is_file():
                raise UnavailableError(f"clip: weights file {path} not found")
            return path
        open_clip = _quiet_open_clip()
        name = self._arch_name()
        cfg = open_clip.get_pretrained_cfg(name, self.pretrained)
        if not cfg:
            tags = ", ".join(open_clip.list_pretrained_tags_by_model(name)) or "none"
            raise MembenchError(f"clip: {name} has no pretrained tag {self.pretrained!r} (known: {tags})")
        hub = (cfg.get("hf_hub") or "").rstrip("/")
        if hub:
            from huggingface_hub import try_to_load_from_cache

            for fname in HF_FILES:
                hit = try_to_load_from_cache(hub, fname)
                if isinstance(hit, str):
                    return Path(hit)
        if (name, self.pretrained) in TABLE:
            from membench.weights.table import local_file

            return local_file(TABLE[(name, self.pretrained)], "clip", "clip:pretrained=/path/to/weights.safetensors")
        raise UnavailableError(f"clip: weights {name}/{self.pretrained} are not in the Hugging Face cache and membench "
                               f"does not download them (hub {hub or cfg.get('url', '?')}); place the safetensors file "
                               "somewhere and pass clip:pretrained=/path/to/it")

    def weights_id(self) -> str:
        return file_identity(self._weights_file())

    def config(self) -> dict[str, Any]:
        arch = Path(self.arch).stem if self.arch.endswith(".json") else self.arch
        return {"arch": arch, "pretrained": "file" if self._is_file() else self.pretrained}

    def _load(self, device: str) -> Any:
        open_clip = _quiet_open_clip()
        name = self._arch_name()
        path = self._weights_file()
        try:  # safetensors, or torch.load(weights_only=True): open_clip's loader, told so explicitly
            model = open_clip.create_model(name, pretrained=str(path), device=device, require_pretrained=True,
                                           weights_only=True)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise MembenchError(f"clip: cannot load weights {path} into {name}: {type(exc).__name__}: {first}") from None
        return model.eval()

    @staticmethod
    def _pre(model: Any) -> tuple[int, tuple[float, ...], tuple[float, ...], str]:
        cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
        size = model.visual.image_size
        size = size[0] if isinstance(size, (tuple, list)) else int(size)
        mode = cfg.get("interpolation", "bicubic")
        return size, tuple(cfg.get("mean", pp.IMAGENET_MEAN)), tuple(cfg.get("std", pp.IMAGENET_STD)), mode

    def _embed_batch(self, model: Any, x: Any) -> Any:
        size, mean, std, mode = self._pre(model)
        x = pp.to_channels(x, 3, "clip")
        x = pp.resize_square(x, size, mode if mode in ("bilinear", "bicubic") else "bicubic")
        x = pp.normalize(((x + 1) / 2).clamp(0, 1), mean, std)
        return model.encode_image(x, normalize=True)

    def _config_size(self) -> int | None:
        """The architecture's input size from open_clip's model config (no weights needed)."""
        try:
            cfg = _quiet_open_clip().get_model_config(self._arch_name()) or {}
        except MembenchError:
            return None
        size = cfg.get("vision_cfg", {}).get("image_size")
        return int(size[0] if isinstance(size, (tuple, list)) else size) if size else None

    def describe(self, shape: tuple[int, ...]) -> str:
        c, h, w = shape
        pp.check_channels(c, "clip")
        loaded = list(self.__dict__.get("_models", {}).values())
        size, _, _, mode = self._pre(loaded[0]) if loaded else (self._config_size(), 0, 0, "bicubic")
        resize = pp.describe_resize(h, w, size, mode) if size else "resized to the model's image size (bicubic)"
        return pp.join(pp.describe_channels(c, 3), resize, "model mean/std")
