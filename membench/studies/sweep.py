"""``membench sweep``: memorization of teacher and CD student against the training-set size.

One teacher per size, all with the same training budget (steps, batch, learning rate), each
distilled with the same method; the known shape (Gu et al. 2023; Bonnaire et al. 2025) is
that memorization falls as the training set grows. All sizes share the held-out split and
are nested subsets (``digits:n=16`` is inside ``digits:n=64``).

Each size is stored as soon as it is done, as a ``study`` record of the one store
(``<out>/records/study/sweep_n_train=<size>/``) keyed by the options it depends on and holding
that size's rows; a rerun with the same options reuses the sizes already there, so an
interrupted sweep resumes, and disjoint ``--set sizes=...`` runs into one folder (for example
one per core) are combined by a last run over all the sizes. The measurements behind the rows
are detection and quality records in the same store.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from membench.core.errors import MembenchError
from membench.store.records import Record, read_record, record_path, write_record as store_record
from membench.studies.base import Study, StudyContext, write_record, write_table
from membench.studies.measure import Evaluator
from membench.studies.pipeline import progress_note, teacher_and_student, train_with_snapshots, unet_preset
from membench.studies.plots import study_figures



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

    QUICK = {"sizes": (8, 16), "steps": 4, "method": "cd:iterations=2,batch_size=8", "unet": "tiny",
             "n_samples": 32, "batch_size": 8}

    def check(self) -> None:
        if not self.sizes or any(int(s) != s or s < 2 for s in self.sizes):
            raise MembenchError(f"sweep: sizes must be integers >= 2, got {self.sizes}")
        if self.steps < 1:
            raise MembenchError("sweep: steps must be positive")
        unet_preset(self.unet)

    def run(self, out: Path, ctx: StudyContext) -> dict[str, pd.DataFrame]:
        started = time.time()
        note = progress_note(ctx.progress)
        rows, columns, records, skipped, quality_note, reused = [], {}, {}, {}, None, []
        for size in sorted(int(s) for s in self.sizes):
            part = self._load_part(out, size)
            if part is None:
                part = self._run_size(size, ctx, note, out)
                rec = self._part_record(size)
                rec.stats = part
                store_record(out, rec)
            else:
                note(f"size {size}: done in an earlier run ({record_path(out, self._part_record(size))}), reused")
                reused.append(size)
            rows += part["rows"]
            columns.update(dict.fromkeys(part["columns"]))  # JSON objects lose the column order
            records[size] = part["teacher_training"]
            skipped, quality_note = part["detectors_skipped"], part["quality_note"]
        table = pd.DataFrame(rows, columns=list(columns))
        write_table(out, "sweep", table)
        study_figures(out, table, x="n_train", xlabel="training digits", title=f"same budget: {self.steps} steps")
        write_record(out, self, ctx, started, {"teacher_training": records, "detectors_skipped": skipped,
                                               "quality_note": quality_note, "sizes_reused": reused})
        return {"sweep": table}

    def _run_size(self, size: int, ctx: StudyContext, note: Callable[[str], None], out: Path) -> dict[str, Any]:
        from membench.data import load_dataset

        data = load_dataset(f"digits:n={size},seed={self.data_seed}")
        ev = Evaluator(data, self.detectors, ctx.device, self.quality, store=out, study=self.registry_name)
        note(f"size {size}: training a teacher for {self.steps} steps")
        snaps, record = train_with_snapshots(data.spec, self.steps, set(), ctx.device, ctx.progress,
                                             batch_size=self.batch_size, lr=self.lr, ema=self.ema, seed=self.seed,
                                             unet=unet_preset(self.unet))
        rows = teacher_and_student(ev, snaps[self.steps], data, {"n_train": size, "dataset": data.spec},
                                   self.method, tuple(self.student_steps), self.n_samples, self.seed, ctx.device,
                                   ctx.progress)
        # pandas' JSON round trip writes NaN as null (the json module would write bare NaN)
        frame = pd.DataFrame(rows)
        rows = json.loads(frame.to_json(orient="records"))
        return {"device": ctx.device, "columns": list(frame.columns), "rows": rows,
                "teacher_training": {"wall_time_s": record["wall_time_s"], "final_loss": record["final_loss"]},
                "detectors_skipped": ev.skipped, "quality_note": ev.quality_note}

    def _part_options(self, size: int) -> dict[str, Any]:
        """Everything one size's result depends on (the other sizes do not matter)."""
        opts = {k: v for k, v in self.config().items() if k != "sizes"}
        return json.loads(json.dumps({**opts, "n_train": size}, default=list))

    def _part_record(self, size: int) -> Record:
        """The study record of one size (what it depends on; its rows are filled in when run)."""
        from membench import __version__

        return Record(kind="study", subject={"name": f"sweep/n_train={size}", "study": self.registry_name},
                      samples={"n": self.n_samples, "seed": self.seed},
                      data={"spec": f"digits:n={size},seed={self.data_seed}"},
                      test={"name": self.registry_name, "config": self._part_options(size)},
                      created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), membench=__version__)

    def _load_part(self, out: Path, size: int) -> dict[str, Any] | None:
        """The earlier rows for ``size`` if they were made with the same options, else None (compute)."""
        path = record_path(out, self._part_record(size))
        return read_record(path).stats if path.is_file() else None  # a corrupt record: one-line error