"""Explicit, batched image conversions for embedders (torch tensors, NCHW, values in [-1, 1]).

Every conversion has a matching phrase in ``describe_*`` so results say what was done
(a 1-channel digit fed to an RGB network is replicated to 3 channels, an 8x8 image fed to
a 320x320 network is upsampled, ...). Channel counts other than 1 and 3 are refused.
"""
from __future__ import annotations

from typing import Any

from membench.core.errors import MembenchError

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's convert("L")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_channels(channels: int, who: str) -> None:
    if channels not in (1, 3):
        raise MembenchError(f"{who}: images must have 1 (gray) or 3 (RGB) channels, got {channels}")


def to_channels(x: Any, channels: int, who: str) -> Any:
    """Gray -> RGB by replication; RGB -> gray by BT.601 luma; anything else is an error."""
    import torch

    check_channels(x.shape[1], who)
    if x.shape[1] == channels:
        return x
    if channels == 3:
        return x.expand(-1, 3, -1, -1)
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def describe_channels(c_in: int, c_out: int) -> str:
    if c_in == c_out:
        return ""
    return "gray replicated to RGB" if c_out == 3 else "RGB converted to gray (BT.601 luma)"


def resize_square(x: Any, size: int, mode: str = "bilinear") -> Any:
    """Resize the short side to ``size`` and centre-crop to size x size (a square input is just resized)."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    y = F.interpolate(x, size=(nh, nw), mode=mode, antialias=mode in ("bilinear", "bicubic") and scale < 1, **kwargs)
    top, left = (nh - size) // 2, (nw - size) // 2
    return y[..., top : top + size, left : left + size]


def describe_resize(h: int, w: int, size: int, mode: str = "bilinear") -> str:
    if (h, w) == (size, size):
        return ""
    crop = "" if h == w else f", centre-cropped to {size}x{size}"
    how = "downsampled (antialiased)" if min(h, w) > size else "upsampled"
    return f"{how} {h}x{w} -> short side {size} ({mode}){crop}"


def normalize(x01: Any, mean: tuple[float, ...], std: tuple[float, ...]) -> Any:
    import torch

    m = torch.tensor(mean, dtype=x01.dtype, device=x01.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x01.dtype, device=x01.device).view(1, -1, 1, 1)
    return (x01 - m) / s


def join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
