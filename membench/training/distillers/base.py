"""The distiller interface, for built-ins and plugins alike.

A distiller is a dataclass (its fields are its configuration) registered under a name
(declared in ``membench.training.distillers.DISTILLERS`` for built-ins, the entry-point
group ``membench.distillers`` for plugins) with one method::

    def distill(self, teacher: EDMDenoiser, data: Dataset, ctx: DistillContext) -> StudentResult

``teacher`` is the teacher's EDM denoiser (``teacher.unet`` is its diffusers UNet2DModel;
``ctx.teacher_meta`` its provenance). The result holds the student denoiser (an
``EDMDenoiser``; ``EDMConfig(boundary=True)`` for consistency models), the sampler spec it is
sampled with, and a record of what was done. membench writes the checkpoint atomically,
its model card and its registry entry; a distiller writes nothing itself.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ClassVar

import torch

from membench.data import Dataset
from membench.models.edm import EDMConfig, EDMDenoiser
from membench.core.errors import MembenchError


@dataclass
class DistillContext:
    device: str = "cpu"
    progress: bool = False
    teacher_name: str = ""
    teacher_meta: dict[str, Any] = field(default_factory=dict)
    # Distillation-length studies: on_snapshot(iteration, saved-weights model) is called at
    # these iterations (0 = before the first step) by distillers that support it (cd, ct).
    snapshot_at: tuple[int, ...] = ()
    on_snapshot: Callable[[int, EDMDenoiser], None] | None = None
    # Also at those iterations: on_snapshot_variants(iteration, {"raw": ..., "ema-corrected": ...})
    # (the weights beside the saved EMA; see EMAVariants), for convergence studies.
    on_snapshot_variants: Callable[[int, dict[str, EDMDenoiser]], None] | None = None
    # The student's starting weights for distillers that start from the teacher's (cd): None is
    # the teacher itself; a network is needed when the teacher has no weights (a closed-form
    # denoiser, membench.models.optimal) or to start the student independently of the teacher.
    student_init: EDMDenoiser | None = None

    def snapshot(self, k: int, student: EDMDenoiser, ema: EDMDenoiser, tracker: Any) -> None:
        """Hand the weights after ``k`` iterations to the snapshot callbacks, when ``k`` is asked for."""
        if k not in self.snapshot_at:
            return
        if self.on_snapshot is not None:
            self.on_snapshot(k, ema)
        if self.on_snapshot_variants is not None:
            self.on_snapshot_variants(k, tracker.variants(student, ema, k))


@dataclass
class StudentResult:
    student: EDMDenoiser
    sampler: str  # e.g. "consistency:steps=1"
    record: dict[str, Any] = field(default_factory=dict)
    # Weights saved beside the student (the EMA): "raw" (the optimizer's last iterate) and
    # "ema-corrected" (the EMA without its initial weights' mass); written under variants/<name>.
    variants: dict[str, EDMDenoiser] = field(default_factory=dict)


class Distiller:
    registry_name: ClassVar[str] = "?"  # set by the registry on load
    description: ClassVar[str] = ""  # set from the registry declaration on load
    uses_teacher_weights: ClassVar[bool] = True  # False: teacher-free (e.g. consistency training)
    length_option: ClassVar[str] = "iterations"  # the option that sets how long it trains (studies vary it)

    def config(self) -> dict[str, Any]:
        return asdict(self) if hasattr(self, "__dataclass_fields__") else {}

    def check(self) -> None:
        """Validate the configuration; raise MembenchError with one line if it is bad."""

    def distill(self, teacher: EDMDenoiser, data: Dataset, ctx: DistillContext) -> StudentResult:
        raise NotImplementedError


def make_distiller(spec: str) -> Distiller:
    """Build a distiller from ``name`` or ``name:k=v,...`` (validated on load: it has ``distill``)."""
    from membench.training.distillers import DISTILLERS

    return DISTILLERS.create(spec)


# ------------------------------------------------------------------ helpers shared by methods


def student_config(teacher: Any, boundary: bool) -> EDMConfig:
    """The EDM configuration of a student of ``teacher`` (any parameterization of
    ``membench.models.denoisers``): an EDM teacher's own, with the boundary scaling or not; for
    a DDPM-family teacher, EDM's defaults with the sigma range cut to the teacher's schedule
    (sigma_min = max(0.002, sigma_0), sigma_max = min(80, sigma_{T-1}))."""
    if isinstance(teacher, EDMDenoiser):
        return EDMConfig(**{**teacher.config.to_dict(), "boundary": boundary})
    base = EDMConfig()
    return EDMConfig(sigma_min=max(base.sigma_min, float(teacher.sigma_min)),
                     sigma_max=min(base.sigma_max, float(teacher.sigma_max)), boundary=boundary)


def copy_as(model: Any, boundary: bool) -> EDMDenoiser:
    """A trainable EDM copy of ``model`` with the EDM or the consistency (boundary) output scaling.

    Students are always EDM-preconditioned (c_noise = 250 ln sigma), the convention diffusers'
    ``ConsistencyModelPipeline`` loads; a DDPM-family teacher's UNet weights are the starting
    point, under that preconditioning (its time input and scaling differ from the teacher's)."""
    cfg = student_config(model, boundary)
    if isinstance(model, EDMDenoiser):
        out = copy.deepcopy(model)
        out.config = cfg
    else:
        out = EDMDenoiser(copy.deepcopy(model.unet), cfg)
    return out.train().requires_grad_(True)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm, 1.0 - decay)


