"""Model-based membership inference: does the model's denoiser treat its training images
differently from never-seen images of the same distribution?

Members are the training images, non-members **all** held-out images (300 for the digits).
Every test scores each image under the scored model's denoiser D(x, sigma) (a consistency
student's f(x, sigma) serves as D), at every level of a small grid of noise levels:

* ``loss-mia`` (loss threshold; Matsumoto et al. 2023): -mean_z ||D(x + sigma z, sigma) - x||^2
  over ``noises`` fixed seeded z per image;
* ``pia`` (Kong et al., ICLR 2024): eps0 = eps(x, sigma_min), x_s = x + sigma eps0 (the
  deterministic "proximal" noising), score = -||eps(x_s, sigma) - eps0||_p with p = 4 (their
  code's default norm), eps(x, s) = (x - D(x, s)) / s; two network calls per level;
* ``secmi`` (Duan et al., ICML 2023, SecMI-stat): deterministic inversion of x (Euler steps of
  the probability-flow ODE dx/dsigma = (x - D)/sigma, the EDM form of DDIM with eta = 0) from
  sigma_min to sigma on ``inversion_steps`` Karras levels, one more inversion step to the next
  level, one denoising step back; score = -||x_back - x_sigma||^2.

The most informative level is chosen on half of the images (even indices of members and of
non-members, by AUC) and the test is reported on the other half, so the choice does not
inflate the result. Reported (record metrics): ``auc`` (95% stratified bootstrap interval),
``tpr_at_1fpr`` (Wilson interval over the evaluation members) at the strictest cut that lets at
most 1% of the evaluation non-members through (with 150 of them, at most 1; with fewer than 100
the cut lets none through, i.e. the FPR is 1/n_nonmembers or less: ``fpr_actual`` says which).
The per-sample fraction (``memorized``) is the same TPR: the share of evaluation members flagged
at that cut. The generated samples are not used; each model is scored once per sample set.

Cost on the defaults (0.7M-parameter UNet, 64 + 300 images of 8x8, 1 CPU thread): ``loss-mia``
8 levels x 4 noises, ``pia`` 8 levels x 2 calls, ``secmi`` 6 levels x up to 12 calls; a few
seconds each (measured: README "Cost of the detectors").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np

from membench.core.errors import MembenchError, UnavailableError
from membench.data import Dataset
from membench.detectors.base import Detector, DetectorContext, DetectorOutput


def _sigmas(n: int, lo: float, hi: float) -> list[float]:
    return list(np.geomspace(lo, hi, n))


def split_eval(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(selection indices, evaluation indices): even and odd positions."""
    idx = np.arange(n)
    return idx[0::2], idx[1::2]


