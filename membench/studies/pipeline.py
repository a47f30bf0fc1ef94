"""Steps the digits studies share: train a teacher (with snapshots), distil it, sample paired
image sets and turn them into rows (one per image set and detector)."""
from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np

from membench.data import Dataset
from membench.core.errors import MembenchError
from membench.core.specs import format_spec, parse_spec
from membench.studies.measure import Evaluator, Reference, memorization_columns, paired_columns, subject_of

# UNet presets for the studies' teachers ("tiny" keeps tests and smoke runs in seconds).
UNET_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tiny": dict(block_out_channels=[8, 16], down_block_types=["DownBlock2D", "DownBlock2D"],
                 up_block_types=["UpBlock2D", "UpBlock2D"], norm_num_groups=4),
}


def unet_preset(name: str) -> dict[str, Any]:
    if name not in UNET_PRESETS:
        raise MembenchError(f"unknown unet preset {name!r}; known: {', '.join(UNET_PRESETS)}")
    return dict(UNET_PRESETS[name])


def sample(model: Any, sampler_spec: str, n: int, seed: int, shape: tuple[int, int, int], device: str) -> np.ndarray:
    """``n`` paired samples (noise i of ``seed`` -> sample i) of ``model`` with ``sampler_spec``."""
    from membench.models.specs import make_sampler
    from membench.models.samples import generate

    images, _ = generate(model, make_sampler(sampler_spec), n, seed, shape, device, desc=sampler_spec)
    return images


def image_rows(ev: Evaluator, labels: dict[str, Any], images: np.ndarray, reference: Reference | None = None,
               seed: int = 0) -> tuple[list[dict], Reference]:
    """One row per detector for ``images`` (measured through the one path); with ``reference``
    (the teacher's measured set, same noises), paired columns against it. Returns the rows and
    this set as a reference for later ones."""
    detections, quality_rec = ev.measure(images, labels, seed, reference)
    quality = ev.quality_columns(images, quality_rec)
    rows = []
    for det, rec in detections.items():
        row = {**labels, **memorization_columns(rec), **quality}
        if reference is not None and det in reference.records:
            row.update(paired_columns(rec, reference.records[det], images, reference.images))
        rows.append(row)
    name = subject_of(ev.study, labels, reference)["name"]
    return rows, Reference(name, detections, images)


def train_with_snapshots(dataset: str, steps: int, snapshot_at: set[int], device: str, progress: bool,
                         **train_opts: Any) -> tuple[dict[int, Any], dict[str, Any]]:
    """Train an EDM teacher; returns {step: EMA denoiser copy} at ``snapshot_at`` (and the end)."""
    from membench.training.teacher import TeacherTrainConfig, train_teacher

    every = _gcd_all(sorted(snapshot_at)) if snapshot_at else 0
    cfg = TeacherTrainConfig(dataset=dataset, steps=steps, snapshot_every=every, **train_opts)
    snaps: dict[int, Any] = {}

    def keep(step: int, ema: Any) -> None:
        if step in snapshot_at:
            snaps[step] = copy.deepcopy(ema).eval()

    model, record = train_teacher(cfg, device=device, progress=progress, on_snapshot=keep)
    snaps[steps] = model
    return snaps, record


def _gcd_all(values: list[int]) -> int:
    from math import gcd

    g = 0
    for v in values:
        g = gcd(g, int(v))
    return g


def distill(teacher: Any, data: Dataset, method: str, device: str, progress: bool, name: str = "teacher",
            snapshot_at: tuple[int, ...] = (), iterations: int | None = None
            ) -> tuple[Any, str, dict[int, Any], dict[str, Any]]:
    """Distil ``teacher`` with ``method``; returns (student, sampler spec, {iteration: student copy}, record)."""
    from membench.training.distillers.base import DistillContext, make_distiller

    name_, opts = parse_spec(method)
    if iterations is not None:
        opts["iterations"] = iterations
    distiller = make_distiller(format_spec(name_, opts))
    snaps: dict[int, Any] = {}

    def keep(k: int, model: Any) -> None:
        snaps[k] = copy.deepcopy(model).eval()

    ctx = DistillContext(device=device, progress=progress, teacher_name=name, snapshot_at=tuple(snapshot_at),
                         on_snapshot=keep)
    result = distiller.distill(teacher, data, ctx)
    missing = set(snapshot_at) - set(snaps)
    if missing:
        raise MembenchError(f"distiller {name_!r} did not report snapshots {sorted(missing)}; "
                            "distillation-length studies need a distiller that calls ctx.on_snapshot (cd does)")
    return result.student.eval(), result.sampler, snaps, result.record


def with_steps(sampler_spec: str, steps: int) -> str:
    name, opts = parse_spec(sampler_spec)
    opts["steps"] = int(steps)
    return format_spec(name, opts)


def nfe_control(steps: int) -> str:
    """The teacher at a student's number of network evaluations: Euler on the ramp grid (teacher-euler1/2)."""
    return f"euler:steps={int(steps)},to_zero=false"


def progress_note(progress: bool) -> Callable[[str], None]:
    import sys

    def note(msg: str) -> None:
        if progress:
            print(msg, file=sys.stderr, flush=True)

    return note


def teacher_and_student(ev: Evaluator, teacher: Any, data: Dataset, labels: dict[str, Any], method: str,
                        student_steps: tuple, n: int, seed: int, device: str, progress: bool,
                        teacher_sampler: str = "heun:steps=18", distil: bool = True) -> list[dict[str, Any]]:
    """Rows for one teacher (Heun), its NFE-matched controls and (``distil``) its distilled student."""
    shape = data.shape
    t_images = sample(teacher, teacher_sampler, n, seed, shape, device)
    rows, ref = image_rows(ev, {**labels, "model": "teacher", "steps": np.nan, "sampler": teacher_sampler}, t_images)
    for s in student_steps:
        sampler = nfe_control(s)
        r, _ = image_rows(ev, {**labels, "model": "control", "steps": int(s), "sampler": sampler},
                          sample(teacher, sampler, n, seed, shape, device), ref, seed)
        rows += r
    if distil:
        student, student_sampler, _, record = distill(teacher, data, method, device, progress)
        for s in student_steps:
            sampler = with_steps(student_sampler, s)
            r, _ = image_rows(ev, {**labels, "model": "student", "steps": int(s), "sampler": sampler,
                                   "distill_seconds": record.get("wall_time_s")},
                              sample(student, sampler, n, seed, shape, device), ref, seed)
            rows += r
    return rows
