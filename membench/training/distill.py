"""`membench distill`: teacher + method -> student checkpoint, model card and registry entry.

Both go to the workspace (``<workspace>/models/<name>`` and
``<workspace>/registry/models/<name>.toml``, the checkpoint named relative to the workspace so
that it can be moved), never beside a built-in teacher inside the package; ``--out`` and
``--registry`` choose other folders (the committed students are rebuilt with
``--out membench/assets/models/<name> --registry membench/assets/registry``).

Every input is checked before any work (the name, the method and its options, the device, the
output folders). The model card's evaluation runs on the student in memory, before anything is
written; then the checkpoint folder is staged whole (weights, ``membench.json``, card) in a
temporary sibling and renamed into place, and the registry entry is written last (atomically).
An error, Ctrl-C or kill before the end leaves no entry; the only window left, a kill between
the checkpoint's rename and the entry's write, leaves a student without its entry, which the
next run of the same command detects (:func:`half_written`), says so in one line, and recomputes.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from membench.core.errors import MembenchError, UsageError


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def render_entry(fields: dict[str, Any], distill_cfg: dict[str, Any], comment: str) -> str:
    lines = [f"# {comment}"] + [f"{k} = {_toml_value(v)}" for k, v in fields.items() if v is not None]
    lines += ["", "[distill]"] + [f"{k} = {_toml_value(v)}" for k, v in distill_cfg.items()
                                   if isinstance(v, (bool, int, float, str))]
    return "\n".join(lines) + "\n"


def _check_not_shadowed(name: str, entry_path: Path) -> None:
    """Refuse (even with --force) an entry that a registry folder read earlier would hide:
    the student would be written but ``--model NAME`` would find the other one."""
    from membench.core.registry import entry_files, registry_dirs

    existing = entry_files("models").get(name)
    if existing is None or existing.resolve() == entry_path.resolve():
        return
    order = [d.resolve() for d in registry_dirs()]
    rank = {d: i for i, d in reversed(list(enumerate(order)))}  # first occurrence wins
    new = rank.get(entry_path.parent.parent.resolve(), len(order))
    if rank.get(existing.parent.parent.resolve(), len(order)) <= new:
        raise MembenchError(f"model {name!r} is already registered by {existing}, which would hide the new entry "
                            f"{entry_path}; choose another --name")


def distill_from_registry(teacher: str, method: str, out: str | Path | None = None, name: str | None = None,
                          force: bool = False, device: str = "auto", progress: bool = True,
                          eval_samples: int = 1000, registry: str | Path | None = None) -> tuple[Path, Path]:
    """Distil ``teacher`` with ``method`` (``cd``, ``cd:iterations=500``, a plugin name ...); returns
    the checkpoint folder and the registry entry (defaults: in the workspace)."""
    import torch

    from membench.core.io import atomic_write_text, file_sha256
    from membench.models.checkpoints import WEIGHTS, load_denoiser, save_denoiser
    from membench.data import load_dataset
    from membench.training.modelcard import render
    from membench.models.specs import resolve_model
    from membench.core.registry import names
    from membench.models.samples import resolve_device
    from membench.core.specs import parse_spec
    from membench.core.workspace import Workspace
    from membench.training.train import evaluate_l2ratio
    from membench.training.distillers.base import DistillContext, StudentResult, make_distiller

    from membench.core.faults import fault_point
    from membench.core.options import check_name
    from membench.core.paths import check_output_dir

    spec = resolve_model(teacher)
    if spec.role != "teacher":
        raise MembenchError(f"model {teacher!r} is a {spec.role}, not a teacher; distil from a teacher")
    distiller = make_distiller(method)
    method_name = parse_spec(method)[0]
    name = check_name(name or (f"{method_name}-student" if spec.name == "teacher" else f"{spec.name}-{method_name}"),
                      "--name")
    if isinstance(eval_samples, bool) or not isinstance(eval_samples, int) or eval_samples < 0:
        raise UsageError(f"--eval-samples must be an integer >= 0 (0: skip), got {eval_samples!r}")
    ws = Workspace.resolve()
    root = Path(registry).parent if registry else ws.root  # checkpoint paths in the entry are relative to it
    entry_path = (Path(registry) if registry else ws.registry) / "models" / f"{name}.toml"
    target = Path(out) if out else ws.models / name
    check_output_dir(target.parent, "checkpoint folder", "--out")
    check_output_dir(entry_path.parent, "registry folder", "--registry")
    replace = force
    if not force:
        if half_written(target, name, entry_path):
            import warnings

            warnings.warn(f"{target} is a student without its registry entry {entry_path} (an interrupted "
                          "distill); recomputing it", stacklevel=2)
            replace = True
        elif target.exists():
            raise MembenchError(f"{target} already exists (use --force to replace it)")
        if name in names("models"):
            raise MembenchError(f"a model named {name!r} is already registered (use --name or --force)")
    _check_not_shadowed(name, entry_path)
    device = resolve_device(device)
    model, meta = load_denoiser(spec, device)  # any parameterization giving D(x, sigma)
    if meta.get("parameterization") == "consistency":
        raise MembenchError(f"{spec.checkpoint} is a consistency model, not a teacher with a denoiser D(x, sigma)")
    if getattr(model, "num_classes", None):
        raise MembenchError(f"teacher {teacher!r} is class-conditional ({model.num_classes} classes): distilling "
                            "class-conditional teachers is not supported yet")
    data = load_dataset(spec.dataset)
    if list(data.shape) != list(meta.get("image_shape", data.shape)):
        raise MembenchError(f"teacher {teacher!r} makes {meta.get('image_shape')} images but {spec.dataset} has {list(data.shape)}")
    if eval_samples:
        from membench.core.options import check_count

        c, h, w = data.shape
        check_count(eval_samples, "--eval-samples", item_bytes=4 * c * h * w)
    ctx = DistillContext(device=device, progress=progress, teacher_name=spec.name, teacher_meta=meta)
    result = distiller.distill(model, data, ctx)
    if not isinstance(result, StudentResult):
        raise MembenchError(f"distiller {method_name!r} returned {type(result).__name__}, expected StudentResult")
    student = result.student.eval()
    for p in student.parameters():
        if not torch.isfinite(p).all():
            raise MembenchError(f"distiller {method_name!r} produced NaN or infinite weights; nothing was written")
    record = {**result.record, "dataset": spec.dataset, "dataset_fingerprint": data.fingerprint(),
              "n_train": len(data), "device": device, "torch": torch.__version__, "threads": torch.get_num_threads()}
    student_meta = {"role": "student", "name": name, "teacher": spec.name, "teacher_checkpoint_hash": None,
                    "teacher_parameterization": meta.get("parameterization"),
                    "method": method_name, "dataset": spec.dataset, "image_shape": list(data.shape),
                    "sampler": result.sampler, "training": record,
                    "initialized_from_teacher": bool(getattr(distiller, "uses_teacher_weights", True))}
    from membench.models.checkpoints import checkpoint_hash

    student_meta["teacher_checkpoint_hash"] = checkpoint_hash(spec)
    fault_point("distill-trained")
    # The card's evaluation runs on the student in memory: an interruption here leaves nothing behind.
    evaluation = (evaluate_l2ratio(student, spec.dataset, result.sampler, n=eval_samples, device=device)
                  if eval_samples else None)
    command = (f"membench distill --teacher {spec.name} --method {method} --name {name}"
               + (f" --out {out}" if out else "") + (f" --registry {registry}" if registry else "") + " --force")
    kind = f"Student of `{spec.name}` by `{method_name}` ({getattr(distiller, 'description', '')}); sampled with `{result.sampler}`"

    def card(staged: Path) -> str:
        return render(name, kind, command, record, file_sha256(staged / WEIGHTS), evaluation)

    save_denoiser(student, target, student_meta, card=card, force=replace,
                  variants=getattr(result, "variants", None) or None)  # weights, metadata and card: one rename
    fault_point("distill-checkpoint-placed")
    try:
        ckpt = os.path.relpath(target.resolve(), root.resolve())
        ckpt = ckpt if not ckpt.startswith("..") else str(target.resolve())
    except ValueError:
        ckpt = str(target.resolve())
    fields = {"description": f"{method_name} student of {spec.name}", "role": "student", "checkpoint": ckpt,
              "sampler": result.sampler, "dataset": spec.dataset, "teacher": spec.name, "method": method_name}
    atomic_write_text(entry_path, render_entry(fields, record.get("config", {}), f"written by: {command}"))
    return target, entry_path


def half_written(target: Path, name: str, entry_path: Path) -> bool:
    """Whether ``target`` is a student checkpoint named ``name`` whose registry entry was never
    written (a distill killed between the two): the one partial state the write order allows."""
    import json

    from membench.models.checkpoints import META_FILE

    if entry_path.exists() or not (target / META_FILE).is_file():
        return False
    try:
        meta = json.loads((target / META_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(meta, dict) and meta.get("role") == "student" and meta.get("name") == name
