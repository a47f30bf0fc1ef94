"""Deterministic DDIM (Song et al. 2021, eta = 0) on a DDPM-family model's own timesteps.

In the variance-exploding view (``membench.models.denoisers.discrete``) a DDIM step from
timestep t to t' is an Euler step of the probability-flow ODE with the denoised estimate
clipped as the scheduler says:

    d = D(x, sigma_t);  eps = (x - d) / sigma_t;  x0 = clip(d);  x' = x0 + sigma_t' eps

which is diffusers' ``DDIMScheduler.step`` (eta = 0, ``use_clipped_model_output=False``) times
sqrt(1 + sigma^2). The timesteps follow the checkpoint's ``timestep_spacing`` and
``steps_offset`` (diffusers' ``DDIMScheduler.set_timesteps``), each step goes to t - T/steps
and the last one to ``final_alpha_cumprod`` (``set_alpha_to_one``). The state between steps is
kept as diffusers keeps it, x_VP = x / sqrt(1 + sigma^2), starting from x_VP = z: with
``trailing`` or ``linspace`` spacing t - T/steps is not always the next step's timestep, and
diffusers then feeds the image of level t - T/steps to the network as timestep t'' (the next
one); membench does the same, for parity. Any step count from 1 to T.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from membench.core.errors import MembenchError
from membench.models.samplers.karras import NoiseFn


def ddim_timesteps(num_train: int, steps: int, spacing: str, offset: int) -> np.ndarray:
    """The timesteps DDIM visits, as diffusers' ``DDIMScheduler.set_timesteps`` spaces them."""
    if spacing == "linspace":
        return np.linspace(0, num_train - 1, steps).round()[::-1].astype(np.int64)
    if spacing == "leading":
        return (np.arange(0, steps) * (num_train // steps)).round()[::-1].astype(np.int64) + offset
    if spacing == "trailing":
        return np.round(np.arange(num_train, 0, -num_train / steps)).astype(np.int64) - 1
    raise MembenchError(f"ddim: timestep_spacing {spacing!r} is not supported (linspace, leading, trailing)")


@dataclass
class DDIMSampler:
    """Deterministic DDIM with ``steps`` evaluations on the checkpoint's discrete schedule."""

    steps: int = 50
    clip: bool | None = None  # None: the scheduler config's clip_sample

    def __post_init__(self) -> None:
        if int(self.steps) != self.steps or self.steps < 1:
            raise ValueError(f"steps must be a positive integer, got {self.steps!r}")

    @property
    def nfe(self) -> int:
        return int(self.steps)

    def plan(self, denoiser: Any) -> tuple[list[float], list[float], bool, float]:
        """(sigma_t per step, sigma_t' per step, clip, clip range) for ``denoiser``'s schedule."""
        schedule = getattr(denoiser, "schedule", None)
        if schedule is None:
            raise MembenchError(f"ddim needs a DDPM-family model (epsilon, v_prediction or sample on a beta schedule); "
                                f"this one is {getattr(denoiser, 'parameterization', '?')}: use heun, euler or consistency")
        cfg, T = schedule.config, schedule.num_train_timesteps
        if self.steps > T:
            raise MembenchError(f"ddim: steps={self.steps} exceeds the model's {T} training timesteps")
        if cfg.get("thresholding"):
            raise MembenchError("ddim: dynamic thresholding (thresholding=true in the scheduler config) is not supported")
        ts = ddim_timesteps(T, int(self.steps), cfg.get("timestep_spacing", "leading"), int(cfg.get("steps_offset", 0)))
        if ts.min() < 0 or ts.max() >= T:
            raise MembenchError(f"ddim: timesteps {ts.tolist()} fall outside 0..{T - 1} (steps_offset?)")
        sig = schedule.sigmas
        final = 0.0 if cfg.get("set_alpha_to_one", True) else float(sig[0])
        prev = ts - T // int(self.steps)
        s_now = [float(sig[t]) for t in ts]
        s_next = [float(sig[t]) if t >= 0 else final for t in prev]
        clip = cfg.get("clip_sample", True) if self.clip is None else bool(self.clip)
        return s_now, s_next, bool(clip), float(cfg.get("clip_sample_range", 1.0))

    @torch.no_grad()
    def sample(self, denoiser: Any, z: torch.Tensor, noise_fn: NoiseFn | None = None) -> torch.Tensor:
        s_now, s_next, clip, rng = self.plan(denoiser)
        x_vp = z.to(torch.float32)
        for s, s2 in zip(s_now, s_next):
            x = x_vp * (1.0 + s**2) ** 0.5
            # float64 sigmas: the denoiser maps them back to exactly the integer timesteps
            d = denoiser(x, torch.full((x.shape[0],), s, dtype=torch.float64, device=x.device))
            eps = (x - d) / s
            x0 = d.clamp(-rng, rng) if clip else d
            x_vp = (x0 + s2 * eps) / (1.0 + s2**2) ** 0.5
        return x_vp.clamp(-1.0, 1.0)