@dataclass
class _MembershipBase(Detector):
    """Shared: score members and non-members per level, pick the level on one half, report on the other."""

    levels: int = 8
    sigma_lo: float = 0.02
    sigma_hi: float = 5.0
    fpr: float = 0.01
    seed: int = 0
    batch_size: int = 512
    model: str = "self"  # "self": the scored model's denoiser; "teacher": its teacher's

    higher_is_memorized = True
    calibrate_on_heldout = False  # the held-out images are the test's own non-members
    level = "model"
    score_name = "membership"

    def check(self) -> None:
        if not isinstance(self.levels, int) or isinstance(self.levels, bool) or self.levels < 1:
            raise MembenchError(f"{self.registry_name}: levels must be a positive integer, got {self.levels!r}")
        if not 0 < float(self.sigma_lo) <= float(self.sigma_hi):
            raise MembenchError(f"{self.registry_name}: need 0 < sigma_lo <= sigma_hi")
        if not 0 < float(self.fpr) < 1:
            raise MembenchError(f"{self.registry_name}: fpr must be in (0, 1), got {self.fpr!r}")
        if self.model not in ("self", "teacher"):
            raise MembenchError(f"{self.registry_name}: model must be 'self' or 'teacher', got {self.model!r}")

    def level_scores(self, D: Callable[[Any, float], Any], x: Any, sigma: float, gen_seed: int) -> np.ndarray:
        raise NotImplementedError

    def score_grid(self, D: Callable, images: np.ndarray, device: str, offset: int) -> np.ndarray:
        """(levels, n) scores, higher = more member-like; image i uses noise seeds offset + i."""
        import torch

        out = np.empty((self.levels, len(images)))
        for li, sigma in enumerate(_sigmas(self.levels, self.sigma_lo, self.sigma_hi)):
            for start in range(0, len(images), self.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(images[start:start + self.batch_size], np.float32)).to(device)
                with torch.no_grad():
                    out[li, start:start + len(x)] = self.level_scores(D, x, float(sigma),
                                                                      self.seed * 1_000_003 + offset + start + li * 7919)
        return out

    def detect(self, samples: np.ndarray, train: Dataset, ctx: DetectorContext) -> DetectorOutput:
        from membench.analysis.roc import auc_bootstrap_ci, roc_auc, tpr_at_fpr
        from membench.store.records import Metric

        if train.heldout is None or len(train.heldout) < 2:
            raise UnavailableError(f"{self.registry_name}: needs held-out images (non-members); {train.spec} has none")
        model, meta = ctx.load_denoiser(self.model)
        model = model.to(ctx.device).eval()

        def D(x: Any, sigma: float) -> Any:
            import torch

            return model(x, torch.full((x.shape[0],), float(sigma), device=x.device))

        members = np.asarray(train.images, np.float32)
        nonmembers = np.asarray(train.heldout, np.float32)
        s_mem = self.score_grid(D, members, ctx.device, 0)
        s_non = self.score_grid(D, nonmembers, ctx.device, 10_000_000)
        sel_m, ev_m = split_eval(len(members))
        sel_n, ev_n = split_eval(len(nonmembers))
        aucs = [roc_auc(s_mem[i, sel_m], s_non[i, sel_n]) for i in range(self.levels)]
        best = int(np.nanargmax(aucs))
        sigma = float(_sigmas(self.levels, self.sigma_lo, self.sigma_hi)[best])
        pos, neg = s_mem[best, ev_m], s_non[best, ev_n]
        auc = roc_auc(pos, neg)
        lo, hi = auc_bootstrap_ci(pos, neg, n_boot=1000, seed=self.seed)
        fpr = max(float(self.fpr), 1.0 / len(neg)) if self.fpr * len(neg) < 1 else float(self.fpr)
        t = tpr_at_fpr(pos, neg, fpr)
        flags = s_mem[best] > t["threshold"]
        metrics = {
            "auc": Metric(auc, (lo, hi), "bootstrap95", "member and non-member images (evaluation half)",
                          higher_is_memorized=True),
            "tpr_at_1fpr": Metric(t["tpr"], (t["tpr_ci_low"], t["tpr_ci_high"]), "wilson95",
                                  "member images (evaluation half)", higher_is_memorized=True),
        }
        # every member is reported (scores, flags); the fraction is over the evaluation half
        out = DetectorOutput(scores=s_mem[best, ev_m], flags=flags[ev_m], nearest=ev_m.astype(np.int64),
                             extras={}, metrics=metrics,
                             info={"sigma": sigma, "auc_by_level_selection_half": [float(a) for a in aucs],
                                   "sigmas": [float(s) for s in _sigmas(self.levels, self.sigma_lo, self.sigma_hi)],
                                   "n_members_eval": int(len(pos)), "n_nonmembers_eval": int(len(neg)),
                                   "fpr_target": fpr, "fpr_actual": t["fpr_actual"], "threshold": t["threshold"],
                                   "denoiser": self.model, "selection": "level chosen by AUC on even indices, "
                                   "reported on odd indices", "samples_used": False})
        return out


@dataclass
class LossMIA(_MembershipBase):
    """Loss-threshold membership attack at the most informative noise level."""

    noises: int = 4
    score_name = "neg_denoising_loss"

    def level_scores(self, D: Callable, x: Any, sigma: float, gen_seed: int) -> np.ndarray:
        import torch

        g = torch.Generator(device=x.device).manual_seed(int(gen_seed))
        total = torch.zeros(len(x), device=x.device)
        for _ in range(int(self.noises)):
            z = torch.randn(x.shape, generator=g, device=x.device)
            total += ((D(x + sigma * z, sigma) - x) ** 2).flatten(1).mean(1)
        return (-total / int(self.noises)).cpu().numpy().astype(np.float64)


@dataclass
class PIA(_MembershipBase):
    """Proximal initialization attack (Kong et al. 2024): deterministic eps(x, ~0) noising."""

    p: float = 4.0
    sigma_min: float = 0.002
    score_name = "neg_pia_error"

    def level_scores(self, D: Callable, x: Any, sigma: float, gen_seed: int) -> np.ndarray:
        eps0 = (x - D(x, self.sigma_min)) / self.sigma_min
        xs = x + sigma * eps0
        eps = (xs - D(xs, sigma)) / sigma
        err = (eps - eps0).abs().flatten(1).pow(float(self.p)).mean(1).pow(1.0 / float(self.p))
        return (-err).cpu().numpy().astype(np.float64)


@dataclass
class SecMI(_MembershipBase):
    """SecMI-stat (Duan et al. 2023): deterministic ODE inversion, one step further, one step back."""

    levels: int = 6
    sigma_lo: float = 0.05
    inversion_steps: int = 10
    sigma_min: float = 0.002
    score_name = "neg_secmi_error"

    def level_scores(self, D: Callable, x: Any, sigma: float, gen_seed: int) -> np.ndarray:
        grid = list(np.geomspace(self.sigma_min, sigma, int(self.inversion_steps) + 1))
        step = grid[-1] / grid[-2] if len(grid) > 1 else 1.2
        xt = x
        for a, b in zip(grid[:-1], grid[1:]):  # inversion: Euler steps up the ODE (DDIM with eta = 0)
            xt = xt + (b - a) * (xt - D(xt, a)) / a
        up = sigma * step
        x_up = xt + (up - sigma) * (xt - D(xt, sigma)) / sigma
        x_back = x_up + (sigma - up) * (x_up - D(x_up, up)) / up
        return (-((x_back - xt) ** 2).flatten(1).mean(1)).cpu().numpy().astype(np.float64)
