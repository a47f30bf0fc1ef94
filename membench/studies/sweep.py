"""``membench sweep``: memorization of teacher and CD student against the training-set size.

One teacher per size, all with the same training budget (steps, batch, learning rate), each
distilled with the same method; the known shape (Gu et al. 2023; Bonnaire et al. 2025) is
that memorization falls as the training set grows. All sizes share the held-out split and
are nested subsets (``digits:n=16`` is inside ``digits:n=64``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import MembenchError
from ..registry import register
from .base import Study, StudyContext, write_record, write_table
from .measure import Evaluator
from .pipeline import progress_note, teacher_and_student, train_with_snapshots, unet_preset
from .plots import study_figures


@register("studies", "sweep")
@dataclass
class SweepStudy(Study):
    """Teacher and CD-student memorization/quality against the number of training digits."""

    sizes: tuple = (16, 32, 64, 128, 256, 512, 1497)  # 1,497 = every digit outside the 300 held out
    data_seed: int = 0
    steps: int = 6000
    method: str = "cd"
    student_steps: tuple = (1,)
    batch_size: int = 64
    lr: float = 2e-4
    ema: float = 0.999
    unet: str = "default"
    detectors: tuple = ("all",)
    n_samples: int = 1000
    seed: int = 0
    quality: bool = True

    description = "teacher and CD-student memorization/quality vs training-set size (same budget per size)"
    QUICK = {"sizes": (8, 16), "steps": 4, "method": "cd:iterations=2,batch_size=8", "unet": "tiny",
             "n_samples": 32, "batch_size": 8}

    def check(self) -> None:
        if not self.sizes or any(int(s) != s or s < 2 for s in self.sizes):
            raise MembenchError(f"sweep: sizes must be integers >= 2, got {self.sizes}")
        if self.steps < 1:
            raise MembenchError("sweep: steps must be positive")
        unet_preset(self.unet)

    def run(self, out: Path, ctx: StudyContext) -> dict[str, pd.DataFrame]:
        from ..data import load_dataset

        started = time.time()
        note = progress_note(ctx.progress)
        rows, records = [], {}
        for size in sorted(int(s) for s in self.sizes):
            data = load_dataset(f"digits:n={size},seed={self.data_seed}")
            ev = Evaluator(data, self.detectors, ctx.device, self.quality)
            note(f"size {size}: training a teacher for {self.steps} steps")
            snaps, record = train_with_snapshots(data.spec, self.steps, set(), ctx.device, ctx.progress,
                                                 batch_size=self.batch_size, lr=self.lr, ema=self.ema, seed=self.seed,
                                                 unet=unet_preset(self.unet))
            records[size] = {"wall_time_s": record["wall_time_s"], "final_loss": record["final_loss"]}
            rows += teacher_and_student(ev, snaps[self.steps], data, {"n_train": size, "dataset": data.spec},
                                        self.method, tuple(self.student_steps), self.n_samples, self.seed, ctx.device,
                                        ctx.progress)
        table = pd.DataFrame(rows)
        out.mkdir(parents=True, exist_ok=True)
        write_table(out, "sweep", table)
        study_figures(out, table, x="n_train", xlabel="training digits", title=f"same budget: {self.steps} steps")
        write_record(out, self, ctx, started, {"teacher_training": records, "detectors_skipped": ev.skipped,
                                               "quality_note": ev.quality_note})
        return {"sweep": table}
