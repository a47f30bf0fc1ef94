"""Consistency-model sampling (Song et al. 2023, Alg. 1).

One step: x = f(sigma_max z, sigma_max). Multistep: alternate x0 = clamp(f(x, tau)) and
x = x0 + sqrt(tau'^2 - sigma_min^2) z_k over decreasing taus. This is the procedure of
diffusers' ``CMStochasticIterativeScheduler``; it is implemented here so that every extra
noise z_k comes from ``noise_for(seed, i, step=k)`` and teacher/student pairs stay paired.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from membench.models.edm import RHO
from membench.models.samplers.karras import Denoiser, NoiseFn, karras_sigmas, sigma_range


def parse_indices(text: Any) -> list[int] | None:
    """``"0/22"`` -> [0, 22]: the Karras-grid indices of a multistep schedule (None: not given)."""
    if text is None or text == "":
        return None
    parts = str(text).split("/")
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"indices must be '/'-separated grid indices such as 0/22, got {text!r}") from None


@dataclass
class ConsistencySampler:
    """``steps`` evaluations of a consistency function at Karras-grid levels.

    The levels are indices round(k (levels - 1) / steps), k = 0..steps-1, of a Karras grid of
    ``levels`` (default 18, the distillation grid): 1 step -> sigma_max; 2 steps -> indices 0, 8.
    ``indices="0/22"`` chooses the intermediate levels instead (increasing grid indices; the
    published 2-step ImageNet-64 schedule is ``levels=40,indices=0/22``, diffusers'
    ``timesteps=[22, 0]``); ``steps`` is then their count. ``sigma_min``/``sigma_max`` default
    to the denoiser's (its scheduler's).
    """

    steps: int = 1
    levels: int = 18
    sigma_min: float | None = None
    sigma_max: float | None = None
    rho: float = RHO
    indices: str | None = None

    def __post_init__(self) -> None:
        idx = parse_indices(self.indices)
        if idx is not None:
            if idx != sorted(set(idx)) or idx[0] < 0 or idx[-1] >= self.levels:
                raise ValueError(f"indices must increase strictly within [0, levels={self.levels}), got {self.indices!r}")
            self.steps = len(idx)
        if int(self.steps) != self.steps or not 1 <= self.steps <= self.levels:
            raise ValueError(f"steps must be an integer in [1, levels={self.levels}], got {self.steps!r}")

    @property
    def nfe(self) -> int:
        return self.steps

    def taus(self, model: Any = None) -> list[float]:
        lo, hi = sigma_range(model, self.sigma_min, self.sigma_max)
        grid = karras_sigmas(self.levels, lo, hi, self.rho).tolist()
        idx = parse_indices(self.indices) or [round(k * (self.levels - 1) / self.steps) for k in range(self.steps)]
        return [grid[i] for i in idx]

    @torch.no_grad()
    def sample(self, model: Denoiser, z: torch.Tensor, noise_fn: NoiseFn | None = None) -> torch.Tensor:
        taus = self.taus(model)
        sigma_min = sigma_range(model, self.sigma_min, self.sigma_max)[0]
        x = z.to(torch.float32) * taus[0]
        x0 = x
        for k, tau in enumerate(taus):
            if k > 0:
                if noise_fn is None:
                    raise ValueError("multistep consistency sampling needs a noise source")
                x = x0 + (tau**2 - sigma_min**2) ** 0.5 * noise_fn(k)
            x0 = model(x, torch.full((x.shape[0],), tau, device=x.device)).clamp(-1.0, 1.0)
        return x0
