"""What a checkpoint folder holds: its format, parameterization, image shape, classes, default sampler.

Two formats are read:

* **membench** (``membench.json`` + ``unet/``): the parameterization is ``consistency`` when
  ``edm.boundary`` is true, else ``edm.precondition`` (``cm_edm`` when absent).
* **diffusers**: a pipeline folder (``model_index.json`` + ``unet/`` + ``scheduler/``), a bare
  ``unet/`` + ``scheduler/`` pair, or a bare UNet (``config.json`` + weights at the top).
  The parameterization comes from the scheduler: ``CMStochasticIterativeScheduler`` ->
  ``consistency``; ``EDMEulerScheduler``/``EDMDPMSolverMultistepScheduler`` (epsilon) -> ``edm``;
  a DDPM-family scheduler (DDPM, DDIM, PNDM, Euler, Heun, LMS, DPM-Solver...) -> its
  ``prediction_type`` (diffusers' default ``epsilon`` when the key is absent, said so).
  Without a scheduler the configs do not say: the user declares ``parameterization``.

A declared parameterization must be compatible with the configs (an EDM-family one over an
EDM or consistency scheduler, or a DDPM-family one over a beta schedule); it is then used and
the difference is reported. Everything that cannot be loaded faithfully is refused in one line:
latent or text-conditioned pipelines, other network classes, learned-variance outputs,
pickle-only weights, unknown schedulers.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from membench.core.errors import MembenchError
from membench.models.denoisers import DISCRETE, EDM_LIKE, PARAMETERIZATIONS

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
CM_SCHEDULERS = ("CMStochasticIterativeScheduler",)
EDM_SCHEDULERS = ("EDMEulerScheduler", "EDMDPMSolverMultistepScheduler")
DDPM_SCHEDULERS = ("DDPMScheduler", "DDIMScheduler", "PNDMScheduler", "EulerDiscreteScheduler",
                   "EulerAncestralDiscreteScheduler", "HeunDiscreteScheduler", "LMSDiscreteScheduler",
                   "DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler", "DEISMultistepScheduler",
                   "UniPCMultistepScheduler", "KDPM2DiscreteScheduler", "DDPMWuerstchenScheduler")
LATENT_COMPONENTS = ("vae", "vqvae", "vqgan", "movq", "text_encoder", "tokenizer")


@dataclass
class Found:
    """What ``inspect_checkpoint`` found in a folder."""

    path: Path
    format: str  # "membench" or "diffusers"
    unet_subfolder: str  # "unet" or "" (the UNet at the top of the folder)
    parameterization: str
    source: str  # where the parameterization came from
    image_shape: tuple[int, int, int]
    num_classes: int | None
    default_sampler: str
    pipeline_class: str | None = None
    scheduler_class: str | None = None
    scheduler_config: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # membench.json, when present
    hashed_files: list[str] = field(default_factory=list)  # relative paths, the checkpoint's identity

    def summary(self) -> dict[str, Any]:
        c, h, w = self.image_shape
        return {"format": self.format, "pipeline": self.pipeline_class, "scheduler": self.scheduler_class,
                "parameterization": self.parameterization, "parameterization_from": self.source,
                "resolution": f"{h}x{w}", "channels": c, "classes": self.num_classes or 0,
                "default_sampler": self.default_sampler}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MembenchError(f"{path}: unreadable JSON: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict):
        raise MembenchError(f"{path}: expected a JSON object")
    return data


def _unet_shape(cfg: dict[str, Any], where: Path) -> tuple[tuple[int, int, int], int | None]:
    cls = cfg.get("_class_name", "UNet2DModel")
    if cls == "UNet2DConditionModel":
        raise MembenchError(f"{where}: UNet2DConditionModel (text-conditioned, usually latent) is not supported; "
                            "membench imports pixel-space UNet2DModel checkpoints")
    if cls != "UNet2DModel":
        raise MembenchError(f"{where}: network class {cls!r} is not supported (only diffusers UNet2DModel)")
    size, cin, cout = cfg.get("sample_size"), cfg.get("in_channels", 3), cfg.get("out_channels", 3)
    if isinstance(size, int):
        size = [size, size]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise MembenchError(f"{where}: sample_size must be a positive integer or [height, width], got {size!r}")
    if not (isinstance(cin, int) and cin > 0 and cin == cout):
        raise MembenchError(f"{where}: in_channels {cin!r} and out_channels {cout!r} differ (learned variance "
                            "outputs are not supported)")
    if cfg.get("class_embed_type") not in (None,):
        raise MembenchError(f"{where}: class_embed_type {cfg['class_embed_type']!r} is not supported "
                            "(class labels through num_class_embeds only)")
    n_cls = cfg.get("num_class_embeds")
    if n_cls is not None and not (isinstance(n_cls, int) and n_cls > 0):
        raise MembenchError(f"{where}: num_class_embeds must be a positive integer, got {n_cls!r}")
    return (cin, size[0], size[1]), n_cls


def _from_scheduler(cls: str | None, cfg: dict[str, Any], where: str) -> tuple[str | None, str]:
    """The parameterization the scheduler implies (None: it does not say) and where it came from."""
    if cls is None:
        return None, "no scheduler config"
    if cls in CM_SCHEDULERS:
        return "consistency", f"{cls}"
    if cls in EDM_SCHEDULERS:
        pred = cfg.get("prediction_type", "epsilon")
        if pred != "epsilon":
            raise MembenchError(f"{where}: {cls} with prediction_type {pred!r} is not supported (only epsilon)")
        return "edm", f"{cls} (c_noise = ln(sigma)/4)"
    if cls in DDPM_SCHEDULERS:
        if "prediction_type" in cfg:
            pred = cfg["prediction_type"]
            if pred not in DISCRETE:
                raise MembenchError(f"{where}: prediction_type {pred!r} is not supported ({', '.join(DISCRETE)})")
            return pred, f"{cls} prediction_type"
        return "epsilon", f"{cls} without prediction_type: diffusers' default epsilon"
    raise MembenchError(f"{where}: scheduler {cls!r} is not supported (consistency: {', '.join(CM_SCHEDULERS)}; "
                        f"EDM: {', '.join(EDM_SCHEDULERS)}; DDPM family: DDPMScheduler, DDIMScheduler, ...)")


def _check_weights(folder: Path) -> None:
    if (folder / WEIGHTS_NAME).is_file():
        return
    if any(folder.glob("*.bin")) or any(folder.glob("*.ckpt")) or any(folder.glob("*.pt")):
        raise MembenchError(f"{folder}: only pickle weights (.bin/.pt); membench loads safetensors only. Convert them "
                            f"once, in a trusted environment: UNet2DModel.from_pretrained(DIR).save_pretrained(DIR)")
    raise MembenchError(f"{folder}: no {WEIGHTS_NAME}")


def default_sampler(parameterization: str, scheduler_config: dict[str, Any]) -> str:
    if parameterization == "consistency":
        return f"consistency:steps=1,levels={int(scheduler_config.get('num_train_timesteps', 40))}"
    if parameterization in DISCRETE:
        return "ddim:steps=50"
    return "heun:steps=18"


def inspect_checkpoint(path: str | Path, declared: str | None = None) -> Found:
    """Read a checkpoint folder's configs (no weights loaded); see the module doc for the rules."""
    p = Path(path)
    if not p.is_dir():
        raise MembenchError(f"checkpoint folder not found: {p}")
    if declared is not None and declared not in PARAMETERIZATIONS:
        raise MembenchError(f"unknown parameterization {declared!r}; choose one of {', '.join(PARAMETERIZATIONS)}")
    if (p / "membench.json").is_file():
        return _inspect_membench(p, declared)
    return _inspect_diffusers(p, declared)


