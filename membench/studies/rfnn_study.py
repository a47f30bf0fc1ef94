"""``membench study rfnn``: the random-feature model's spectrum, training-time curve and CD student.

Tables (CSV) and figures (PNG) under the output folder:

* ``spectrum``: eigenvalues of the feature Gram matrix U_k at every level, and the split into
  large (generalization) and small (memorization) eigenvalues at the largest log-gap.
* ``teacher_time``: along gradient descent (exact, any number of steps): train and population
  loss at the analysed level, the teacher's weight on the small-eigenvalue directions and the
  memorized fraction of its Heun samples (l2ratio on the points, 95% Wilson interval).
* ``distill``: the CD student from the long-trained teacher, over distillation iterations and
  for 1, 2 and 4 sampling steps: memorized fraction, agreement of its nearest training point
  with the teacher's for the same noise, and its weight on the small-eigenvalue directions.
* ``weights_by_level``: teacher and final student weight split at every level.
* ``sizes``: how the generalization time (minimum population loss) and the memorization
  onset (first time half the teacher's samples are copies) move with the number of points.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from membench.studies import rfnn_model as rfnn
from membench.core.errors import MembenchError
from membench.core.stats import wilson_interval
from membench.studies.base import Study, StudyContext, pyplot, write_figure, write_record, write_table


@dataclass
class RFNNStudy(Study):
    """Random-feature model (Bonnaire et al. 2025): Gram spectrum, GD time curve, CD student weights."""

    data: str = "gaussian"  # gaussian (N(0, I_d)) or digits (d = 64)
    d: int = 8
    n: int = 16
    p: int = 512
    noise_draws: int = 64  # fixed noises per training point (the loss is then an exact quadratic)
    levels: int = 10
    sigma_min: float = 0.02
    sigma_max: float = 20.0
    analyze_sigma: float = 0.5  # the level whose spectrum and losses are plotted (nearest on the grid)
    teacher_steps: float = 1e8  # gradient-descent steps of the long-trained (memorizing) teacher
    time_points: int = 17  # points of the training-time curve, log-spaced from 1 to teacher_steps
    cd_iterations: int = 3000
    cd_batch: int = 256
    cd_lr: float = 0.5
    cd_mu: float = 0.0
    cd_snapshots: tuple = (0, 10, 100, 300, 1000, 3000)
    sample_steps: tuple = (1, 2, 4)
    sizes: tuple = (4, 8, 16, 32, 64)  # numbers of training points for the onset-vs-n curve (empty: skip)
    sizes_max_steps: float = 1e12  # the onset curve's GD time grid runs to here (exact: any length costs the same)
    sizes_time_points: int = 25
    independent_student: bool = True  # also distil a student started at B = 0 (not from the teacher)
    n_samples: int = 1000
    threshold: float = 1.0 / 3.0
    seed: int = 0

    QUICK = {"d": 4, "n": 6, "p": 32, "noise_draws": 8, "levels": 4, "time_points": 4, "cd_iterations": 20,
             "cd_batch": 16, "cd_snapshots": (0, 10, 20), "sizes": (4,), "teacher_steps": 1e6, "n_samples": 64, "sample_steps": (1, 2)}

    def check(self) -> None:
        if self.data not in ("gaussian", "digits"):
            raise MembenchError(f"rfnn: data must be gaussian or digits, got {self.data!r}")
        if min(self.d, self.n, self.p, self.noise_draws, self.n_samples, self.cd_batch) < 1 or self.levels < 2:
            raise MembenchError("rfnn: d, n, p, noise_draws, n_samples, cd_batch >= 1 and levels >= 2 are required")
        if not 0 < self.sigma_min < self.sigma_max:
            raise MembenchError("rfnn: need 0 < sigma_min < sigma_max")
        if self.teacher_steps < 1 or self.time_points < 2:
            raise MembenchError("rfnn: teacher_steps >= 1 and time_points >= 2 are required")
        if not 0 < self.threshold <= 1:
            raise MembenchError(f"rfnn: threshold must be in (0, 1], got {self.threshold}")
        if any(int(s) != s or s < 1 for s in self.sample_steps):
            raise MembenchError(f"rfnn: sample_steps must be positive integers, got {self.sample_steps}")
        if any(int(s) != s or s < 0 or s > self.cd_iterations for s in self.cd_snapshots):
            raise MembenchError(f"rfnn: cd_snapshots must be integers in [0, cd_iterations], got {self.cd_snapshots}")
        if any(int(s) != s or s < 2 for s in self.sizes):
            raise MembenchError(f"rfnn: sizes must be integers >= 2, got {self.sizes}")

    # -------------------------------------------------------------- building blocks

    def _setup(self, n: int) -> tuple[rfnn.RFData, rfnn.RandomFeatures, list[rfnn.LevelProblem]]:
        data = rfnn.make_data(self.data, n, self.d, self.seed)
        d = data.train.shape[1]
        W = np.random.default_rng([self.seed, 3]).standard_normal((self.p, d))
        rf = rfnn.RandomFeatures(W, rfnn.karras_levels(self.levels, self.sigma_min, self.sigma_max), data.sigma_data)
        rng = np.random.default_rng([self.seed, 5, n])
        probs = [rfnn.level_problem(rf, data.train, k, self.noise_draws, rng) for k in range(self.levels)]
        return data, rf, probs

    def _noises(self, d: int) -> tuple[np.ndarray, list[np.ndarray]]:
        rng = np.random.default_rng([self.seed, 9])
        z = rng.standard_normal((self.n_samples, d))
        extra = [rng.standard_normal((self.n_samples, d)) for _ in range(max(self.sample_steps) - 1)]
        return z, extra

    def _teacher(self, probs: list[rfnn.LevelProblem], steps: float) -> np.ndarray:
        return np.stack([rfnn.gd_weights(pr, steps) for pr in probs])

    def _time_grid(self) -> np.ndarray:
        return np.unique(np.round(np.logspace(0, np.log10(self.teacher_steps), self.time_points)))

    # -------------------------------------------------------------- the study

    def run(self, out: Path, ctx: StudyContext) -> dict[str, pd.DataFrame]:
        started = time.time()
        data, rf, probs = self._setup(self.n)
        k_star = int(np.argmin(np.abs(rf.sigmas - self.analyze_sigma)))
        splits = [rfnn.spectral_split(pr.lam, max_rank=4 * (rf.d + self.n)) for pr in probs]
        z, extra = self._noises(rf.d)

        spectrum = pd.DataFrame([{"level": k, "sigma": pr.sigma, "rank": i, "eigenvalue": lam, "large": i < splits[k]}
                                 for k, pr in enumerate(probs) for i, lam in enumerate(pr.lam)])

        # Training-time curve of the teacher (all levels trained for the same number of steps).
        rows = []
        probe = rfnn.population_probe(rf, k_star, data.test, 8, self.seed)
        for tau in self._time_grid():
            A = self._teacher(probs, tau)
            x = rfnn.heun_teacher(rf, A, z)
            mem = rfnn.memorization(x, data.train, self.threshold)
            rows.append({"gd_steps": tau, "fd_population": rfnn.frechet_distance(x, data.test),
                         "train_loss": probs[k_star].loss(A[k_star]), "population_loss": probe.loss(A[k_star]),
                         **rfnn.weight_split(A[k_star], probs[k_star], splits[k_star]),
                         **{k: v for k, v in mem.items() if k not in ("nearest", "flags")}})
        teacher_time = pd.DataFrame(rows)

        # The long-trained teacher and its consistency-distilled student.
        A = self._teacher(probs, self.teacher_steps)
        t_x = rfnn.heun_teacher(rf, A, z)
        t_mem = rfnn.memorization(t_x, data.train, self.threshold)
        snaps = tuple(sorted({int(s) for s in self.cd_snapshots} | {self.cd_iterations}))
        # both students in one pass: they share every minibatch and teacher step (same seed)
        inits = ("teacher", "zero") if self.independent_student else ("teacher",)
        students = rfnn.consistency_distill_many(rf, A, data.train, probs, self.cd_iterations, self.cd_batch,
                                                 self.cd_lr, self.cd_mu, self.seed, snaps, inits)
        cd = students[0]
        rows = [{"model": "teacher", "cd_iterations": np.nan, "steps": 2 * (self.levels - 1) + 1, "sampler": "heun",
                 **{k: v for k, v in t_mem.items() if k not in ("nearest", "flags")},
                 "fd_population": rfnn.frechet_distance(t_x, data.test), "cd_loss": np.nan,
                 "nearest_agreement": 1.0, "agree_ci_low": np.nan, "agree_ci_high": np.nan,
                 "median_dist_to_teacher_sample": 0.0, "update_energy_frac_small": np.nan,
                 **rfnn.weight_split(A[k_star], probs[k_star], splits[k_star])}]
        for steps in self.sample_steps:
            c_x = rfnn.euler_teacher(rf, A, z, int(steps))
            c_mem = rfnn.memorization(c_x, data.train, self.threshold)
            same = int(np.sum(c_mem["nearest"] == t_mem["nearest"]))
            lo, hi = wilson_interval(same, self.n_samples)
            rows.append({"model": "control", "cd_iterations": np.nan, "steps": int(steps), "sampler": "euler",
                         **{k: v for k, v in c_mem.items() if k not in ("nearest", "flags")},
                         "fd_population": rfnn.frechet_distance(c_x, data.test), "cd_loss": np.nan,
                         "nearest_agreement": same / self.n_samples, "agree_ci_low": lo, "agree_ci_high": hi,
                         "median_dist_to_teacher_sample": float(np.median(np.linalg.norm(c_x - t_x, axis=1))),
                         "update_energy_frac_small": np.nan,
                         **rfnn.weight_split(A[k_star], probs[k_star], splits[k_star])})
        for model, run in zip(("student", "student-independent"), students):
            for it, B in sorted(run.snapshots.items()):
                upd = rfnn.weight_split(B[k_star] - A[k_star], probs[k_star], splits[k_star])["energy_frac_small"]
                loss = float(np.mean(run.losses[max(0, it - 10):it])) if it else np.nan
                for steps in self.sample_steps:
                    s_x = rfnn.consistency_sample(rf, B, z, int(steps), extra)
                    s_mem = rfnn.memorization(s_x, data.train, self.threshold)
                    same = int(np.sum(s_mem["nearest"] == t_mem["nearest"]))
                    lo, hi = wilson_interval(same, self.n_samples)
                    rows.append({"model": model, "cd_iterations": it, "steps": int(steps), "sampler": "consistency",
                                 **{k: v for k, v in s_mem.items() if k not in ("nearest", "flags")},
                                 "fd_population": rfnn.frechet_distance(s_x, data.test), "cd_loss": loss,
                                 "nearest_agreement": same / self.n_samples, "agree_ci_low": lo, "agree_ci_high": hi,
                                 "median_dist_to_teacher_sample": float(np.median(np.linalg.norm(s_x - t_x, axis=1))),
                                 "update_energy_frac_small": upd,
                                 **rfnn.weight_split(B[k_star], probs[k_star], splits[k_star])})
        distill = pd.DataFrame(rows)

        levels = pd.DataFrame([{"level": k, "sigma": pr.sigma, "n_large": splits[k],
                                "teacher_energy_frac_small": rfnn.weight_split(A[k], pr, splits[k])["energy_frac_small"],
                                "student_energy_frac_small": rfnn.weight_split(cd.B[k], pr, splits[k])["energy_frac_small"]
                                if k > 0 else np.nan,
                                "update_energy_frac_small": rfnn.weight_split(cd.B[k] - A[k], pr, splits[k])
                                ["energy_frac_small"] if k > 0 else np.nan,
                                "teacher_population_loss": rfnn.population_loss(rf, A, k, data.test, 8, self.seed)}
                               for k, pr in enumerate(probs)])

        sizes = self._sizes(z) if self.sizes else pd.DataFrame()
        tables = {"spectrum": spectrum, "teacher_time": teacher_time, "distill": distill,
                  "weights_by_level": levels, "sizes": sizes}
        out.mkdir(parents=True, exist_ok=True)
        for name, df in tables.items():
            if len(df):
                write_table(out, name, df)
        self._figures(out, tables, k_star, rf.sigmas[k_star])
        write_record(out, self, ctx, started, {"analyzed_level": k_star, "analyzed_sigma": float(rf.sigmas[k_star]),
                                               "n_large_by_level": splits, "data": data.spec,
                                               "cd_final_loss": cd.losses[-1] if cd.losses else None})
        return tables

    def _sizes(self, z: np.ndarray) -> pd.DataFrame:
        """Generalization time and memorization onset against the number of training points."""
        rows = []
        grid = np.unique(np.round(np.logspace(0, np.log10(self.sizes_max_steps), self.sizes_time_points)))
        for n in self.sizes:
            data, rf, probs = self._setup(int(n))
            k_star = int(np.argmin(np.abs(rf.sigmas - self.analyze_sigma)))
            pop, mem = [], []
            probe = rfnn.population_probe(rf, k_star, data.test, 8, self.seed)
            for tau in grid:
                A = self._teacher(probs, tau)
                pop.append(probe.loss(A[k_star]))
                mem.append(rfnn.memorization(rfnn.heun_teacher(rf, A, z), data.train, self.threshold)["memorized"])
            onset = next((t for t, m in zip(grid, mem) if m >= 0.5), np.nan)
            # onset relative to where memorization ends (the theory's tau_mem ~ n): the first grid
            # time at which half of the final memorized fraction is reached; and the first at 0.1
            rel = next((t for t, m in zip(grid, mem) if mem[-1] > 0 and m >= 0.5 * mem[-1]), np.nan)
            low = next((t for t, m in zip(grid, mem) if m >= 0.1), np.nan)
            rows.append({"n": int(n), "gd_steps_min_population_loss": grid[int(np.argmin(pop))],
                         "min_population_loss": float(np.min(pop)), "gd_steps_half_memorized": onset,
                         "gd_steps_half_of_final_memorized": rel, "gd_steps_memorized_0.1": low,
                         "memorized_at_end": mem[-1], "max_gd_steps": float(grid[-1]),
                         "lambda_max": probs[k_star].lam[0]})
        return pd.DataFrame(rows)

    def _figures(self, out: Path, t: dict[str, pd.DataFrame], k_star: int, sigma: float) -> None:
        plt = pyplot()
        spec = t["spectrum"]
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        lvl = spec[spec.level == k_star]
        logs = np.log10(np.clip(lvl.eigenvalue.to_numpy(), 1e-300, None))
        axes[0].hist([logs[lvl.large.to_numpy()], logs[~lvl.large.to_numpy()]], bins=40, stacked=True,
                     label=["large (generalization)", "small (memorization)"])
        axes[0].set_xlabel("log10 eigenvalue of U"), axes[0].set_ylabel("count")
        axes[0].set_title(f"Gram spectrum at sigma={sigma:.3g}"), axes[0].legend(fontsize=8)
        for k, g in spec.groupby("level"):
            axes[1].semilogy(g["rank"], g.eigenvalue.clip(lower=1e-300), lw=1, label=f"{g.sigma.iloc[0]:.3g}")
        axes[1].set_xlabel("rank"), axes[1].set_ylabel("eigenvalue"), axes[1].set_title("all levels (sigma)")
        axes[1].legend(fontsize=6, ncol=2)
        write_figure(out, "spectrum", fig)

        tt = t["teacher_time"]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        axes[0].loglog(tt.gd_steps, tt.train_loss, "o-", label="train")
        axes[0].loglog(tt.gd_steps, tt.population_loss, "s-", label="population")
        axes[0].set_title(f"DSM loss at sigma={sigma:.3g}"), axes[0].legend()
        axes[1].semilogx(tt.gd_steps, tt.frac_small, "o-", label="share of ||A||^2")
        axes[1].semilogx(tt.gd_steps, tt.energy_frac_small, "s-", label="share of output energy")
        axes[1].set_title("teacher on small-eigenvalue directions"), axes[1].legend(fontsize=7)
        _frac_plot(axes[2], tt.gd_steps, tt, "teacher samples")
        axes[2].set_xscale("log"), axes[2].set_title("memorized fraction (l2ratio < 1/3)")
        for ax in axes:
            ax.set_xlabel("gradient-descent steps")
        write_figure(out, "training_time", fig)

        dd = t["distill"]
        st = dd[dd.model == "student"]
        teacher = dd[dd.model == "teacher"].iloc[0]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        for steps, g in st.groupby("steps"):
            x = g.cd_iterations.to_numpy() + 1
            _frac_plot(axes[0], x, g, f"student, {steps} step(s)")
            axes[1].errorbar(x, g.nearest_agreement, yerr=[g.nearest_agreement - g.agree_ci_low,
                                                           g.agree_ci_high - g.nearest_agreement], marker="o",
                             capsize=2, label=f"{steps} step(s)")
        axes[0].axhline(teacher.memorized, color="k", ls="--", label="teacher (Heun)")
        for _, c in dd[dd.model == "control"].iterrows():
            axes[0].axhline(c.memorized, ls=":", lw=1, color=f"C{int(c.steps) % 10}",
                            label=f"teacher, Euler {int(c.steps)} step(s)")
        g1 = st[st.steps == st.steps.min()]
        axes[2].plot(g1.cd_iterations + 1, g1.energy_frac_small, "o-", label="student weights")
        axes[2].plot(g1.cd_iterations + 1, g1.update_energy_frac_small, "s-", label="student - teacher (CD update)")
        axes[2].axhline(teacher.energy_frac_small, color="k", ls="--", label="teacher weights")
        axes[0].set_title("memorized fraction"), axes[1].set_title("same nearest point as teacher")
        axes[2].set_title(f"small-eigenvalue share (sigma={sigma:.3g})")
        for ax in axes:
            ax.set_xscale("log"), ax.set_xlabel("CD iterations + 1"), ax.legend(fontsize=7)
        write_figure(out, "distill", fig)

        wl = t["weights_by_level"]
        fig, ax = plt.subplots(figsize=(5, 3.6))
        ax.semilogx(wl.sigma, wl.teacher_energy_frac_small, "o-", label="teacher")
        ax.semilogx(wl.sigma, wl.student_energy_frac_small, "s-", label="CD student")
        ax.semilogx(wl.sigma, wl.update_energy_frac_small, "^-", label="CD update (student - teacher)")
        ax.set_xlabel("sigma"), ax.set_ylabel("share of output energy"), ax.legend(fontsize=7)
        ax.set_title("small-eigenvalue directions, by level")
        write_figure(out, "weights_by_level", fig)

        sz = t["sizes"]
        if len(sz):
            fig, ax = plt.subplots(figsize=(5, 3.6))
            ax.loglog(sz.n, sz.gd_steps_min_population_loss, "o-", label="generalization (min population loss)")
            ax.loglog(sz.n, sz.gd_steps_half_memorized, "s-", label="memorization onset (50% copies)")
            ax.loglog(sz.n, sz.gd_steps_half_of_final_memorized, "^-", label="onset (half of the final fraction)")
            ax.set_xlabel("training points n"), ax.set_ylabel("gradient-descent steps"), ax.legend(fontsize=7)
            write_figure(out, "sizes", fig)


def _frac_plot(ax: Any, x: Any, df: pd.DataFrame, label: str) -> None:
    y = df.memorized.to_numpy()
    ax.errorbar(x, y, yerr=[y - df.ci_low.to_numpy(), df.ci_high.to_numpy() - y], marker="o", capsize=2, label=label)
    ax.set_ylim(-0.02, 1.02)
