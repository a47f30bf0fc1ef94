"""The random-feature diffusion model behind the study's explanation (Bonnaire et al. 2025).

Score at noise level sigma_k: s_k(x) = A_k tanh(W c_in x / sqrt(d)) / sqrt(p), with W (p x d)
Gaussian and fixed, c_in = 1 / sqrt(sigma_k^2 + sigma_data^2) (the EDM input scaling, so the
features do not saturate at large sigma), and A_k (d x p) trained from zero by full-batch
gradient descent on the denoising score-matching loss at that level,

    L_k(A) = mean_j || sigma_k A phi(x_j) + z_j ||^2,   x_j = x_mu + sigma_k z_j,

over n training points with ``noise_draws`` fixed noises each. L_k is quadratic in A, with
Hessian 2 sigma_k^2 U_k, U_k = Phi Phi^T / N the random-feature Gram matrix: gradient
descent from zero is exact in U_k's eigenbasis (``gd_weights``), mode i being learned on the
time scale 1 / (eta sigma^2 lambda_i). Large eigenvalues are the directions learned first
(generalization, the linear part of the score); small ones are learned late and fit the
individual training points (memorization): the mechanism of Bonnaire et al.

Sampling: the teacher's probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma, with the
denoiser D_k(x) = x + sigma_k^2 s_k(x) (Tweedie), solved with Heun steps over the levels.
A consistency-distilled student f_k(x) = x + sigma_k^2 B_k phi_k(x) (f_0 = identity at
sigma_min) starts from the teacher's weights (B = A) and is trained with the consistency
distillation loss of Song et al. 2023 (one teacher Heun step between adjacent levels, target
network by EMA ``mu``); its weights are then read in the same eigenbasis as the teacher's.

Everything here is numpy (float64): the model is small and the closed forms are exact.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from membench.core.errors import MembenchError


@dataclass
class RFData:
    """Training points (n, d), a population sample for test losses and its name."""

    train: np.ndarray
    test: np.ndarray
    spec: str
    sigma_data: float


def make_data(kind: str, n: int, d: int, seed: int, n_test: int = 1000) -> RFData:
    """``gaussian``: N(0, I_d) points; ``digits``: flattened 8x8 digits (d = 64), held-out split as population."""
    if n < 2:
        raise MembenchError(f"rfnn: need at least 2 training points, got n={n}")
    if kind == "gaussian":
        if d < 1:
            raise MembenchError(f"rfnn: d must be positive, got {d}")
        rng = np.random.default_rng([seed, 1])
        return RFData(rng.standard_normal((n, d)), rng.standard_normal((n_test, d)),
                      f"gaussian:n={n},d={d},seed={seed}", 1.0)
    if kind == "digits":
        from membench.data import load_dataset

        ds = load_dataset(f"digits:n={n},seed={seed}")
        flat = ds.images.reshape(len(ds), -1).astype(np.float64)
        held = ds.heldout.reshape(len(ds.heldout), -1).astype(np.float64)
        return RFData(flat, held, ds.spec, 0.5)
    raise MembenchError(f"rfnn: data must be 'gaussian' or 'digits', got {kind!r}")


def karras_levels(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> np.ndarray:
    """Karras grid of ``n`` noise levels, ascending (index 0 = sigma_min)."""
    ramp = np.linspace(0.0, 1.0, n)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (lo + ramp * (hi - lo)) ** rho


@dataclass
class RandomFeatures:
    """Fixed first layer W and the per-level input scaling."""

    W: np.ndarray  # (p, d)
    sigmas: np.ndarray  # (L,) ascending
    sigma_data: float

    @property
    def p(self) -> int:
        return self.W.shape[0]

    @property
    def d(self) -> int:
        return self.W.shape[1]

    def phi(self, x: np.ndarray, k: int) -> np.ndarray:
        """Features of points x (N, d) at level k, as a (p, N) matrix already divided by sqrt(p)."""
        c_in = 1.0 / np.sqrt(self.sigmas[k] ** 2 + self.sigma_data**2)
        return np.tanh(self.W @ (c_in * x).T / np.sqrt(self.d)) / np.sqrt(self.p)

    def apply(self, M: np.ndarray, x: np.ndarray, k: int, feats: np.ndarray | None = None) -> np.ndarray:
        """x + sigma_k^2 M_k phi_k(x): the denoiser (M = A) or the consistency function (M = B).

        ``feats``: phi_k(x) when the caller already has it (tanh dominates the cost; the result is the same).
        """
        F = self.phi(x, k) if feats is None else feats
        return x + self.sigmas[k] ** 2 * (M[k] @ F).T


@dataclass
class LevelProblem:
    """The quadratic DSM loss at one level: Gram matrix U, its eigenbasis and the linear term."""

    sigma: float
    U: np.ndarray  # (p, p) feature Gram matrix Phi Phi^T / N
    C: np.ndarray  # (d, p) Z^T Phi^T / N
    z2: float  # mean ||z||^2
    lam: np.ndarray  # eigenvalues of U, descending
    V: np.ndarray  # eigenvectors (columns), same order

    def loss(self, A: np.ndarray) -> float:
        s = self.sigma
        return float(s * s * np.einsum("ij,jk,ik->", A, self.U, A) + 2 * s * np.sum(A * self.C) + self.z2)

    def grad(self, A: np.ndarray) -> np.ndarray:
        return 2 * self.sigma**2 * A @ self.U + 2 * self.sigma * self.C

    def lr(self, scale: float = 1.0) -> float:
        """Step size ``scale`` / (2 sigma^2 lambda_max): 1 is the fastest step that learns the top mode exactly."""
        return scale / (2 * self.sigma**2 * self.lam[0])


def level_problem(rf: RandomFeatures, X: np.ndarray, k: int, noise_draws: int, rng: np.random.Generator) -> LevelProblem:
    n, d = X.shape
    sigma = float(rf.sigmas[k])
    Z = rng.standard_normal((n, noise_draws, d)).reshape(-1, d)
    Xs = np.repeat(X, noise_draws, axis=0) + sigma * Z
    F = rf.phi(Xs, k)
    N = F.shape[1]
    U = F @ F.T / N
    lam, V = np.linalg.eigh(U)
    order = np.argsort(lam)[::-1]
    return LevelProblem(sigma, U, Z.T @ F.T / N, float(np.mean(np.sum(Z * Z, axis=1))), lam[order], V[:, order])


def gd_weights(prob: LevelProblem, steps: float, lr_scale: float = 1.0) -> np.ndarray:
    """A after ``steps`` full-batch gradient-descent steps from A = 0 (exact, in U's eigenbasis).

    A_{t+1} = A_t - eta (2 sigma^2 A_t U + 2 sigma C)  gives, for eigenpair (lambda_i, v_i),
    A_t v_i = -(C v_i / (sigma lambda_i)) (1 - (1 - 2 eta sigma^2 lambda_i)^t).
    """
    eta = prob.lr(lr_scale)
    a = np.clip(2 * eta * prob.sigma**2 * prob.lam, 0.0, 1.0)  # <= 1: rounding must not make log1p(-a) NaN
    # (1 - (1 - a)^t) / lambda without cancellation; the lambda -> 0 limit is 2 eta sigma^2 t.
    if steps <= 0:
        return np.zeros_like(prob.C)
    with np.errstate(divide="ignore", invalid="ignore"):
        learned = np.where(a >= 1.0, 1.0, -np.expm1(steps * np.log1p(-np.minimum(a, 1.0 - 1e-16))))
        g = learned / np.where(prob.lam > 0, prob.lam, 1.0)
    g = np.where(prob.lam > 1e-300, g, 2 * eta * prob.sigma**2 * steps)
    Ct = prob.C @ prob.V  # (d, p)
    return -(Ct * g / prob.sigma) @ prob.V.T


def spectral_split(lam: np.ndarray, max_rank: int | None = None) -> int:
    """Number of 'large' eigenvalues: the position of the largest gap in log-eigenvalue among the top ones."""
    pos = np.clip(lam, 1e-300, None)
    logs = np.log(pos)
    top = len(lam) - 1 if max_rank is None else min(max_rank, len(lam) - 1)
    gaps = logs[:top] - logs[1 : top + 1]
    return int(np.argmax(gaps)) + 1


def weight_split(M: np.ndarray, prob: LevelProblem, k_large: int) -> dict[str, float]:
    """How much of M (d x p) lies on U's large- versus small-eigenvalue directions.

    ``frac_small``: share of ||M||_F^2 on the small-eigenvalue eigenvectors (parameter space);
    ``energy_frac_small``: share of the output energy E||M phi||^2 = sum_i lambda_i ||M v_i||^2 that
    those directions carry (function space, on the training inputs).
    """
    w = np.sum((M @ prob.V) ** 2, axis=0)
    e = w * np.clip(prob.lam, 0.0, None)
    out = {}
    for name, arr in (("", w), ("energy_", e)):
        large, small = float(arr[:k_large].sum()), float(arr[k_large:].sum())
        out[f"{name}frac_small"] = small / (large + small) if large + small > 0 else float("nan")
    out["norm2"] = float(w.sum())
    return out


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two point sets (a cheap quality proxy in R^d)."""
    import warnings

    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    c1, c2 = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():  # singular covariances (few samples, constant pixels) are expected
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(c1 @ c2)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * covmean))