def training_loop(n_steps: int, step_fn: Callable[[int], float], desc: str, progress: bool) -> dict[str, Any]:
    """Run ``step_fn`` n times with a progress bar; stop with one line if the loss diverges."""
    from membench.core.progress import task

    losses: list[float] = []
    t0 = time.time()
    with task(desc, total=n_steps, enabled=progress) as bar:
        for k in range(n_steps):
            loss = step_fn(k)
            if loss != loss or loss in (float("inf"), float("-inf")):
                raise MembenchError(f"{desc}: loss diverged at step {k}; lower the learning rate")
            losses.append(loss)
            bar.advance()
            if k % 100 == 0:
                bar.update(loss=sum(losses[-100:]) / len(losses[-100:]))
    tail = losses[-200:] or [float("nan")]
    # mean loss per block of 100 iterations: what a plateau rule reads (studies/convergence.py)
    curve = [sum(losses[i:i + 100]) / len(losses[i:i + 100]) for i in range(0, len(losses), 100)]
    return {"wall_time_s": round(time.time() - t0, 1), "final_loss": sum(tail) / len(tail), "iterations": n_steps,
            "loss_curve_per_100": curve}


def batches(data: torch.Tensor, batch_size: int, gen: torch.Generator) -> Callable[[], torch.Tensor]:
    n = len(data)
    b = min(batch_size, n)

    def next_batch() -> torch.Tensor:
        return data[torch.randperm(n, generator=gen, device=data.device)[:b]]

    return next_batch


class EMAVariants:
    """The raw weights and a bias-corrected EMA beside an EMA that starts from ``init``.

    After k updates with decay d the EMA is d^k w_0 + (1 - d) sum_j d^(k-j) w_j: a share d^k
    of it is still the initial weights (22% after 1,500 iterations at d = 0.999). The
    corrected average (EMA_k - d^k w_0) / (1 - d^k) removes that share and renormalizes (Adam's
    bias correction, generalized to a non-zero start), so it averages trained iterates only.
    """

    def __init__(self, init: torch.nn.Module, decay: float) -> None:
        self.init = [p.detach().clone() for p in init.parameters()]
        self.decay = float(decay)

    @torch.no_grad()
    def corrected(self, ema: EDMDenoiser, k: int) -> EDMDenoiser:
        out = copy.deepcopy(ema).eval().requires_grad_(False)
        left = self.decay ** int(k)
        if k <= 0 or left >= 1.0:
            return out  # no update yet: the EMA is the initial weights
        for po, p0 in zip(out.parameters(), self.init):
            po.sub_(left * p0).div_(1.0 - left)
        return out

    def variants(self, student: EDMDenoiser, ema: EDMDenoiser, k: int) -> dict[str, EDMDenoiser]:
        raw = copy.deepcopy(student).eval().requires_grad_(False)
        return {"raw": raw, "ema-corrected": self.corrected(ema, k)}
