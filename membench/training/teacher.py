"""Train an EDM teacher on a dataset: ``membench train --model teacher``.

No augmentation (memorization studies switch it off), full EDM loss, Adam, an EMA copy of
the weights that is what gets saved and sampled.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from membench.data import load_dataset
from membench.models.edm import EDMConfig, EDMDenoiser, build_unet, default_unet_config, edm_loss
from membench.core.errors import MembenchError


@dataclass
class TeacherTrainConfig:
    dataset: str = "digits:n=64"
    steps: int = 6000
    batch_size: int = 64
    lr: float = 2e-4
    ema: float = 0.999
    seed: int = 0
    p_mean: float = -1.2
    p_std: float = 1.2
    unet: dict[str, Any] = field(default_factory=dict)  # overrides of default_unet_config
    snapshot_every: int = 0  # >0: also save EMA snapshots every k steps (training-time curves)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TeacherTrainConfig":
        known = set(cls.__dataclass_fields__)
        bad = set(d) - known
        if bad:
            raise MembenchError(f"unknown training option(s) {sorted(bad)}; known: {sorted(known)}")
        return cls(**d)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm, 1.0 - decay)


def train_teacher(cfg: TeacherTrainConfig, device: str = "cpu", progress: bool = True,
                  on_snapshot: Callable[[int, EDMDenoiser], None] | None = None) -> tuple[EDMDenoiser, dict[str, Any]]:
    """Train and return (EMA denoiser, training record). Deterministic for a given seed and device."""
    if cfg.steps <= 0 or cfg.batch_size <= 0 or cfg.lr <= 0:
        raise MembenchError("steps, batch_size and lr must be positive")
    ds = load_dataset(cfg.dataset)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    data = torch.from_numpy(np.ascontiguousarray(ds.images)).to(device)
    _, c, h, w = data.shape
    if h != w:
        raise MembenchError(f"{cfg.dataset}: square images required, got {h}x{w}")
    unet_cfg = {**default_unet_config(sample_size=h, channels=c), **cfg.unet}
    model = EDMDenoiser(build_unet(unet_cfg), EDMConfig()).to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    batch = min(cfg.batch_size, len(data))
    losses: list[float] = []
    t0 = time.time()
    from membench.core.progress import task

    with task("train teacher", total=cfg.steps, enabled=progress) as bar:
        for step in range(cfg.steps):
            idx = torch.randperm(len(data), generator=gen, device=device)[:batch]
            loss = edm_loss(model, data[idx], generator=gen, p_mean=cfg.p_mean, p_std=cfg.p_std)
            if not torch.isfinite(loss):
                raise MembenchError(f"training diverged at step {step} (loss {loss.item()}); lower the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ema_update(ema, model, cfg.ema)
            losses.append(loss.item())
            bar.advance()
            if step % 200 == 0:
                bar.update(loss=float(np.mean(losses[-200:])))
            if cfg.snapshot_every and on_snapshot and (step + 1) % cfg.snapshot_every == 0:
                on_snapshot(step + 1, ema)
    record = {
        "config": asdict(cfg),
        "unet": unet_cfg,
        "dataset": ds.spec,
        "dataset_fingerprint": ds.fingerprint(),
        "n_train": len(ds),
        "wall_time_s": round(time.time() - t0, 1),
        "final_loss": float(np.mean(losses[-200:])),
        "device": str(device),
        "torch": torch.__version__,
    }
    return ema, record
