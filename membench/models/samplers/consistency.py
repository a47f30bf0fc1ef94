"""Consistency-model sampling (Song et al. 2023, Alg. 1).

One step: x = f(sigma_max z, sigma_max). Multistep: alternate x0 = clamp(f(x, tau)) and
x = x0 + sqrt(tau'^2 - sigma_min^2) z_k over decreasing taus. This is the procedure of
diffusers' ``CMStochasticIterativeScheduler``; it is implemented here so that every extra
noise z_k comes from ``noise_for(seed, i, step=k)`` and teacher/student pairs stay paired.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from membench.models.edm import RHO, SIGMA_MAX, SIGMA_MIN
from membench.models.samplers.karras import Denoiser, NoiseFn, karras_sigmas


@dataclass
class ConsistencySampler:
    """``steps`` evaluations of a consistency function at Karras-grid levels.

    The levels are indices round(k (levels - 1) / steps), k = 0..steps-1, of a Karras grid of
    ``levels`` (default 18, the distillation grid): 1 step -> sigma_max; 2 steps -> indices 0, 8
    (sigma 3.26, which nearly erases the first step's image). ``sigmas`` sets the intermediate
    levels instead: one number (``consistency:steps=2,sigmas=1.4``) or several separated by
    ``/`` (``steps=3,sigmas=5/1.4``), decreasing, inside (sigma_min, sigma_max); the first step is
    always at sigma_max. (Song et al. 2023 use sigma ~ 1.4 for 2-step ImageNet-64 sampling.)
    """

    steps: int = 1
    levels: int = 18
    sigma_min: float = SIGMA_MIN
    sigma_max: float = SIGMA_MAX
    rho: float = RHO
    sigmas: float | str | None = None  # the intermediate levels (steps - 1 of them); None: the grid rule

    def __post_init__(self) -> None:
        if int(self.steps) != self.steps or not 1 <= self.steps <= self.levels:
            raise ValueError(f"steps must be an integer in [1, levels={self.levels}], got {self.steps!r}")
        if self.sigmas is not None:
            mids = self.intermediate()
            if len(mids) != self.steps - 1:
                raise ValueError(f"sigmas gives {len(mids)} intermediate level(s); steps={self.steps} needs "
                                 f"{self.steps - 1}")
            chain = [self.sigma_max, *mids]
            if any(not self.sigma_min < b < a for a, b in zip(chain, chain[1:])):
                raise ValueError(f"sigmas must decrease inside ({self.sigma_min}, {self.sigma_max}), got {self.sigmas!r}")

    def intermediate(self) -> list[float]:
        if self.sigmas is None:
            return []
        parts = [self.sigmas] if isinstance(self.sigmas, (int, float)) else str(self.sigmas).split("/")
        try:
            return [float(p) for p in parts if str(p).strip()]
        except ValueError:
            raise ValueError(f"sigmas must be numbers separated by '/', got {self.sigmas!r}") from None

    @property
    def nfe(self) -> int:
        return self.steps

    def taus(self) -> list[float]:
        if self.sigmas is not None:
            return [float(self.sigma_max), *self.intermediate()]
        grid = karras_sigmas(self.levels, self.sigma_min, self.sigma_max, self.rho).tolist()
        return [grid[round(k * (self.levels - 1) / self.steps)] for k in range(self.steps)]

    @torch.no_grad()
    def sample(self, model: Denoiser, z: torch.Tensor, noise_fn: NoiseFn | None = None) -> torch.Tensor:
        taus = self.taus()
        x = z.to(torch.float32) * taus[0]
        x0 = x
        for k, tau in enumerate(taus):
            if k > 0:
                if noise_fn is None:
                    raise ValueError("multistep consistency sampling needs a noise source")
                x = x0 + (tau**2 - self.sigma_min**2) ** 0.5 * noise_fn(k)
            x0 = model(x, torch.full((x.shape[0],), tau, device=x.device)).clamp(-1.0, 1.0)
        return x0
