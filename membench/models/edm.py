"""EDM preconditioning (Karras et al. 2022) around a diffusers ``UNet2DModel``.

D(x, sigma) = c_skip x + c_out F(c_in x, c_noise) with sigma_data = 0.5. ``precondition``
chooses c_noise: ``"cm_edm"`` (the default, membench's own models) feeds 250 ln(sigma) to the
UNet's positional (sinusoidal) time embedding, the convention of openai/consistency_models and
diffusers' ``ConsistencyModelPipeline``; ``"edm"`` feeds ln(sigma)/4 as in the EDM paper and
diffusers' ``EDMEulerScheduler``. Class-conditional UNets (``num_class_embeds``) take
``class_labels``.

With ``boundary=True`` the consistency-model scalings are used instead
(c_skip' = sd^2/((sigma - sigma_min)^2 + sd^2), c_out' = (sigma - sigma_min) sd / sqrt(sigma^2 + sd^2)),
so f(x, sigma_min) = x exactly.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

SIGMA_DATA = 0.5
SIGMA_MIN = 0.002
SIGMA_MAX = 80.0
RHO = 7.0


@dataclass
class EDMConfig:
    sigma_data: float = SIGMA_DATA
    sigma_min: float = SIGMA_MIN
    sigma_max: float = SIGMA_MAX
    boundary: bool = False  # consistency-model output scaling
    precondition: str = "cm_edm"  # c_noise: "cm_edm" = 250 ln sigma, "edm" = ln(sigma) / 4

    def __post_init__(self) -> None:
        if self.precondition not in ("cm_edm", "edm"):
            raise ValueError(f"precondition must be 'cm_edm' or 'edm', got {self.precondition!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_unet_config(sample_size: int = 8, channels: int = 1) -> dict[str, Any]:
    """A small UNet for 8x8 images: 8x8 -> 4x4 with attention at 4x4."""
    return dict(
        sample_size=sample_size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=[32, 64],
        down_block_types=["DownBlock2D", "AttnDownBlock2D"],
        up_block_types=["AttnUpBlock2D", "UpBlock2D"],
        layers_per_block=1,
        norm_num_groups=8,
        attention_head_dim=16,
        time_embedding_type="positional",
        flip_sin_to_cos=True,
        freq_shift=0,
    )


class EDMDenoiser(nn.Module):
    """Denoiser D(x, sigma, class_labels=None) -> estimate of the clean image; ``unet`` is the raw network F.

    It is the ``cm_edm``/``edm`` parameterization of ``membench.models.denoisers`` and, with
    ``boundary=True``, the ``consistency`` one."""

    def __init__(self, unet: nn.Module, config: EDMConfig | None = None):
        super().__init__()
        self.unet = unet
        self.config = config or EDMConfig()

    @property
    def parameterization(self) -> str:
        return "consistency" if self.config.boundary else self.config.precondition

    @property
    def sigma_min(self) -> float:
        return float(self.config.sigma_min)

    @property
    def sigma_max(self) -> float:
        return float(self.config.sigma_max)

    @property
    def num_classes(self) -> int | None:
        return getattr(getattr(self.unet, "config", None), "num_class_embeds", None)

    def scalings(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sd = self.config.sigma_data
        c_in = 1.0 / torch.sqrt(sigma**2 + sd**2)
        if self.config.boundary:
            s = sigma - self.config.sigma_min
            c_skip = sd**2 / (s**2 + sd**2)
            c_out = s * sd / torch.sqrt(sigma**2 + sd**2)
        else:
            c_skip = sd**2 / (sigma**2 + sd**2)
            c_out = sigma * sd / torch.sqrt(sigma**2 + sd**2)
        return c_skip, c_out, c_in

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float,
                class_labels: torch.Tensor | None = None) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if sigma.ndim == 0:
            sigma = sigma.expand(x.shape[0])
        c_skip, c_out, c_in = (c.view(-1, 1, 1, 1) for c in self.scalings(sigma))
        c_noise = 250.0 * torch.log(sigma) if self.config.precondition == "cm_edm" else 0.25 * torch.log(sigma)
        if class_labels is None:
            f = self.unet(c_in * x, c_noise).sample
        else:
            f = self.unet(c_in * x, c_noise, class_labels=class_labels).sample
        return c_skip * x + c_out * f

    def score(self, x: torch.Tensor, sigma: float, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Score of the sigma-smoothed density: (D(x, sigma) - x) / sigma^2."""
        return (self(x, sigma, class_labels) - x) / sigma**2


def build_unet(config: dict[str, Any]) -> nn.Module:
    from diffusers import UNet2DModel

    return UNet2DModel(**config)


def edm_loss(denoiser: EDMDenoiser, x0: torch.Tensor, generator: torch.Generator | None = None,
             p_mean: float = -1.2, p_std: float = 1.2) -> torch.Tensor:
    """EDM training loss: ln sigma ~ N(p_mean, p_std^2), weight (sigma^2 + sd^2)/(sigma sd)^2."""
    n = x0.shape[0]
    rnd = torch.randn(n, generator=generator, device=x0.device)
    sigma = torch.exp(rnd * p_std + p_mean)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device)
    sd = denoiser.config.sigma_data
    weight = (sigma**2 + sd**2) / (sigma * sd) ** 2
    denoised = denoiser(x0 + sigma.view(-1, 1, 1, 1) * noise, sigma)
    return (weight.view(-1, 1, 1, 1) * (denoised - x0) ** 2).mean()