def _inspect_membench(p: Path, declared: str | None) -> Found:
    from membench.models.checkpoints import read_meta

    meta = read_meta(p)
    edm = meta.get("edm", {})
    param = "consistency" if edm.get("boundary") else edm.get("precondition", "cm_edm")
    if declared is not None and declared != param:
        raise MembenchError(f"{p}: membench.json says the parameterization is {param!r}, not {declared!r}")
    if not (p / "unet" / "config.json").is_file():
        raise MembenchError(f"{p}: checkpoint is incomplete (missing unet/config.json)")
    _, n_cls = _unet_shape(_read_json(p / "unet" / "config.json"), p / "unet" / "config.json")
    return Found(p, "membench", "unet", param, "membench.json", tuple(meta["image_shape"]), n_cls,
                 meta.get("sampler") or default_sampler(param, {}), meta=meta,
                 hashed_files=["membench.json", "unet/config.json", f"unet/{WEIGHTS_NAME}"])


def _inspect_diffusers(p: Path, declared: str | None) -> Found:
    pipeline, sched_dir = None, None
    files: list[str] = []
    if (p / "model_index.json").is_file():
        index = _read_json(p / "model_index.json")
        pipeline = index.get("_class_name")
        latent = [k for k in LATENT_COMPONENTS if index.get(k) not in (None, [None, None])]
        if latent:
            raise MembenchError(f"{p}: {pipeline} has {', '.join(latent)}: latent and text-conditioned pipelines are "
                                "not supported (membench samples pixel-space UNets)")
        unet_entry = index.get("unet")
        if not (isinstance(unet_entry, list) and unet_entry[-1] == "UNet2DModel"):
            raise MembenchError(f"{p}/model_index.json: {pipeline} has no UNet2DModel 'unet' component "
                                f"(got {unet_entry!r})")
        files.append("model_index.json")
    if (p / "unet" / "config.json").is_file():
        sub = "unet"
    elif (p / "config.json").is_file() and pipeline is None:
        sub = ""
    else:
        raise MembenchError(f"{p}: not a diffusers checkpoint (no unet/config.json, config.json or membench.json)")
    unet_dir = p / sub if sub else p
    _check_weights(unet_dir)
    shape, n_cls = _unet_shape(_read_json(unet_dir / "config.json"), unet_dir / "config.json")
    files += [f"{sub}/config.json".lstrip("/"), f"{sub}/{WEIGHTS_NAME}".lstrip("/")]
    for cand in ("scheduler/scheduler_config.json", "scheduler_config.json"):
        if (p / cand).is_file():
            sched_dir = cand
            break
    sched_cfg: dict[str, Any] = {}
    sched_cls = None
    if sched_dir is not None:
        sched_cfg = _read_json(p / sched_dir)
        sched_cls = sched_cfg.get("_class_name")
        files.append(sched_dir)
    found, source = _from_scheduler(sched_cls, sched_cfg, str(p / sched_dir) if sched_dir else str(p))
    param = _reconcile(p, found, source, declared, sched_cls)
    if declared is not None and declared != found:
        source = f"declared (the configs say {found or 'nothing'}: {source})"
    if param in DISCRETE:
        from membench.models.denoisers.discrete import DiscreteSchedule

        DiscreteSchedule.from_config(sched_cfg, str(p / sched_dir))  # validate the beta schedule now
    return Found(p, "diffusers", sub, param, source, shape, n_cls, default_sampler(param, sched_cfg),
                 pipeline_class=pipeline, scheduler_class=sched_cls, scheduler_config=sched_cfg, hashed_files=files)


def _reconcile(p: Path, found: str | None, source: str, declared: str | None, sched_cls: str | None) -> str:
    if declared is None:
        if found is None:
            raise MembenchError(f"{p}: the configs do not say how the network is parameterized ({source}); declare "
                                f"it: --parameterization {{{','.join(PARAMETERIZATIONS)}}}")
        return found
    if declared in DISCRETE and sched_cls not in DDPM_SCHEDULERS:
        raise MembenchError(f"{p}: --parameterization {declared} needs a DDPM-family scheduler config (its beta "
                            f"schedule), found {sched_cls or 'none'}")
    if declared in EDM_LIKE and found is not None and found not in EDM_LIKE:
        raise MembenchError(f"{p}: declared {declared!r} but the scheduler {sched_cls} is a {found!r} schedule")
    return declared
