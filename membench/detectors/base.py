"""The detector interface.

A detector is a dataclass: its fields are its configuration (and part of every cache and
result key). ``detect`` is a pure function of the generated samples and the training set
that returns one score, one flag and one matched training index per sample.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from membench.data import Dataset
from membench.core.errors import MembenchError, UnavailableError
from membench.core.specs import parse_spec


@dataclass
class DetectorContext:
    """What a detector may use beyond the samples and the training set."""

    device: str = "cpu"
    cache_dir: Path | None = None
    progress: bool = False
    model: Any = None  # the ModelSpec whose samples are scored (None for `membench detect`)
    labels: Any = None  # (N,) class labels of the samples (class-conditional models), else None

    def load_denoiser(self, which: str = "self") -> tuple[Any, dict[str, Any]]:
        """The scored model's denoiser (``which="self"``) or its teacher's (``"teacher"``).

        Model-based detectors (sharpness) call this; it raises UnavailableError when
        there is no model (samples made elsewhere) or a student has no teacher.
        """
        from membench.models.checkpoints import load_denoiser
        from membench.core.errors import UnavailableError
        from membench.models.specs import resolve_model

        if self.model is None:
            raise UnavailableError("needs a registered model (not available for sample files)")
        spec = self.model
        if which == "teacher":
            if not spec.teacher:
                raise UnavailableError(f"model {spec.name!r} has no teacher")
            spec = resolve_model(spec.teacher)
        return load_denoiser(spec, self.device)


@dataclass
class DetectorOutput:
    scores: np.ndarray  # (N,) float: the detector's statistic
    flags: np.ndarray  # (N,) bool: memorized (copy) or not
    nearest: np.ndarray  # (N,) int: index of the matched training image
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # other per-sample arrays
    info: dict[str, Any] = field(default_factory=dict)  # how it was computed (preprocessing, weights)
    # Model- or set-level statistics beside the per-sample fraction (membership AUC, C_T, MMD),
    # name -> membench.store.records.Metric; stored in the record's metrics.
    metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.scores)
        for name, arr in [("flags", self.flags), ("nearest", self.nearest), *self.extras.items()]:
            if len(arr) != n:
                raise ValueError(f"detector output {name!r} has {len(arr)} rows, scores has {n}")


class Detector:
    """Base class; subclasses are ``@dataclass``es declared in ``membench.detectors.DETECTORS``
    (or plugins), which sets ``registry_name`` when it loads them."""

    registry_name: ClassVar[str] = "?"
    score_name: ClassVar[str] = "score"
    # The score direction: True when a larger score means "more memorized" (similarities),
    # False for distances/ratios. No default: every detector must say it (checked on load).
    higher_is_memorized: ClassVar[bool]
    # Run on the held-out images too (their false-flag rate; ``fpr=`` thresholds): per-image copy
    # scores only (membench.detectors.calibration). Model- and set-level tests set False.
    calibrate_on_heldout: ClassVar[bool] = True
    # "image": a per-image copy score of the given images (validated by `membench validate`);
    # "set": a test of the sample set against training vs held-out images; "model": a test of the
    # model itself (membership inference), which does not use the samples.
    level: ClassVar[str] = "image"
    # True for detectors that compare samples with the training images pixel by pixel (they call
    # check_compatible): measure() then refuses a sample set of another shape before it claims any record.
    needs_training_shape: ClassVar[bool] = False
    fpr_target: float | None = None  # set by make_detector from ``fpr=`` (not a dataclass field)

    def config(self) -> dict[str, Any]:
        cfg = asdict(self) if hasattr(self, "__dataclass_fields__") else {}
        if self.fpr_target is not None:
            cfg["fpr"] = self.fpr_target  # the threshold comes from the held-out images
        return cfg

    def check(self) -> None:
        """Validate the configuration; raise MembenchError with one line if it is bad."""

    def input_problem(self, shape: tuple[int, ...], train: Dataset) -> str | None:
        """Why samples of (C, H, W) ``shape`` cannot be measured against ``train`` (one line), or None.

        measure() asks before it claims any record, so bad input writes nothing; ``detect`` must
        still refuse what this refuses (pixel detectors do, through check_compatible)."""
        return shape_problem(shape, train) if self.needs_training_shape else None

    def detect(self, samples: np.ndarray, train: Dataset, ctx: DetectorContext) -> DetectorOutput:
        raise NotImplementedError


def shape_problem(shape: tuple[int, ...], train: Dataset, what: str = "samples") -> str | None:
    """Why images of (C, H, W) ``shape`` cannot be compared pixel by pixel with ``train`` (one line), or None."""
    from membench.data.validate import shape_mismatch

    problem = shape_mismatch(shape, train, what)
    return None if problem is None else (f"{problem}; this detector needs one shape for both (pixel detectors "
                                         "compare pixels; embedding detectors such as sscd or clip resize and convert)")


def check_compatible(samples: np.ndarray, train: Dataset, what: str = "samples") -> None:
    from membench.data.validate import check_images

    if samples.ndim != 4:
        raise MembenchError(f"{what}: expected (N, C, H, W) images, got shape {samples.shape}")
    problem = shape_problem(tuple(samples.shape[1:]), train, what)
    if problem is not None:
        # "cannot run on this pair": a named detector fails in one line, `--detector all` shows the row unavailable
        raise UnavailableError(problem)
    check_images(samples, what, value_range=False)
    if len(train) == 0:
        raise MembenchError(f"training set {train.spec} is empty")


def make_detector(spec: str) -> Detector:
    """Build a detector from ``name`` or ``name:k=v,...``; declarative variants live in registry/detectors."""
    from membench.detectors import DETECTORS

    name, overrides = parse_spec(spec)
    params: dict[str, Any] = {}
    cls = DETECTORS.find(name)  # code first: a TOML variant never shadows a detector
    if cls is None and name in DETECTORS.entry_files():
        entry = DETECTORS.read_entry(name)
        base, params = entry.get("base"), entry.get("params", {})
        if not base or not isinstance(base, str):
            raise MembenchError(f"{entry['_entry_path']}: a detector entry needs 'base = \"<detector>\"'")
        if not isinstance(params, dict):
            raise MembenchError(f"{entry['_entry_path']}: 'params' must be a table, got {type(params).__name__}")
        params = dict(params)
        cls = DETECTORS.get(base)
    elif cls is None:
        raise DETECTORS.unknown(name)
    params.update(overrides)
    from membench.detectors.calibration import take_fpr

    fpr = take_fpr(cls, params)
    det = DETECTORS.instantiate(name, cls, params)
    if fpr is not None:
        det.fpr_target = fpr
    det.check()
    det.display_name = spec if overrides else name
    return det
