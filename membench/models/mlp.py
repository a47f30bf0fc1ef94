"""``TimeMLP``: a small fully connected network with a diffusers UNet's call convention.

F(x, c_noise) -> object with ``.sample``, so ``EDMDenoiser(TimeMLP(d))`` is an EDM (or, as a
student, consistency) model of flat images. It exists for the known-answer distillation
(``membench.studies.known_answer``): a tiny UNet does not learn a one-step map onto a handful of
8x8 training images in a few thousand iterations; this does, in seconds per thousand.
"""
from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn


class TimeMLP(nn.Module):
    def __init__(self, dim: int, width: int = 256, freqs: int = 8) -> None:
        super().__init__()
        # sinusoidal features of ln(sigma) over a few octaves (c_noise = 250 ln sigma under cm_edm)
        self.register_buffer("freqs", 10 * torch.exp(torch.linspace(0, -8, freqs)))
        self.inp, self.emb = nn.Linear(dim, width), nn.Linear(2 * freqs, width)
        self.net = nn.Sequential(nn.SiLU(), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                                 nn.Linear(width, dim))

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> SimpleNamespace:
        c = torch.as_tensor(c_noise, dtype=x.dtype, device=x.device).reshape(-1)
        c = (c.expand(x.shape[0]) if c.numel() == 1 else c)[:, None] / 250.0 * self.freqs
        h = self.inp(x.flatten(1)) + self.emb(torch.cat([c.sin(), c.cos()], 1))
        return SimpleNamespace(sample=self.net(h).view_as(x))
