"""Progressive distillation (Salimans & Ho 2022), in the EDM form of openai's ``progdist_losses``.

The student learns to take one step where its teacher takes two. With N student steps on
the Karras ramp s(u) (u = n/N, from sigma_max to sigma_min): n ~ U{0..N-1},
t = s(n/N), t2 = s((n + 0.5)/N), t3 = s((n + 1)/N); two teacher Euler steps t -> t2 -> t3
give x_t3, and the student's denoiser is regressed onto the denoiser that reaches x_t3 in
one Euler step, x_t - t (x_t3 - x_t)/(t3 - t), with weight max(1/t^2, 1). The student starts
as the teacher; after each stage it becomes the teacher, the optimizer is reset and N halves.
Sampled with Euler on the same grid (``euler:steps=N,to_zero=false``).
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch

from membench.data import Dataset
from membench.models.edm import EDMDenoiser
from membench.core.errors import MembenchError
from membench.training.distillers.base import (DistillContext, Distiller, EMAVariants, StudentResult, batches, copy_as, ema_update,
                                               student_config, training_loop)


def ramp(u: torch.Tensor, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Karras ramp: s(0) = sigma_max, s(1) = sigma_min."""
    hi, lo = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return (hi + u * (lo - hi)) ** rho


def euler(d: EDMDenoiser, x: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
    tv, tn = t.view(-1, 1, 1, 1), t_next.view(-1, 1, 1, 1)
    return x + (tn - tv) * (x - d(x, t)) / tv


@dataclass
class ProgressiveDistillation(Distiller):
    """Progressive distillation: halve the Euler step count stage by stage."""

    length_option = "iterations_per_stage"  # its length is per stage (stages: until one step)

    start_steps: int = 16  # N of the first student (its teacher takes 2N Euler steps)
    final_steps: int = 2
    iterations_per_stage: int = 400
    batch_size: int = 64
    lr: float = 1e-4
    ema: float = 0.999
    clip: float = 1.0
    seed: int = 0


    def check(self) -> None:
        n, f = self.start_steps, self.final_steps
        if f < 1 or n < f or (n & (n - 1)) or (f & (f - 1)):
            raise MembenchError("pd: start_steps >= final_steps >= 1, both powers of two, are required")
        if self.iterations_per_stage < 0 or self.batch_size <= 0 or self.lr <= 0:
            raise MembenchError("pd: iterations_per_stage >= 0, batch_size > 0 and lr > 0 are required")

    def distill(self, teacher: EDMDenoiser, data: Dataset, ctx: DistillContext) -> StudentResult:
        device = ctx.device
        torch.manual_seed(self.seed)
        gen = torch.Generator(device=device).manual_seed(self.seed)
        x_all = torch.from_numpy(np.ascontiguousarray(data.images)).to(device)
        cfg = student_config(teacher, boundary=False)  # the teacher's range (a DDPM teacher's, cut to EDM's)
        current = teacher.to(device).eval().requires_grad_(False)
        next_batch = batches(x_all, self.batch_size, gen)
        stages, n_steps, total = [], self.start_steps, {"wall_time_s": 0.0}
        while n_steps >= self.final_steps:
            student = copy_as(current, boundary=False)
            ema = copy.deepcopy(student).eval().requires_grad_(False)
            tracker = EMAVariants(ema, self.ema)  # per stage: each stage's EMA starts at its teacher
            opt = torch.optim.Adam(student.parameters(), lr=self.lr)
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda k: 1.0 - k / max(self.iterations_per_stage, 1))  # linear decay per stage

            def step(_: int, N: int = n_steps, tch: EDMDenoiser = current, st: EDMDenoiser = student,
                     em: EDMDenoiser = ema, op=opt, sc=sched) -> float:
                x0 = next_batch()
                n = torch.randint(0, N, (len(x0),), generator=gen, device=device).float()
                t = ramp(n / N, cfg.sigma_min, cfg.sigma_max)
                t2 = ramp((n + 0.5) / N, cfg.sigma_min, cfg.sigma_max)
                t3 = ramp((n + 1) / N, cfg.sigma_min, cfg.sigma_max)
                x_t = x0 + t.view(-1, 1, 1, 1) * torch.randn(x0.shape, generator=gen, device=device)
                with torch.no_grad():
                    x_t3 = euler(tch, euler(tch, x_t, t, t2), t2, t3)
                    tv, t3v = t.view(-1, 1, 1, 1), t3.view(-1, 1, 1, 1)
                    target = x_t - tv * (x_t3 - x_t) / (t3v - tv)
                weight = torch.clamp(1.0 / t**2, min=1.0)
                loss = (weight * ((st(x_t, t) - target) ** 2).flatten(1).mean(1)).mean()
                op.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(st.parameters(), self.clip)
                op.step()
                sc.step()
                ema_update(em, st, self.ema)
                return loss.item()

            stats = training_loop(self.iterations_per_stage, step, f"pd stage -> {n_steps} steps", ctx.progress)
            stages.append({"student_steps": n_steps, **stats})
            total["wall_time_s"] += stats["wall_time_s"]
            variants = tracker.variants(student, ema, self.iterations_per_stage)
            current = ema.eval().requires_grad_(False)  # the student becomes the next teacher
            n_steps //= 2
        final = self.final_steps
        record = {"config": asdict(self), "stages": stages, "wall_time_s": round(total["wall_time_s"], 1),
                  "final_loss": stages[-1]["final_loss"] if stages else float("nan"),
                  "iterations": self.iterations_per_stage * len(stages)}
        return StudentResult(student=current, sampler=f"euler:steps={final},to_zero=false", record=record,
                             variants=variants if stages else {})
