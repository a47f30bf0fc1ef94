"""DDPM-family denoisers (epsilon, v or sample prediction on a discrete beta schedule) as D(x, sigma).

With alpha_bar_t the cumulative product of (1 - beta) of the checkpoint's own scheduler
(diffusers computes it from ``beta_schedule`` linear | scaled_linear | squaredcos_cap_v2, or
``trained_betas``), the variance-exploding view of timestep t has

    sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t),    x_VP = x / sqrt(1 + sigma^2)

and the network output o at timestep t(sigma) gives the denoiser

    epsilon:       D = x - sigma * o
    sample:        D = o
    v_prediction:  D = sqrt(alpha_bar) x_VP - sqrt(1 - alpha_bar) o   (sqrt(alpha_bar) = 1 / sqrt(1 + sigma^2))

The route from sigma to a timestep: t(sigma) interpolates linearly in ln(sigma) between the
integer timesteps (as diffusers' ``EulerDiscreteScheduler`` does for Karras sigmas) and is
clamped to [0, T - 1]; at a schedule's own sigma_t it is exactly t, so DDIM on the
checkpoint's timesteps feeds the network exactly the integers diffusers would. Sigmas are
converted in float64.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from membench.core.errors import MembenchError

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")


@dataclass
class DiscreteSchedule:
    """The training noise schedule of a DDPM-family checkpoint (``scheduler_config.json``)."""

    alphas_cumprod: torch.Tensor  # (T,) float64, as diffusers computes it (float32) then widened
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict[str, Any], where: str = "scheduler config") -> "DiscreteSchedule":
        from diffusers import DDPMScheduler

        cfg = {k: v for k, v in config.items() if not k.startswith("_")}
        if cfg.get("trained_betas") is None and cfg.get("beta_schedule", "linear") not in BETA_SCHEDULES:
            raise MembenchError(f"{where}: beta_schedule {cfg.get('beta_schedule')!r} is not supported "
                                f"(supported: {', '.join(BETA_SCHEDULES)}, or trained_betas)")
        try:
            sched = DDPMScheduler.from_config(cfg)
        except Exception as exc:  # diffusers raises NotImplementedError/ValueError on bad configs
            raise MembenchError(f"{where}: cannot build the beta schedule: {type(exc).__name__}: {exc}") from None
        abar = sched.alphas_cumprod.to(torch.float64)
        if not (torch.isfinite(abar).all() and (abar > 0).all() and (abar < 1).all()):
            raise MembenchError(f"{where}: the schedule reaches alpha_bar = 0 or 1 (zero terminal SNR?); "
                                "sigma would be infinite or zero: not supported")
        return cls(abar, cfg)

    @property
    def num_train_timesteps(self) -> int:
        return len(self.alphas_cumprod)

    @property
    def sigmas(self) -> torch.Tensor:
        """sigma_t for t = 0..T-1, increasing, float64."""
        return ((1 - self.alphas_cumprod) / self.alphas_cumprod).sqrt()

    def sigma_of(self, t: int) -> float:
        return float(self.sigmas[t])

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """t(sigma): linear interpolation in ln sigma between integer timesteps, clamped (float64)."""
        log_s = self.sigmas.log().to(sigma.device)
        ls = sigma.to(torch.float64).clamp_min(1e-30).log()
        hi = torch.searchsorted(log_s, ls, right=True).clamp(1, len(log_s) - 1)
        lo = hi - 1
        w = ((ls - log_s[lo]) / (log_s[hi] - log_s[lo])).clamp(0.0, 1.0)
        return lo.to(torch.float64) + w


class DiscreteDenoiser(nn.Module):
    """D(x, sigma, class_labels=None) of a DDPM-family UNet (``prediction_type`` epsilon, v_prediction, sample)."""

    def __init__(self, unet: nn.Module, schedule: DiscreteSchedule, prediction_type: str):
        super().__init__()
        if prediction_type not in ("epsilon", "v_prediction", "sample"):
            raise MembenchError(f"prediction_type {prediction_type!r} is not supported "
                                "(supported: epsilon, v_prediction, sample)")
        self.unet = unet
        self.schedule = schedule
        self.prediction_type = prediction_type

    @property
    def parameterization(self) -> str:
        return self.prediction_type

    @property
    def sigma_min(self) -> float:
        return self.schedule.sigma_of(0)

    @property
    def sigma_max(self) -> float:
        return self.schedule.sigma_of(self.schedule.num_train_timesteps - 1)

    @property
    def num_classes(self) -> int | None:
        return getattr(getattr(self.unet, "config", None), "num_class_embeds", None)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float,
                class_labels: torch.Tensor | None = None) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, device=x.device)
        if sigma.ndim == 0:
            sigma = sigma.expand(x.shape[0])
        s64 = sigma.to(torch.float64)
        t = self.schedule.timestep(s64).to(torch.float32)
        c = (1.0 / (1.0 + s64**2).sqrt()).to(x.dtype).view(-1, 1, 1, 1)
        s = s64.to(x.dtype).view(-1, 1, 1, 1)
        x_vp = c * x
        if class_labels is None:
            o = self.unet(x_vp, t).sample
        else:
            o = self.unet(x_vp, t, class_labels=class_labels).sample
        if self.prediction_type == "epsilon":
            return x - s * o
        if self.prediction_type == "sample":
            return o
        return c * x_vp - s * c * o  # v: sqrt(abar) x_VP - sqrt(1 - abar) v

    def score(self, x: torch.Tensor, sigma: float, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        return (self(x, sigma, class_labels) - x) / sigma**2
