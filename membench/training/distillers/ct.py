"""Improved consistency training without a teacher (Song & Dhariwal 2023).

The student starts from RANDOM weights (same architecture as the teacher, seeded): only the
teacher's UNet configuration and training data are used, never its weights (openai's
launch lines copy a teacher into CT students; that trap is avoided here and tested).
Curriculum N(k) = min(s0 * 2^floor(k / K'), s1) + 1 with K' = K / (log2(s1/s0) + 1);
noise level i drawn from a discretized lognormal (P_mean = -1.1, P_std = 2.0); weight
1 / (sigma_{i+1} - sigma_i); pseudo-Huber distance with c = 0.00054 sqrt(C H W); the target
is the student itself with gradients stopped (no EMA).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from membench.data import Dataset
from membench.models.edm import EDMConfig, EDMDenoiser, build_unet
from membench.core.errors import MembenchError
from membench.models.samplers.karras import karras_sigmas
from membench.training.distillers.base import (DistillContext, Distiller, EMAVariants, StudentResult, batches, ema_update,
                                               student_config, training_loop)
from membench.training.distillers.cd import distance


def curriculum(k: int, total: int, s0: int, s1: int) -> int:
    """Number of discretization levels at iteration k (improved CT's exponential schedule)."""
    k_prime = math.floor(total / (math.log2(s1 / s0) + 1)) if s1 > s0 else total
    return min(s0 * 2 ** (k // max(k_prime, 1)), s1) + 1


def lognormal_level_probs(sigmas: torch.Tensor, p_mean: float, p_std: float) -> torch.Tensor:
    """P(i) for the interval [sigma_i, sigma_{i+1}] under ln sigma ~ N(p_mean, p_std^2)."""
    cdf = torch.special.ndtr((torch.log(sigmas) - p_mean) / p_std)
    p = (cdf[1:] - cdf[:-1]).clamp_min(0)
    return p / p.sum()


@dataclass
class ConsistencyTraining(Distiller):
    """Improved consistency training from random initialization (uses the data, not the teacher)."""

    iterations: int = 2000
    s0: int = 10
    s1: int = 80  # 1280 in the paper; shrunk for short runs
    p_mean: float = -1.1
    p_std: float = 2.0
    batch_size: int = 64
    lr: float = 2e-4
    ema: float = 0.999
    sample_steps: int = 1
    seed: int = 0

    uses_teacher_weights = False

    def check(self) -> None:
        if self.iterations < 0 or self.batch_size <= 0 or self.lr <= 0 or not 1 <= self.s0 <= self.s1:
            raise MembenchError("ct: iterations >= 0, batch_size > 0, lr > 0 and 1 <= s0 <= s1 are required")

    def initial_student(self, teacher: EDMDenoiser) -> EDMDenoiser:
        """Fresh, seeded weights in the teacher's architecture (never the teacher's weights)."""
        torch.manual_seed(self.seed)
        cfg = student_config(teacher, boundary=True)
        unet_cfg = {k: v for k, v in teacher.unet.config.items() if not k.startswith("_")}
        return EDMDenoiser(build_unet(unet_cfg), cfg)

    def distill(self, teacher: EDMDenoiser, data: Dataset, ctx: DistillContext) -> StudentResult:
        device = ctx.device
        student = self.initial_student(teacher).to(device).train()
        ema = self.initial_student(teacher).to(device).eval().requires_grad_(False)
        ema.load_state_dict(student.state_dict())
        tracker = EMAVariants(ema, self.ema)
        del teacher  # teacher-free from here on
        gen = torch.Generator(device=device).manual_seed(self.seed)
        x_all = torch.from_numpy(np.ascontiguousarray(data.images)).to(device)
        cfg = student.config
        opt = torch.optim.RAdam(student.parameters(), lr=self.lr)
        next_batch = batches(x_all, self.batch_size, gen)
        grids: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        ctx.snapshot(0, student, ema, tracker)

        def step(k: int) -> float:
            levels = curriculum(k, self.iterations, self.s0, self.s1)
            if levels not in grids:
                sig = karras_sigmas(levels, cfg.sigma_min, cfg.sigma_max).flip(0).to(device, torch.float32)
                grids[levels] = (sig, lognormal_level_probs(sig.double(), self.p_mean, self.p_std).float())
            sig, probs = grids[levels]
            x0 = next_batch()
            i = torch.multinomial(probs, len(x0), replacement=True, generator=gen)
            s_lo, s_hi = sig[i], sig[i + 1]
            z = torch.randn(x0.shape, generator=gen, device=device)
            with torch.no_grad():
                y = student(x0 + s_lo.view(-1, 1, 1, 1) * z, s_lo)  # stopgrad(student), same noise
            pred = student(x0 + s_hi.view(-1, 1, 1, 1) * z, s_hi)
            weight = 1.0 / (s_hi - s_lo)
            loss = (weight * distance(pred, y, "pseudo-huber")).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ema_update(ema, student, self.ema)
            ctx.snapshot(k + 1, student, ema, tracker)
            return loss.item()

        stats = training_loop(self.iterations, step, "ct (teacher-free)", ctx.progress)
        sampler = f"consistency:steps={self.sample_steps}"
        record = {"config": asdict(self), **stats, "final_levels": curriculum(max(self.iterations - 1, 0),
                                                                              self.iterations, self.s0, self.s1)}
        return StudentResult(student=ema.eval(), sampler=sampler, record=record,
                             variants=tracker.variants(student, ema, self.iterations))
