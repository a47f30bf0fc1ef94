"""``membench study training-time``: memorization and quality along the teacher's training, and
the same for the student distilled from each checkpoint (Bonnaire et al. 2025 dynamics)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from membench.core.errors import MembenchError
from membench.studies.base import Study, StudyContext, write_record, write_table
from membench.studies.measure import Evaluator
from membench.studies.pipeline import progress_note, teacher_and_student, train_with_snapshots, unet_preset
from membench.studies.plots import study_figures


@dataclass
class TrainingTimeStudy(Study):
    """Teacher and CD-student memorization and quality at checkpoints along the teacher's training."""

    dataset: str = "digits:n=64"
    steps: int = 6000
    checkpoints: tuple = (250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000)
    distill_checkpoints: tuple = (500, 1000, 2000, 4000, 6000)  # subset that is also distilled
    method: str = "cd"
    student_steps: tuple = (1,)
    batch_size: int = 64
    lr: float = 2e-4
    ema: float = 0.999
    unet: str = "default"  # UNet preset (membench.studies.pipeline.UNET_PRESETS)
    detectors: tuple = ("all",)
    n_samples: int = 1000
    seed: int = 0
    quality: bool = True
    save_teacher: bool = False  # also write the final teacher as a checkpoint folder <out>/teacher

    QUICK = {"dataset": "digits:n=16", "steps": 4, "checkpoints": (2, 4), "distill_checkpoints": (4,),
             "method": "cd:iterations=2,batch_size=8", "unet": "tiny", "n_samples": 32, "batch_size": 8}

    def check(self) -> None:
        cps = set(self.checkpoints)
        if not cps or any(int(c) != c or not 0 < c <= self.steps for c in cps):
            raise MembenchError(f"training-time: checkpoints must be integers in [1, steps={self.steps}]")
        if not set(self.distill_checkpoints) <= cps | {self.steps}:
            raise MembenchError("training-time: distill_checkpoints must be among the checkpoints")
        unet_preset(self.unet)

    def run(self, out: Path, ctx: StudyContext) -> dict[str, pd.DataFrame]:
        from membench.data import load_dataset

        started = time.time()
        note = progress_note(ctx.progress)
        data = load_dataset(self.dataset)
        ev = Evaluator(data, self.detectors, ctx.device, self.quality, store=out, study=self.registry_name)
        note(f"training a teacher on {data.spec} for {self.steps} steps")
        snaps, record = train_with_snapshots(data.spec, self.steps, {int(c) for c in self.checkpoints}, ctx.device,
                                             ctx.progress, batch_size=self.batch_size, lr=self.lr, ema=self.ema,
                                             seed=self.seed, unet=unet_preset(self.unet))
        rows = []
        for step in sorted(int(c) for c in self.checkpoints):
            note(f"checkpoint {step}")
            rows += teacher_and_student(ev, snaps[step], data, {"train_steps": step}, self.method,
                                        tuple(self.student_steps), self.n_samples, self.seed, ctx.device, ctx.progress,
                                        distil=step in set(self.distill_checkpoints))
        table = pd.DataFrame(rows)
        out.mkdir(parents=True, exist_ok=True)
        if self.save_teacher:
            self._save(out / "teacher", snaps[self.steps], data, record)
        write_table(out, "training_time", table)
        study_figures(out, table, x="train_steps", xlabel="teacher training steps", title=f"teacher on {data.spec}")
        write_record(out, self, ctx, started, {"dataset": data.spec, "teacher_training": record,
                                               "detectors_skipped": ev.skipped, "quality_note": ev.quality_note})
        return {"training_time": table}

    def _save(self, target: Path, model: object, data: object, record: dict) -> None:
        """The final teacher as a membench checkpoint (usable as ``distill-length --set teacher=<path>``)."""
        from membench.core.io import atomic_write_text
        from membench.core.io import file_sha256
        from membench.models.checkpoints import WEIGHTS, save_denoiser
        from membench.training.modelcard import render

        c = model.unet.config
        meta = {"role": "teacher", "name": "training-time-teacher", "dataset": data.spec, "training": record,
                "image_shape": [c.in_channels, c.sample_size, c.sample_size]}
        save_denoiser(model, target, meta, force=True)
        card = render("training-time-teacher", "EDM teacher (the training-time study's final checkpoint)",
                      "membench study training-time --set save_teacher=true ...", record,
                      file_sha256(target / WEIGHTS), None)
        atomic_write_text(target / "README.md", card)
