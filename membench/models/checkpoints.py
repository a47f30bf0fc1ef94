"""Checkpoints: a diffusers ``save_pretrained`` UNet plus ``membench.json`` (EDM config, provenance).

Layout of a checkpoint folder::

    membench.json                                  # format, EDM config, role, data, training
    unet/config.json                               # diffusers UNet2DModel config
    unet/diffusion_pytorch_model.safetensors       # weights (safetensors only; never pickle)
    README.md                                      # model card

``path`` may also be ``hf:<org>/<repo>`` to load the same layout from the Hugging Face Hub.

Imported diffusers folders (``membench import``; ``membench.models.formats``) are loaded
and hashed here too: ``load_denoiser`` and ``checkpoint_hash`` take a path or a ``ModelSpec``,
whose ``parameterization`` and ``revision`` then apply.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from membench.core.io import atomic_directory, atomic_write_json, file_stamp, hash_file_into, read_tagged_json
from membench.models.edm import EDMConfig, EDMDenoiser
from membench.core.errors import MembenchError

FORMAT = "membench-edm/1"
META_FILE = "membench.json"
WEIGHTS = "unet/diffusion_pytorch_model.safetensors"


HUB_PATTERNS = [META_FILE, "README.md", "model_index.json", "config.json", "diffusion_pytorch_model.safetensors",
                "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "scheduler/scheduler_config.json",
                "scheduler_config.json"]


def hub_offline() -> bool:
    import os

    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _resolve(path: str | Path, revision: str | None = None) -> Path:
    text = str(path)
    if text.startswith("hf:"):
        if hub_offline():
            raise MembenchError(f"{text}: the Hugging Face Hub is off (HF_HUB_OFFLINE=1); download the folder where "
                                "the network allows and import its local path")
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(text[3:], revision=revision, allow_patterns=HUB_PATTERNS))
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise MembenchError(f"cannot fetch {text} from the Hugging Face Hub: {type(exc).__name__}: {first}") from None
    p = Path(path)
    if not p.is_dir():
        raise MembenchError(f"checkpoint folder not found: {p}")
    return p


def read_meta(path: str | Path) -> dict[str, Any]:
    p = _resolve(path)
    meta_file = p / META_FILE
    if not meta_file.is_file():
        raise MembenchError(f"{p}: not a membench checkpoint (no {META_FILE})")
    meta = read_tagged_json(meta_file, FORMAT, "checkpoint metadata")
    shape = meta.get("image_shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                and v > 0 for v in shape)):
        raise MembenchError(f"{meta_file}: 'image_shape' must be [channels, height, width] (positive integers), "
                            f"got {shape!r}")
    return meta


_CHECKPOINT_HASHES: dict[tuple, str] = {}


def _source(path: Any) -> tuple[str, str | None, str | None]:
    """(checkpoint, parameterization, revision) of a path or a ``ModelSpec``."""
    if hasattr(path, "checkpoint"):
        return path.checkpoint, getattr(path, "parameterization", None), getattr(path, "revision", None)
    return str(path), None, None


def checkpoint_hash(path: Any) -> str:
    """SHA-256 over the weights and configs: the identity of a checkpoint's content.

    A membench checkpoint: ``membench.json``, the UNet config and weights. A diffusers folder:
    the files its parameterization was read from (``formats.Found.hashed_files``) and the
    parameterization itself (a declared one changes what the weights mean).
    Memoized on the files' stamps (size, mtime): a checkpoint replaced in place (retrained)
    in a long-lived process gets its new hash, an unchanged one is read once."""
    where, declared, revision = _source(path)
    p = _resolve(where, revision)
    if (p / META_FILE).is_file() or not p.is_dir():
        rels, extra = [META_FILE, "unet/config.json", WEIGHTS], ""
    else:
        from membench.models.formats import inspect_checkpoint

        found = inspect_checkpoint(p, declared)
        rels, extra = found.hashed_files, found.parameterization
    files = [(rel, p / rel) for rel in rels]
    for rel, f in files:
        if not f.is_file():
            raise MembenchError(f"{p}: checkpoint is incomplete (missing {rel})")
    key = (extra, *(file_stamp(f) for _, f in files))
    if key not in _CHECKPOINT_HASHES:
        h = hashlib.sha256()
        if extra:
            h.update(f"parameterization={extra}".encode())
        for rel, f in files:
            h.update(rel.encode())
            hash_file_into(h, f)
        _CHECKPOINT_HASHES[key] = h.hexdigest()
    return _CHECKPOINT_HASHES[key]


def load_denoiser(path: Any, device: str | torch.device = "cpu") -> tuple[Any, dict[str, Any]]:
    """Load a checkpoint safely (safetensors only) and return the denoiser in eval mode.

    ``path``: a folder, ``hf:org/repo``, or a ``ModelSpec``. A membench checkpoint gives an
    ``EDMDenoiser``; a diffusers folder the denoiser of its parameterization
    (``membench.models.formats``). ``meta`` always has ``image_shape`` and ``parameterization``."""
    where, declared, revision = _source(path)
    p = _resolve(where, revision)
    if not (p / META_FILE).is_file():
        return _load_diffusers(p, declared, device)
    from diffusers import UNet2DModel

    meta = read_meta(p)
    if not (p / WEIGHTS).is_file():
        raise MembenchError(f"{p}: checkpoint is incomplete (missing {WEIGHTS})")
    try:
        unet = UNet2DModel.from_pretrained(p, subfolder="unet", use_safetensors=True, local_files_only=True,
                                           low_cpu_mem_usage=False)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise MembenchError(f"{p}: cannot load checkpoint weights: {type(exc).__name__}: {first}") from None
    try:
        cfg = EDMConfig(**meta.get("edm", {}))
    except TypeError as exc:
        raise MembenchError(f"{p / META_FILE}: bad edm config: {exc}") from None
    model = EDMDenoiser(unet, cfg).to(device).eval()
    _check_finite(model, p)
    return model, {**meta, "parameterization": model.parameterization}


def _check_finite(model: torch.nn.Module, p: Path) -> None:
    for param in model.parameters():
        if not torch.isfinite(param).all():
            raise MembenchError(f"{p}: checkpoint weights contain NaN or infinite values")


def _load_diffusers(p: Path, declared: str | None, device: str | torch.device) -> tuple[Any, dict[str, Any]]:
    """A diffusers folder as the denoiser of its parameterization."""
    from diffusers import UNet2DModel

    from membench.models.denoisers import DISCRETE
    from membench.models.formats import inspect_checkpoint

    found = inspect_checkpoint(p, declared)
    try:
        kw = {"subfolder": found.unet_subfolder} if found.unet_subfolder else {}
        unet = UNet2DModel.from_pretrained(p, use_safetensors=True, local_files_only=True, low_cpu_mem_usage=False, **kw)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise MembenchError(f"{p}: cannot load the UNet: {type(exc).__name__}: {first}") from None
    cfg = found.scheduler_config
    if found.parameterization in DISCRETE:
        from membench.models.denoisers.discrete import DiscreteDenoiser, DiscreteSchedule

        model: torch.nn.Module = DiscreteDenoiser(unet, DiscreteSchedule.from_config(cfg), found.parameterization)
    else:
        edm = EDMConfig(sigma_data=float(cfg.get("sigma_data", 0.5)), sigma_min=float(cfg.get("sigma_min", 0.002)),
                        sigma_max=float(cfg.get("sigma_max", 80.0)), boundary=found.parameterization == "consistency",
                        precondition="edm" if found.parameterization == "edm" else "cm_edm")
        model = EDMDenoiser(unet, edm)
    model = model.to(device).eval()
    _check_finite(model, p)
    meta = {"image_shape": list(found.image_shape), "parameterization": found.parameterization,
            "num_classes": found.num_classes, "format": "diffusers", "found": found.summary()}
    return model, meta


def save_denoiser(model: EDMDenoiser, out: str | Path, meta: dict[str, Any], card: Any = None,
                  force: bool = False, variants: dict[str, EDMDenoiser] | None = None) -> Path:
    """Write a checkpoint folder atomically (temp folder, then one rename). ``card``: the model
    card's text, or a function of the staged folder returning it (a card that cites the weights'
    hash), so that the folder appears whole, card included, or not at all.

    ``variants`` (other weights of the same model, e.g. a distiller's raw and bias-corrected
    EMA weights) go into ``variants/<name>/``, each a checkpoint folder of its own (loadable
    by path), inside the same atomic write."""
    out = Path(out)
    with atomic_directory(out, force=force) as tmp:
        model.unet.save_pretrained(tmp / "unet", safe_serialization=True)
        full = {**meta, "format": FORMAT, "edm": model.config.to_dict()}
        atomic_write_json(tmp / META_FILE, full)
        if callable(card):
            card = card(tmp)
        if model.config.boundary:
            write_consistency_pipeline(tmp, model.config, meta.get("sampler"))
        if card is not None:
            (tmp / "README.md").write_text(card)
        for name, var in (variants or {}).items():
            var.unet.save_pretrained(tmp / "variants" / name / "unet", safe_serialization=True)
            atomic_write_json(tmp / "variants" / name / META_FILE,
                              {**full, "variant": name, "edm": var.config.to_dict()})
    return out


def write_consistency_pipeline(folder: Path, config: EDMConfig, sampler: str | None) -> None:
    """``model_index.json`` and ``scheduler/`` beside ``unet/``: the folder then loads with
    diffusers' ``ConsistencyModelPipeline.from_pretrained`` (its CMStochasticIterativeScheduler
    has the student's sigma range and the Karras grid of its sampler's ``levels``)."""
    import diffusers
    from diffusers import CMStochasticIterativeScheduler

    from membench.core.specs import parse_spec

    levels = int(parse_spec(sampler)[1].get("levels", 18)) if sampler else 18
    CMStochasticIterativeScheduler(num_train_timesteps=levels, sigma_min=config.sigma_min, sigma_max=config.sigma_max,
                                   sigma_data=config.sigma_data).save_pretrained(folder / "scheduler")
    atomic_write_json(folder / "model_index.json", {
        "_class_name": "ConsistencyModelPipeline", "_diffusers_version": diffusers.__version__,
        "scheduler": ["diffusers", "CMStochasticIterativeScheduler"], "unet": ["diffusers", "UNet2DModel"]})
