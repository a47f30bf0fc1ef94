"""``membench study known-answer``: distillation's known answer, a student of a copying teacher copies.

Two weightless teachers of the same n training digits (``membench.models.optimal``): the
empirical optimal denoiser, whose probability-flow ODE ends on a training image for every noise
(every sample a copy), and the optimal denoiser of the Gaussian fitted to the same images, which
copies nothing (the control). Each is consistency-distilled (the ``cd`` distiller, one recipe)
into the same network (``TimeMLP``, same initialization per seed) and the one-step students are
sampled from the same noises. If the recipe can transfer copying, the optimal teacher's student
is flagged far more often than the Gaussian teacher's; a recipe that could not copy whatever the
teacher did would make the real students' low flagged fractions uninformative.

Tables: ``known_answer`` (every image set: l2ratio flagged fraction with its 95% Wilson interval
over the noises), ``paired`` (per distillation seed and weights: optimal minus Gaussian student,
paired by noise, Newcombe interval). Runs on the CPU whatever ``--device`` says: the networks are
a few hundred thousand parameters and the closed-form teachers compute in float64.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from membench.core.devices import torch_threads
from membench.core.errors import MembenchError
from membench.core.stats import wilson_interval
from membench.studies.base import Study, StudyContext, write_record, write_table


@dataclass
class KnownAnswerStudy(Study):
    """CD students of the empirical optimal denoiser (copies) and of its Gaussian fit (does not)."""

    n_train: int = 8  # the first n digits of the default split (data seed 0)
    seeds: tuple = (0, 1, 2)  # distillation seeds: the network's initialization and cd's seed
    iterations: int = 6000
    levels: int = 10  # cd's Karras grid; the one-step student samples at its sigma_max
    lr: float = 1e-3
    batch_size: int = 64
    width: int = 256
    n_samples: int = 1000  # one-step samples per student, noise seed 0 (paired across students)

    QUICK = {"iterations": 20, "seeds": (0,), "n_samples": 32}

    def check(self) -> None:
        if self.n_train < 3 or self.iterations < 0 or self.levels < 2 or self.n_samples < 2 or self.width < 1:
            raise MembenchError("known-answer: n_train >= 3, iterations >= 0, levels >= 2, n_samples >= 2 "
                                "and width >= 1 are required")
        if not self.seeds or any(int(s) != s or s < 0 for s in self.seeds):
            raise MembenchError(f"known-answer: seeds must be non-negative integers, got {self.seeds}")

    def run(self, out: Path, ctx: StudyContext) -> dict[str, pd.DataFrame]:
        from membench.analysis.effect import paired_flags_difference
        from membench.data import Dataset
        from membench.data.digits import load
        from membench.models.optimal import EmpiricalOptimalDenoiser, GaussianDenoiser
        from membench.models.samplers.karras import HeunSampler

        started = time.time()
        digits = load(n=self.n_train, seed=0, holdout=8)
        data = Dataset(spec=f"digits:n={self.n_train}", images=digits.images, heldout=digits.heldout)
        teachers = {"optimal": EmpiricalOptimalDenoiser(data.images), "gaussian": GaussianDenoiser(data.images)}
        rows, flags = [], {}
        with torch_threads(1):  # a 256-wide MLP only pays for a second thread's synchronization
            for name, teacher in teachers.items():
                f = self._flags(self._sample(teacher, HeunSampler(steps=self.levels), data), data)
                rows.append(self._row(name, "teacher", np.nan, f"heun:steps={self.levels}", f))
                for seed in self.seeds:
                    for weights, model in self._students(teacher, data, int(seed), ctx).items():
                        flags[name, seed, weights] = f = self._flags(self._sample_one_step(model, data), data)
                        rows.append(self._row(name, weights, seed, f"consistency:steps=1,levels={self.levels}", f))
        paired = []
        for (name, seed, weights), f in flags.items():
            if name != "optimal":
                continue
            g = flags["gaussian", seed, weights]
            d, lo, hi = paired_flags_difference(f, g)
            paired.append({"seed": seed, "weights": weights, "optimal_student": f.mean(), "gaussian_student": g.mean(),
                           "diff": d, "diff_ci_low": lo, "diff_ci_high": hi})
        tables = {"known_answer": pd.DataFrame(rows), "paired": pd.DataFrame(paired)}
        out.mkdir(parents=True, exist_ok=True)
        for name, df in tables.items():
            write_table(out, name, df)
        write_record(out, self, ctx, started, {"detector": "l2ratio", "noise_seed": 0})
        return tables

    def _students(self, teacher, data, seed: int, ctx: StudyContext) -> dict:
        import torch

        from membench.models.edm import EDMConfig, EDMDenoiser
        from membench.models.mlp import TimeMLP
        from membench.training.distillers.base import DistillContext, make_distiller

        torch.manual_seed(seed)
        init = EDMDenoiser(TimeMLP(int(np.prod(data.shape)), self.width), EDMConfig())
        cd = make_distiller(f"cd:iterations={self.iterations},levels={self.levels},batch_size={self.batch_size},"
                            f"lr={self.lr},mu=0,seed={seed}")
        result = cd.distill(teacher, data, DistillContext(student_init=init, progress=ctx.progress))
        return {"ema": result.student, **result.variants}

    def _sample_one_step(self, model, data) -> np.ndarray:
        from membench.models.samplers.consistency import ConsistencySampler

        return self._sample(model, ConsistencySampler(steps=1, levels=self.levels), data)

    def _sample(self, model, sampler, data) -> np.ndarray:
        from membench.models.samples import generate

        return generate(model, sampler, self.n_samples, 0, data.shape, "cpu")[0]

    @staticmethod
    def _flags(images: np.ndarray, data) -> np.ndarray:
        from membench.detectors.base import DetectorContext, make_detector

        return np.asarray(make_detector("l2ratio").detect(images, data, DetectorContext()).flags, bool)

    def _row(self, teacher: str, weights: str, seed: float, sampler: str, flags: np.ndarray) -> dict:
        lo, hi = wilson_interval(int(flags.sum()), len(flags))
        return {"teacher": teacher, "model": "teacher" if weights == "teacher" else "student", "weights": weights,
                "seed": seed, "sampler": sampler, "l2ratio": flags.mean(), "ci_low": lo, "ci_high": hi,
                "n": len(flags)}
