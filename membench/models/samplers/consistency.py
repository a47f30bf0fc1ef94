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

from membench.core.errors import MembenchError
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
    ``timesteps=[22, 0]``); ``steps`` is then their count. ``sigmas`` sets the intermediate
    levels by value instead: one number (``consistency:steps=2,sigmas=1.4``) or several separated
    by ``/`` (``steps=3,sigmas=5/1.4``), decreasing, inside (sigma_min, sigma_max); the first step
    is always at sigma_max (Song et al. 2023 use sigma ~ 1.4 for 2-step ImageNet-64 sampling).
    ``sigma_min``/``sigma_max`` default to the denoiser's (its scheduler's).
    """

    steps: int = 1
    levels: int = 18
    sigma_min: float | None = None
    sigma_max: float | None = None
    rho: float = RHO
    indices: str | None = None
    sigmas: float | str | None = None  # the intermediate levels by value (steps - 1 of them)

    def __post_init__(self) -> None:
        if self.indices is not None and self.sigmas is not None:
            raise ValueError("give the intermediate levels either as indices= or as sigmas=, not both")
        if self.sigmas is not None:
            mids = self.intermediate()
            if len(mids) != self.steps - 1:
                raise ValueError(f"sigmas gives {len(mids)} intermediate level(s); steps={self.steps} needs "
                                 f"{self.steps - 1}")
            lo = self.sigma_min if self.sigma_min is not None else 0.0
            chain = [self.sigma_max if self.sigma_max is not None else float("inf"), *mids]
            if any(not lo < b < a for a, b in zip(chain, chain[1:])):
                raise ValueError(f"sigmas must decrease inside (sigma_min, sigma_max), got {self.sigmas!r}")
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

    def intermediate(self) -> list[float]:
        if self.sigmas is None:
            return []
        parts = [self.sigmas] if isinstance(self.sigmas, (int, float)) else str(self.sigmas).split("/")
        try:
            return [float(p) for p in parts if str(p).strip()]
        except ValueError:
            raise ValueError(f"sigmas must be numbers separated by '/', got {self.sigmas!r}") from None

    def taus(self, model: Any = None) -> list[float]:
        lo, hi = sigma_range(model, self.sigma_min, self.sigma_max)
        if self.sigmas is not None:
            mids = self.intermediate()
            if any(not lo < b < a for a, b in zip([hi, *mids], mids)):
                raise MembenchError(f"consistency: sigmas {self.sigmas!r} must decrease inside the model's "
                                    f"sigma range ({lo}, {hi})")
            return [float(hi), *mids]
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
