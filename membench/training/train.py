"""`membench train --model NAME`: train the teacher a registry entry describes, write it with its card."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from membench.core.errors import MembenchError


def evaluate_l2ratio(model: Any, dataset: str, sampler_spec: str, n: int = 1000, seed: int = 0,
                     device: str = "cpu") -> dict[str, Any]:
    """Memorized fraction of a freshly trained model, for its model card (the one measurement path)."""
    from membench.core.faults import fault_point
    from membench.data import load_dataset
    from membench.detectors.base import DetectorContext, make_detector
    from membench.measure import ImageSet, measure
    from membench.models.samples import generate
    from membench.models.specs import make_sampler

    ds = load_dataset(dataset)
    images, index = generate(model, make_sampler(sampler_spec), n, seed, ds.shape, device)
    fault_point("distill-evaluating")  # the fault-loop tests stop here: samples made, not yet scored
    iset = ImageSet.of_images(images, {"name": "model-card", "role": "teacher", "sampler": sampler_spec}, ds,
                              seed=seed, noise_index=index)
    rec = measure([iset], [make_detector("l2ratio")], DetectorContext(device=device)).records[0]
    mem = rec.metrics["memorized"]
    return {"fraction": mem.value, "ci_low": mem.interval[0], "ci_high": mem.interval[1],
            "n_flagged": rec.stats["n_flagged"], "n": n, "seed": seed, "sampler": sampler_spec}


def default_target(spec: Any) -> Path:
    """Where ``membench train`` writes without ``--out``: the entry's own checkpoint path, unless
    that is package data (a built-in), which is never replaced implicitly: then the workspace."""
    from membench.core.workspace import Workspace, inside_package
    from membench.core.specs import parse_spec

    if spec.checkpoint.startswith("hf:") or inside_package(spec.checkpoint):
        return Workspace.resolve().models / parse_spec(spec.name)[0]
    return Path(spec.checkpoint)


def train_from_registry(name: str, out: str | Path | None = None, force: bool = False, device: str = "auto",
                        steps: int | None = None, progress: bool = True, eval_samples: int = 1000) -> Path:
    """Train the teacher entry ``name`` describes into ``out`` (default: :func:`default_target`),
    then write its model card; returns the checkpoint folder."""
    import torch

    from membench.core.io import file_sha256
    from membench.models.checkpoints import WEIGHTS, save_denoiser
    from membench.training.modelcard import render
    from membench.models.specs import resolve_model
    from membench.models.samples import resolve_device
    from membench.training.teacher import TeacherTrainConfig, train_teacher

    spec = resolve_model(name)
    if spec.role != "teacher" or not spec.train:
        raise MembenchError(f"model {name!r} has no [train] section (only teachers are trained; students are distilled)")
    target = Path(out) if out else default_target(spec)
    if target.exists() and not force:
        raise MembenchError(f"{target} already exists (use --force to replace it)")
    opts = dict(spec.train)
    opts.setdefault("dataset", spec.dataset)
    if steps is not None:
        opts["steps"] = steps
    cfg = TeacherTrainConfig.from_dict(opts)
    device = resolve_device(device)
    model, record = train_teacher(cfg, device=device, progress=progress)
    record["threads"] = torch.get_num_threads()
    meta = {"role": "teacher", "name": spec.name, "dataset": cfg.dataset, "training": record,
            "image_shape": [model.unet.config.in_channels, model.unet.config.sample_size, model.unet.config.sample_size]}
    command = (f"membench train --model {spec.name}" + (f" --out {out}" if out else "") + " --force"
               + (f" --steps {steps}" if steps is not None else ""))
    # Save first (atomically) so that hours of training survive a failing evaluation; then
    # measure memorization and write the card with the hash of the written weights.
    save_denoiser(model, target, meta, card=None, force=force)
    evaluation = evaluate_l2ratio(model, cfg.dataset, spec.sampler, n=eval_samples, device=device) if eval_samples else None
    card = render(spec.name, "EDM teacher (diffusers UNet2DModel, EDM preconditioning, Heun sampler)",
                  command, record, file_sha256(target / WEIGHTS), evaluation)
    from membench.core.io import atomic_write_text

    atomic_write_text(target / "README.md", card)
    return target
