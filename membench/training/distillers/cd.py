"""Consistency distillation (Song et al. 2023, "Consistency Models"; openai/consistency_models).

Student and target start as copies of the teacher, with the boundary output scaling so that
f(x, sigma_min) = x. Each step: n ~ U{0..N-2} on a Karras grid of N levels; x_t = x + t z at
the larger level t; one Heun step of the teacher's probability-flow ODE
dx/dsigma = (x - D(x, sigma)) / sigma from t to the adjacent level t' gives x_hat (no grad, no
clamping); loss = d(f_theta(x_t, t), stopgrad f_target(x_hat, t')) with uniform weight. The
target follows the student by EMA (mu); a separate evaluation EMA is what is saved.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from membench.data import Dataset
from membench.models.edm import EDMDenoiser
from membench.core.errors import MembenchError, UnavailableError
from membench.models.samplers.karras import karras_sigmas
from membench.training.distillers.base import (DistillContext, Distiller, EMAVariants, StudentResult, batches, copy_as,
                                               ema_update, training_loop)


def heun_step(teacher: EDMDenoiser, x: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
    """One Heun step of the teacher's ODE from sigma t to t_next (per-sample sigmas)."""
    tv, tn = t.view(-1, 1, 1, 1), t_next.view(-1, 1, 1, 1)
    d = (x - teacher(x, t)) / tv
    x_e = x + (tn - tv) * d
    d2 = (x_e - teacher(x_e, t_next)) / tn
    return x + (tn - tv) * 0.5 * (d + d2)


def distance(a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "l2":
        return ((a - b) ** 2).flatten(1).mean(1)
    if kind == "pseudo-huber":
        c = 0.00054 * math.sqrt(a[0].numel())
        return torch.sqrt(((a - b) ** 2).flatten(1).sum(1) + c * c) - c
    raise MembenchError(f"unknown distance {kind!r}")


@dataclass
class ConsistencyDistillation(Distiller):
    """Consistency distillation from an EDM teacher (Heun teacher step, EMA target)."""

    iterations: int = 1500
    levels: int = 18  # N, the Karras discretization
    batch_size: int = 64
    lr: float = 1e-4
    mu: float = 0.95  # target EMA (0 on CIFAR-10, 0.95 on ImageNet-64 in the paper)
    ema: float = 0.999  # evaluation EMA of the student, the saved weights
    loss: str = "l2"  # "l2", "pseudo-huber" or "lpips" (needs LPIPS weights; unavailable offline)
    sample_steps: int = 1
    seed: int = 0


    def check(self) -> None:
        if self.iterations < 0 or self.batch_size <= 0 or self.lr <= 0 or self.levels < 2:
            raise MembenchError("cd: iterations >= 0, batch_size > 0, lr > 0 and levels >= 2 are required")
        if not (0 <= self.mu < 1 and 0 <= self.ema < 1):
            raise MembenchError("cd: mu and ema must be in [0, 1)")
        if self.loss == "lpips":
            raise UnavailableError("cd: loss=lpips needs pretrained VGG/AlexNet LPIPS weights, not available offline; "
                                   "use loss=l2 or loss=pseudo-huber")
        if self.loss not in ("l2", "pseudo-huber"):
            raise MembenchError(f"cd: loss must be l2, pseudo-huber or lpips, got {self.loss!r}")

    def distill(self, teacher: EDMDenoiser, data: Dataset, ctx: DistillContext) -> StudentResult:
        device = ctx.device
        torch.manual_seed(self.seed)
        gen = torch.Generator(device=device).manual_seed(self.seed)
        x_all = torch.from_numpy(np.ascontiguousarray(data.images)).to(device)
        teacher = teacher.to(device).eval().requires_grad_(False)
        init = (ctx.student_init if ctx.student_init is not None else teacher).to(device)
        student = copy_as(init, boundary=True)
        target = copy_as(init, boundary=True).eval().requires_grad_(False)
        ema = copy_as(init, boundary=True).eval().requires_grad_(False)
        tracker = EMAVariants(ema, self.ema)
        cfg = student.config  # the teacher's range (a DDPM teacher's, cut to EDM's)
        sig = karras_sigmas(self.levels, cfg.sigma_min, cfg.sigma_max).flip(0).to(device, torch.float32)  # ascending
        opt = torch.optim.RAdam(student.parameters(), lr=self.lr)
        next_batch = batches(x_all, self.batch_size, gen)

        ctx.snapshot(0, student, ema, tracker)

        def step(k: int) -> float:
            x0 = next_batch()
            n = torch.randint(0, self.levels - 1, (len(x0),), generator=gen, device=device)
            t, t_prev = sig[n + 1], sig[n]  # t > t_prev: adjacent levels
            z = torch.randn(x0.shape, generator=gen, device=device)
            x_t = x0 + t.view(-1, 1, 1, 1) * z
            with torch.no_grad():
                x_hat = heun_step(teacher, x_t, t, t_prev)
                y = target(x_hat, t_prev)
            loss = distance(student(x_t, t), y, self.loss).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ema_update(target, student, self.mu)
            ema_update(ema, student, self.ema)
            ctx.snapshot(k + 1, student, ema, tracker)
            return loss.item()

        stats = training_loop(self.iterations, step, f"cd from {ctx.teacher_name}", ctx.progress)
        sampler = f"consistency:steps={self.sample_steps},levels={self.levels}"
        return StudentResult(student=ema.eval(), sampler=sampler, record={"config": asdict(self), **stats},
                             variants=tracker.variants(student, ema, self.iterations))
