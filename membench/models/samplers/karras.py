"""Deterministic ODE samplers on the Karras noise grid (Karras et al. 2022, Alg. 1-2)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from membench.models.edm import RHO, SIGMA_MAX, SIGMA_MIN

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NoiseFn = Callable[[int], torch.Tensor]  # step -> extra noise (stochastic samplers only)


def sigma_range(denoiser: Any, sigma_min: float | None, sigma_max: float | None) -> tuple[float, float]:
    """The sampler's sigma range: its options, else the denoiser's own (``denoisers`` interface),
    else EDM's 0.002 and 80 (a DDPM-family model's range is its schedule's: sigma_0 .. sigma_{T-1})."""
    lo = sigma_min if sigma_min is not None else getattr(denoiser, "sigma_min", SIGMA_MIN)
    hi = sigma_max if sigma_max is not None else getattr(denoiser, "sigma_max", SIGMA_MAX)
    if not 0 < lo < hi:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {lo}, {hi}")
    return float(lo), float(hi)


def karras_sigmas(n: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX, rho: float = RHO) -> torch.Tensor:
    """Karras grid of ``n`` levels from sigma_max down to sigma_min (float64)."""
    if n < 1:
        raise ValueError("need at least one noise level")
    if n == 1:
        return torch.tensor([sigma_max], dtype=torch.float64)
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (hi + ramp * (lo - hi)) ** rho


@dataclass
class KarrasODESampler:
    """Shared config of the Karras-grid ODE samplers; ``steps`` noise levels plus 0.

    ``sigma_min``/``sigma_max`` default to the denoiser's range (0.002 and 80 for EDM models;
    a DDPM-family schedule's own), so any parameterization runs on it."""

    steps: int = 18
    sigma_min: float | None = None
    sigma_max: float | None = None
    rho: float = RHO
    heun: bool = True
    # to_zero=True: `steps` Karras levels then a last step to sigma = 0 (Karras et al.).
    # to_zero=False: the progressive-distillation grid, steps+1 levels s(n/steps) ending at
    # sigma_min, nested when steps doubles (the grid PD students are trained on).
    to_zero: bool = True

    def __post_init__(self) -> None:
        if int(self.steps) != self.steps or self.steps < 1:
            raise ValueError(f"steps must be a positive integer, got {self.steps!r}")

    @property
    def nfe(self) -> int:
        if not self.heun:
            return self.steps
        return 2 * self.steps - 1 if self.to_zero else 2 * self.steps

    def grid(self, denoiser: Any = None) -> list[float]:
        """The sigmas visited, from sigma_max down; ``steps`` transitions."""
        lo, hi = sigma_range(denoiser, self.sigma_min, self.sigma_max)
        if self.to_zero:
            return karras_sigmas(self.steps, lo, hi, self.rho).tolist() + [0.0]
        return karras_sigmas(self.steps + 1, lo, hi, self.rho).tolist()

    @torch.no_grad()
    def sample(self, denoiser: Denoiser, z: torch.Tensor, noise_fn: NoiseFn | None = None) -> torch.Tensor:
        sigmas = self.grid(denoiser)
        x = z.to(torch.float32) * sigmas[0]
        for i in range(self.steps):
            s, s_next = sigmas[i], sigmas[i + 1]
            d = (x - denoiser(x, torch.full((x.shape[0],), s, device=x.device))) / s
            x_next = x + (s_next - s) * d
            if self.heun and s_next > 0:  # Heun correction on every step but the last (Euler to 0)
                d2 = (x_next - denoiser(x_next, torch.full((x.shape[0],), s_next, device=x.device))) / s_next
                x_next = x + (s_next - s) * 0.5 * (d + d2)
            x = x_next
        return x.clamp(-1.0, 1.0)


@dataclass
class HeunSampler(KarrasODESampler):
    """Deterministic Heun (2nd order) sampler; 18 steps = 35 network evaluations."""

    heun: bool = True


@dataclass
class EulerSampler(KarrasODESampler):
    """Deterministic Euler sampler; ``steps`` network evaluations (the NFE-matched control)."""

    heun: bool = False
