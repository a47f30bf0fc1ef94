"""`membench import`: register a diffusers checkpoint (a folder or a hub id) as a model.

``import_model`` reads the folder's own configs (``membench.models.formats``), checks
everything against the training set and the sampler before writing, then writes one registry
entry, ``<workspace>/registry/models/<name>.toml``, that points at the folder (or ``hf:<id>``
and its revision). Nothing is copied: the checkpoint stays where it is.

Checked before anything is written: the folder's kind (pipeline, bare UNet + scheduler, bare
UNet with a declared parameterization), the parameterization, the sampler's fit (``ddim``
needs a DDPM-family model, ``consistency`` a consistency model and the ODE samplers a
denoiser), the training set's image shape against the model's, and for class-conditional models
the training set's labels and their range; the role, the teacher and the name.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from membench.core.errors import MembenchError

HUB_ID = re.compile(r"^(hf:)?[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _locate(source: str, revision: str | None) -> tuple[Path, str]:
    """(local folder, checkpoint string for the entry) of a path or a hub id."""
    from membench.models.checkpoints import _resolve, hub_offline

    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise MembenchError(f"{source}: not a folder (a diffusers checkpoint is a folder)")
        return path.resolve(), str(path.resolve())
    if not HUB_ID.match(source):
        raise MembenchError(f"{source}: no such folder, and not a hub id (org/name)")
    hub = source if source.startswith("hf:") else f"hf:{source}"
    if hub_offline():
        raise MembenchError(f"{source}: no such folder; as a hub id it needs the network, and HF_HUB_OFFLINE=1")
    return _resolve(hub, revision), hub


def check_sampler(sampler: str, parameterization: str) -> Any:
    """The sampler object, refused in one line when it does not fit the parameterization."""
    from membench.models.denoisers import DISCRETE
    from membench.models.specs import make_sampler

    obj = make_sampler(sampler)
    kind = type(obj).__name__
    if kind == "DDIMSampler" and parameterization not in DISCRETE:
        raise MembenchError(f"sampler {sampler!r}: ddim runs on DDPM-family models ({', '.join(DISCRETE)}), "
                            f"not {parameterization}; use heun, euler or consistency")
    if kind == "ConsistencySampler" and parameterization != "consistency":
        raise MembenchError(f"sampler {sampler!r}: consistency sampling needs a consistency model, "
                            f"not {parameterization}")
    if kind != "ConsistencySampler" and parameterization == "consistency":
        raise MembenchError(f"sampler {sampler!r}: a consistency model is sampled with 'consistency' "
                            "(its f(x, sigma) is not the denoiser of an ODE)")
    return obj


def import_model(source: str | Path, name: str, train: str, role: str | None = None, teacher: str | None = None,
                 method: str | None = None, sampler: str | None = None, parameterization: str | None = None,
                 revision: str | None = None, force: bool = False, registry: str | Path | None = None) -> dict[str, Any]:
    """Register ``source`` as model ``name`` trained on ``train``; returns what was found and written."""
    from membench.core.io import atomic_write_text
    from membench.core.registry import names
    from membench.core.workspace import Workspace
    from membench.data import load_dataset
    from membench.models.formats import inspect_checkpoint
    from membench.models.specs import ROLES
    from membench.training.distill import _check_not_shadowed, render_entry

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][\w.-]*", name):
        raise MembenchError(f"--name {name!r}: use letters, digits, '.', '_' and '-'")
    role = role or ("student" if teacher else "teacher")
    if role not in ROLES:
        raise MembenchError(f"--role must be one of {', '.join(ROLES)}, got {role!r}")
    if role in ("student", "control") and not teacher:
        raise MembenchError(f"a {role} needs --teacher (the registered model it is compared with)")
    if role == "teacher" and (teacher or method):
        raise MembenchError("a teacher has no --teacher or --method; pass --role student")
    if teacher and teacher not in names("models"):
        from membench.models import MODELS

        raise MODELS.unknown(teacher)
    folder, checkpoint = _locate(str(source), revision)
    found = inspect_checkpoint(folder, parameterization)
    data = load_dataset(train)
    if tuple(data.shape) != tuple(found.image_shape):
        raise MembenchError(f"{source} makes {list(found.image_shape)} images (channels, height, width) but the "
                            f"training set {train} has {list(data.shape)}")
    if found.num_classes:
        if data.labels is None:
            raise MembenchError(f"{source} is class-conditional ({found.num_classes} classes) but the training set "
                                f"{train} has no labels")
        lo, hi = int(data.labels.min()), int(data.labels.max())
        if lo < 0 or hi >= found.num_classes:
            raise MembenchError(f"training labels of {train} run {lo}..{hi}, outside the model's "
                                f"{found.num_classes} classes")
    sampler = sampler or found.default_sampler
    check_sampler(sampler, found.parameterization)
    ws = Workspace.resolve()
    entry_path = (Path(registry) if registry else ws.registry) / "models" / f"{name}.toml"
    if not force and name in names("models"):
        raise MembenchError(f"a model named {name!r} is already registered (choose another --name, or --force)")
    _check_not_shadowed(name, entry_path)
    dataset = str(Path(train).resolve()) if Path(train).exists() else train
    fields = {"description": f"imported {found.pipeline_class or found.format} ({found.parameterization})",
              "role": role, "checkpoint": checkpoint, "sampler": sampler, "dataset": dataset, "teacher": teacher,
              "method": method, "parameterization": found.parameterization if found.format == "diffusers" else None,
              "revision": revision}
    command = f"membench import {source} --name {name} --train {train}"
    text = render_entry(fields, {}, f"written by: {command}").replace("\n[distill]\n", "\n")
    atomic_write_text(entry_path, text)
    return {"name": name, "entry": str(entry_path), "checkpoint": checkpoint, "role": role, **found.summary(),
            "sampler": sampler}
