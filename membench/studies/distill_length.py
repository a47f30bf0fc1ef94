"""``membench study distill-length``: is the memorization reduction of a distilled student real?

The teacher is distilled once (``cd`` by default) and the student's saved weights are taken
at every length in ``lengths`` (0 = the teacher's weights with the consistency boundary
scaling). Each snapshot is sampled with 1, 2 and 4 steps from the same noises as the
teacher; every image set is scored by every detector that can run here, against the
teacher's own samples (Heun, 18 steps) for the same noises, and for quality. The control is
the teacher sampled with as many network evaluations (Euler on the ramp grid).

If the student's samples keep the teacher's nearest training image for the same noise
(``nearest_agreement``, ``copies_kept``) while the L2-ratio test stops flagging them
(``copies_flagged``), the reduction is an artefact of noisier copies, not less memorization.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from membench.core.errors import MembenchError
from membench.studies.base import Study, StudyContext, write_record, write_table
from membench.studies.measure import Evaluator
from membench.studies.pipeline import distill, image_rows, nfe_control, progress_note, sample, with_steps
from membench.studies.plots import example_grid, study_figures

if TYPE_CHECKING:
    from membench.models.specs import ModelSpec


@dataclass
class DistillLengthStudy(Study):
    """Student memorization, agreement with the teacher and quality against distillation length."""

    teacher: str = "teacher"  # a registered EDM teacher, or a checkpoint folder (its membench.json names the data)
    method: str = "cd"  # distiller spec; its iterations are set to max(lengths)
    lengths: tuple = (0, 100, 250, 500, 1000, 2000, 4000)
    sample_steps: tuple = (1, 2, 4)
    detectors: tuple = ("all",)
    n_samples: int = 1000
    seed: int = 0
    quality: bool = True

    QUICK = {"lengths": (0, 2, 4), "sample_steps": (1, 2), "n_samples": 48, "method": "cd:batch_size=8"}

    def check(self) -> None:
        if not self.lengths or any(int(x) != x or x < 0 for x in self.lengths):
            raise MembenchError(f"distill-length: lengths must be non-negative integers, got {self.lengths}")
        if any(int(s) != s or s < 1 for s in self.sample_steps):
            raise MembenchError(f"distill-length: sample_steps must be positive integers, got {self.sample_steps}")
        if not isinstance(self.n_samples, int) or self.n_samples < 2:
            raise MembenchError(f"distill-length: n_samples must be an integer >= 2, got {self.n_samples}")

    def run(self, out: Path, ctx: StudyContext) -> dict[str, pd.DataFrame]:
        from membench.models.checkpoints import checkpoint_hash, load_denoiser
        from membench.data import load_dataset

        started = time.time()
        note = progress_note(ctx.progress)
        spec = self._teacher_spec()
        teacher, meta = load_denoiser(spec.checkpoint, ctx.device)
        if meta.get("edm", {}).get("boundary"):
            raise MembenchError(f"distill-length: {spec.checkpoint} is a consistency model, not an EDM teacher")
        data = load_dataset(spec.dataset)
        shape = data.shape
        ev = Evaluator(data, self.detectors, ctx.device, self.quality, store=out, study=self.registry_name)
        lengths = tuple(sorted({int(x) for x in self.lengths}))

        note(f"sampling teacher {spec.name} ({spec.sampler})")
        t_images = sample(teacher, spec.sampler, self.n_samples, self.seed, shape, ctx.device)
        rows, ref = image_rows(ev, {"model": "teacher", "length": np.nan, "steps": np.nan, "nfe": _nfe(spec.sampler),
                                    "sampler": spec.sampler}, t_images)
        examples = {"teacher": t_images}
        for s in self.sample_steps:
            sampler = nfe_control(s)
            imgs = sample(teacher, sampler, self.n_samples, self.seed, shape, ctx.device)
            r, _ = image_rows(ev, {"model": "control", "length": np.nan, "steps": int(s), "nfe": int(s),
                                   "sampler": sampler}, imgs, ref, self.seed)
            rows += r

        note(f"distilling ({self.method}) for {max(lengths)} iterations, snapshots at {lengths}")
        t0 = time.time()
        _, student_sampler, snaps, record = distill(teacher, data, self.method, ctx.device, ctx.progress, spec.name,
                                                    snapshot_at=lengths, iterations=max(lengths))
        distill_seconds = time.time() - t0
        for length in lengths:
            for s in self.sample_steps:
                sampler = with_steps(student_sampler, s)
                imgs = sample(snaps[length], sampler, self.n_samples, self.seed, shape, ctx.device)
                r, _ = image_rows(ev, {"model": "student", "length": length, "steps": int(s), "nfe": int(s),
                                       "sampler": sampler}, imgs, ref, self.seed)
                rows += r
                if s == min(self.sample_steps):
                    examples[f"student@{length}"] = imgs
        table = pd.DataFrame(rows)
        out.mkdir(parents=True, exist_ok=True)
        write_table(out, "distill_length", table)
        study_figures(out, table, x="length", xlabel="distillation iterations", title=f"{self.method} from {spec.name}")
        example_grid(out, "examples", examples, data, n=10)
        write_record(out, self, ctx, started, {
            "teacher": spec.name, "teacher_checkpoint_sha256": checkpoint_hash(spec.checkpoint),
            "dataset": data.spec, "distill_record": record, "distill_seconds": round(distill_seconds, 1),
            "detectors_skipped": ev.skipped, "quality_note": ev.quality_note})
        return {"distill_length": table}


    def _teacher_spec(self) -> "ModelSpec":
        from membench.models.checkpoints import read_meta
        from membench.models.specs import ModelSpec, resolve_model

        if Path(self.teacher).is_dir():  # a checkpoint folder, e.g. the training-time study's teacher
            meta = read_meta(self.teacher)
            if "dataset" not in meta:
                raise MembenchError(f"{self.teacher}: membench.json names no dataset")
            return ModelSpec(name=Path(self.teacher).name, role="teacher", checkpoint=str(self.teacher),
                             sampler="heun:steps=18", dataset=meta["dataset"])
        spec = resolve_model(self.teacher)
        if spec.role != "teacher":
            raise MembenchError(f"distill-length: {self.teacher!r} is a {spec.role}, not a teacher")
        return spec


def _nfe(sampler: str) -> int:
    from membench.models.specs import make_sampler

    return int(getattr(make_sampler(sampler), "nfe", -1))
