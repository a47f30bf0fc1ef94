"""Tiny diffusers pipelines in the hub layouts (DDPMPipeline, ConsistencyModelPipeline, bare unet/ + scheduler/)."""
from __future__ import annotations

from pathlib import Path

import torch

from tests.conftest import tiny_unet_config


def tiny_unet(size: int = 8, channels: int = 3, num_classes: int | None = None, seed: int = 0):
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    cfg = tiny_unet_config(size=size, channels=channels)
    if num_classes:
        cfg["num_class_embeds"] = num_classes
    unet = UNet2DModel(**cfg)
    with torch.no_grad():  # untrained UNets output ~0; bigger weights make the parity tests bite
        for p in unet.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return unet.eval()


def ddpm_pipeline(out: Path, prediction_type: str = "epsilon", beta_schedule: str = "linear", size: int = 8,
                  channels: int = 3, **sched) -> Path:
    from diffusers import DDPMPipeline, DDPMScheduler

    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule=beta_schedule, prediction_type=prediction_type,
                              **sched)
    DDPMPipeline(unet=tiny_unet(size, channels), scheduler=scheduler).save_pretrained(out)
    return out


def cm_pipeline(out: Path, size: int = 8, channels: int = 3, num_classes: int | None = None, levels: int = 40) -> Path:
    from diffusers import CMStochasticIterativeScheduler, ConsistencyModelPipeline

    scheduler = CMStochasticIterativeScheduler(num_train_timesteps=levels)
    ConsistencyModelPipeline(unet=tiny_unet(size, channels, num_classes), scheduler=scheduler).save_pretrained(out)
    return out


def bare_unet(out: Path, scheduler: str | None = "DDIMScheduler", size: int = 8, channels: int = 3, **sched) -> Path:
    """``unet/`` (+ ``scheduler/`` when ``scheduler`` is given), no model_index.json."""
    import diffusers

    tiny_unet(size, channels).save_pretrained(out / "unet")
    if scheduler:
        getattr(diffusers, scheduler)(**sched).save_pretrained(out / "scheduler")
    return out