# ------------------------------------------------------------------ sampling


def heun_teacher(rf: RandomFeatures, A: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Teacher samples: Heun over the levels from sigma_max to sigma_min, then D_0 (a last Euler step to 0)."""
    L = len(rf.sigmas)
    x = rf.sigmas[-1] * z
    for k in range(L - 1, 0, -1):
        s, s2 = rf.sigmas[k], rf.sigmas[k - 1]
        d1 = (x - rf.apply(A, x, k)) / s
        xe = x + (s2 - s) * d1
        d2 = (xe - rf.apply(A, xe, k - 1)) / s2
        x = x + (s2 - s) * 0.5 * (d1 + d2)
    return rf.apply(A, x, 0)


def euler_teacher(rf: RandomFeatures, A: np.ndarray, z: np.ndarray, steps: int) -> np.ndarray:
    """The teacher at ``steps`` network evaluations: Euler on the levels a ``steps``-step consistency
    sampler visits, the last step to sigma = 0 (the NFE-matched control of a student)."""
    L = len(rf.sigmas)
    ks = [L - 1 - round(j * (L - 1) / steps) for j in range(steps)]
    x = rf.sigmas[-1] * z
    for j, k in enumerate(ks):
        s = rf.sigmas[k]
        s_next = rf.sigmas[ks[j + 1]] if j + 1 < len(ks) else 0.0
        x = x + (s_next - s) * (x - rf.apply(A, x, k)) / s
    return x


def teacher_step(rf: RandomFeatures, A: np.ndarray, x: np.ndarray, k: int,
                 feats: np.ndarray | None = None) -> np.ndarray:
    """One Heun step of the teacher's ODE from level k to level k - 1 (no clamping); ``feats``: phi_k(x) if known."""
    s, s2 = rf.sigmas[k], rf.sigmas[k - 1]
    d1 = (x - rf.apply(A, x, k, feats)) / s
    xe = x + (s2 - s) * d1
    d2 = (xe - rf.apply(A, xe, k - 1)) / s2
    return x + (s2 - s) * 0.5 * (d1 + d2)


def consistency_fn(rf: RandomFeatures, B: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    return x if k == 0 else rf.apply(B, x, k)


def consistency_sample(rf: RandomFeatures, B: np.ndarray, z: np.ndarray, steps: int,
                       extra: list[np.ndarray] | None = None) -> np.ndarray:
    """Song et al. Alg. 1 on the level grid: levels L-1-round(j (L-1)/steps), j = 0..steps-1."""
    L = len(rf.sigmas)
    ks = [L - 1 - round(j * (L - 1) / steps) for j in range(steps)]
    x = rf.sigmas[-1] * z
    out = consistency_fn(rf, B, x, ks[0])
    for j, k in enumerate(ks[1:], start=1):
        noise = extra[j - 1] if extra is not None else np.random.default_rng(j).standard_normal(z.shape)
        x = out + np.sqrt(max(rf.sigmas[k] ** 2 - rf.sigmas[0] ** 2, 0.0)) * noise
        out = consistency_fn(rf, B, x, k)
    return out


# ------------------------------------------------------------------ consistency distillation


@dataclass
class CDResult:
    B: np.ndarray
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)


def consistency_distill(rf: RandomFeatures, A: np.ndarray, X: np.ndarray, probs: list[LevelProblem], iterations: int,
                        batch: int = 256, lr_scale: float = 0.5, mu: float = 0.0, seed: int = 0,
                        snapshot_at: tuple[int, ...] = (), init: str = "teacher") -> CDResult:
    """CD of the teacher A into a student B (same W), every level k >= 1 updated each iteration.

    Loss at level k: mean || f_k(x + sigma_k z) - f^target_{k-1}(Heun_teacher(x + sigma_k z)) ||^2,
    gradient steps of size lr_scale / (2 sigma_k^4 lambda_max(U_k)) (the loss's Hessian in B_k is
    2 sigma_k^4 times a feature Gram matrix, so each level gets its own stable step).
    ``init``: "teacher" starts B at A (as CD does), "zero" independently of the teacher (B = 0,
    where the teacher's own training started), so what the student keeps is learned, not inherited.
    """
    return consistency_distill_many(rf, A, X, probs, iterations, batch, lr_scale, mu, seed, snapshot_at, (init,))[0]


def consistency_distill_many(rf: RandomFeatures, A: np.ndarray, X: np.ndarray, probs: list[LevelProblem],
                             iterations: int, batch: int = 256, lr_scale: float = 0.5, mu: float = 0.0, seed: int = 0,
                             snapshot_at: tuple[int, ...] = (), inits: tuple[str, ...] = ("teacher",)
                             ) -> list[CDResult]:
    """``consistency_distill`` for several students (one per ``init``) in lockstep, each exactly as if run alone.

    The minibatches, the teacher's Heun step and every feature matrix depend on the seed only, not on
    the student, so they are computed once per level and iteration and shared: three tanh feature
    evaluations per level instead of four per student (tanh is nearly all of the cost).
    """
    for init in inits:
        if init not in ("teacher", "zero"):
            raise MembenchError(f"rfnn cd: init must be 'teacher' or 'zero', got {init!r}")
    if iterations < 0 or batch <= 0 or not 0 <= mu < 1:
        raise MembenchError("rfnn cd: iterations >= 0, batch > 0 and 0 <= mu < 1 are required")
    rng = np.random.default_rng([seed, 7])
    L = len(rf.sigmas)
    Bs = [A.copy() if init == "teacher" else np.zeros_like(A) for init in inits]
    for B in Bs:
        B[0] = 0.0  # boundary condition f_0 = identity at sigma_min
    targets = [B.copy() for B in Bs]
    results = [CDResult(B=B) for B in Bs]
    if 0 in snapshot_at:
        for res, B in zip(results, Bs):
            res.snapshots[0] = B.copy()
    n = len(X)
    for it in range(1, iterations + 1):
        totals = [0.0] * len(Bs)
        for k in range(1, L):
            x0 = X[rng.integers(0, n, size=batch)]
            xk = x0 + rf.sigmas[k] * rng.standard_normal(x0.shape)
            F = rf.phi(xk, k)  # the teacher's first Heun evaluation and every student's gradient
            xt = teacher_step(rf, A, xk, k, F)
            Ft = rf.phi(xt, k - 1) if k > 1 else None  # every target's features (f_0 is the identity)
            s2 = rf.sigmas[k] ** 2
            step = lr_scale / (2 * s2 * s2 * probs[k].lam[0])
            for j, (B, target) in enumerate(zip(Bs, targets)):
                y = xt if k == 1 else rf.apply(target, xt, k - 1, Ft)
                resid = xk + s2 * (B[k] @ F).T - y
                totals[j] += float(np.mean(np.sum(resid**2, axis=1)))
                grad = 2.0 / batch * s2 * resid.T @ F.T
                B[k] -= step * grad
        for j, (B, res) in enumerate(zip(Bs, results)):
            targets[j] = B.copy() if mu == 0 else mu * targets[j] + (1 - mu) * B
            res.losses.append(totals[j] / (L - 1))
            if not np.isfinite(totals[j]):
                raise MembenchError(f"rfnn cd: loss diverged at iteration {it}; lower lr_scale")
            if it in snapshot_at:
                res.snapshots[it] = B.copy()
    for res, B in zip(results, Bs):
        res.B = B
    return results


@dataclass
class PopulationProbe:
    """Fixed noisy points of the population DSM loss at one level, with their features computed once.

    The points depend on the seed and level only, so a time curve evaluates many weights on one probe.
    """

    sigma: float
    Z: np.ndarray  # (N, d) noises
    F: np.ndarray  # (p, N) features of the noisy points

    def loss(self, A_k: np.ndarray) -> float:
        pred = (A_k @ self.F).T
        return float(np.mean(np.sum((self.sigma * pred + self.Z) ** 2, axis=1)))


def population_probe(rf: RandomFeatures, k: int, X: np.ndarray, draws: int, seed: int) -> PopulationProbe:
    rng = np.random.default_rng([seed, 11, k])
    s = rf.sigmas[k]
    Z = rng.standard_normal((len(X) * draws, X.shape[1]))
    Xs = np.repeat(X, draws, axis=0) + s * Z
    return PopulationProbe(s, Z, rf.phi(Xs, k))


def population_loss(rf: RandomFeatures, A: np.ndarray, k: int, X: np.ndarray, draws: int, seed: int) -> float:
    """The DSM loss of level k on fresh points X (the population loss when X is unseen data)."""
    return population_probe(rf, k, X, draws, seed).loss(A[k])


def memorization(samples: np.ndarray, X: np.ndarray, threshold: float = 1 / 3) -> dict[str, Any]:
    """L2-ratio memorization of points: membench's one measurement path on (N, 1, 1, d) 'images'."""
    from membench.data import Dataset
    from membench.detectors.base import DetectorContext
    from membench.detectors.l2ratio import L2Ratio
    from membench.measure import ImageSet, measure

    if not np.isfinite(samples).all():
        raise MembenchError("rfnn: the sampler produced NaN or infinite points")
    ds = Dataset(spec="rfnn-train", images=X.reshape(len(X), 1, 1, -1).astype(np.float32))
    iset = ImageSet.of_images(samples.reshape(len(samples), 1, 1, -1).astype(np.float32), {"name": "rfnn"}, ds)
    rec = measure([iset], [L2Ratio(threshold=threshold)], DetectorContext()).records[0]
    mem = rec.metrics["memorized"]
    return {"memorized": mem.value, "ci_low": mem.interval[0], "ci_high": mem.interval[1], "n": rec.n,
            "ratio_median": rec.value("score_median"), "nearest": rec.arrays["nearest"], "flags": rec.arrays["flags"]}