"""Closed-form denoisers of a finite training set, for known-answer checks.

``EmpiricalOptimalDenoiser``: the minimizer of the denoising loss over the empirical
distribution of the training images, D*(x, sigma) = sum_i softmax_i(-||x - x_i||^2 / (2 sigma^2)) x_i
(the DiffMemorize ``OptimEDM``). Its probability-flow ODE ends on training images, so every
sample is a copy and a student distilled from it must copy too.

``GaussianDenoiser``: the optimal denoiser of the Gaussian fitted to the training images,
D(x, sigma) = mu + S (S + sigma^2 I)^-1 (x - mu) (S the covariance plus a small ridge): a
teacher that generalizes (its samples are new draws of that Gaussian), the negative control.

Both take (x, sigma) like an ``EDMDenoiser`` (sigma a scalar or one per image) and carry its
``config``, so samplers and distillers accept them as teachers; they have no weights.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from membench.models.edm import EDMConfig


def _sigma(sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    s = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1)
    return s.expand(x.shape[0]) if s.numel() == 1 else s


class EmpiricalOptimalDenoiser(nn.Module):
    def __init__(self, images: np.ndarray, config: EDMConfig | None = None) -> None:
        super().__init__()
        self.config = config or EDMConfig()
        self.register_buffer("points", torch.from_numpy(np.ascontiguousarray(images, np.float32)).flatten(1))

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        s = _sigma(sigma, x)
        flat = x.flatten(1)
        d2 = torch.cdist(flat.double(), self.points.double()) ** 2  # (n, N)
        w = torch.softmax(-d2 / (2 * s.double()[:, None] ** 2), dim=1)
        return (w @ self.points.double()).float().view_as(x)


class GaussianDenoiser(nn.Module):
    def __init__(self, images: np.ndarray, ridge: float = 1e-2, config: EDMConfig | None = None) -> None:
        super().__init__()
        self.config = config or EDMConfig()
        flat = np.asarray(images, np.float64).reshape(len(images), -1)
        mu = flat.mean(0)
        cov = np.cov(flat, rowvar=False) + ridge * np.eye(flat.shape[1])
        evals, evecs = np.linalg.eigh(cov)
        self.register_buffer("mu", torch.from_numpy(mu))
        self.register_buffer("evals", torch.from_numpy(evals))
        self.register_buffer("evecs", torch.from_numpy(evecs))

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        s = _sigma(sigma, x).double()
        c = (x.flatten(1).double() - self.mu) @ self.evecs  # coordinates in the eigenbasis
        shrink = self.evals[None] / (self.evals[None] + s[:, None] ** 2)
        return (self.mu + (c * shrink) @ self.evecs.T).float().view_as(x)
