"""Registered models: a checkpoint plus the sampler that turns it into images.

One TOML file per model under ``registry/models/`` (the file stem is the name)::

    role = "teacher"                 # "student" or "control" (teacher at a student's NFE)
    checkpoint = "models/teacher"    # relative to the project root holding registry/, absolute, or hf:org/repo
    sampler = "heun:steps=18"
    dataset = "digits:n=64"          # what it was trained on: the reference for detectors
    teacher = "teacher"              # students: the model they were distilled from
    method = "cd"                    # students: the distiller
    parameterization = "epsilon"     # imported diffusers folders whose configs do not say (membench import)
    revision = "main"                # hf: checkpoints: the hub revision
    labels = "uniform"               # class-conditional models: "uniform" (seeded), a class number, or a .npy file
    [train]                          # teachers: the `membench train` configuration

``NAME:k=v`` overrides the sampler's options, e.g. ``teacher:steps=40``; ``labels=`` in it
overrides the entry's labels (``cd64:labels=3``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from membench.core.errors import InvalidInputError
from membench.core.specs import format_spec, parse_spec

ROLES = ("teacher", "student", "control")  # control: a teacher sampled at a student's NFE
# The type of every key of a model entry (checked before any use).
ENTRY_TYPES: dict[str, type] = {"role": str, "checkpoint": str, "sampler": str, "dataset": str, "teacher": str,
                                "method": str, "description": str, "train": dict, "distill": dict}


@dataclass
class ModelSpec:
    name: str
    role: str
    checkpoint: str
    sampler: str
    dataset: str
    teacher: str | None = None
    method: str | None = None
    description: str = ""
    train: dict[str, Any] = field(default_factory=dict)
    distill: dict[str, Any] = field(default_factory=dict)
    entry_path: str | None = None
    parameterization: str | None = None
    revision: str | None = None
    labels: Any = None  # class-conditional models: None/"uniform", a class number, or a .npy path

    @property
    def checkpoint_path(self) -> str:
        return self.checkpoint


def _project_root(entry_path: Path) -> Path:
    return entry_path.parent.parent.parent  # <root>/registry/models/<name>.toml


def resolve_checkpoint(value: str, entry_path: Path) -> str:
    if value.startswith("hf:"):
        return value
    p = Path(value)
    return str(p if p.is_absolute() else (_project_root(entry_path) / p))


def resolve_model(spec: str) -> ModelSpec:
    from membench.models import MODELS

    name, overrides = parse_spec(spec)
    entry = MODELS.read_entry(name)
    path = Path(entry["_entry_path"])
    for key in ("role", "checkpoint", "sampler", "dataset"):
        if key not in entry:
            raise InvalidInputError(f"{path}: missing required key {key!r}")
    for key, want in ENTRY_TYPES.items():  # a number where a path or name belongs is one line, not a traceback
        if key in entry and not isinstance(entry[key], want):
            noun = "a table" if want is dict else "a string"
            raise InvalidInputError(f"{path}: {key!r} must be {noun}, got {type(entry[key]).__name__} "
                                    f"{entry[key]!r}")
    if entry["role"] not in ROLES:
        raise InvalidInputError(f"{path}: role must be one of {ROLES}, got {entry['role']!r}")
    sampler_name, sampler_opts = parse_spec(entry["sampler"])
    name_overrides = dict(overrides)
    labels = overrides.pop("labels", entry.get("labels"))
    sampler_opts.update(overrides)
    known = {f.name for f in fields(ModelSpec)}
    extra = set(entry) - known - {"_entry_path"}
    if extra:
        raise InvalidInputError(f"{path}: unknown key(s) {sorted(extra)}")
    return ModelSpec(
        name=format_spec(name, name_overrides),
        role=entry["role"],
        checkpoint=resolve_checkpoint(entry["checkpoint"], path),
        sampler=format_spec(sampler_name, sampler_opts),
        dataset=entry["dataset"],
        teacher=entry.get("teacher"),
        method=entry.get("method"),
        description=entry.get("description", ""),
        train=entry.get("train", {}),
        distill=entry.get("distill", {}),
        entry_path=str(path),
        parameterization=entry.get("parameterization"),
        revision=entry.get("revision"),
        labels=labels,
    )


def make_sampler(spec: str) -> Any:
    from membench.models.samplers import SAMPLERS

    return SAMPLERS.create(spec)


def model_names() -> list[str]:
    from membench.models import MODELS

    return MODELS.names()


def summary(name: str) -> str:
    """One line for ``membench list models``: role, sampler, training data, teacher and method."""
    s = resolve_model(name)
    extra = f"  teacher={s.teacher} method={s.method}" if s.teacher else ""
    return f"{s.role:8s} sampler={s.sampler:30s} data={s.dataset}{extra}"
