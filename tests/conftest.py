from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # Each test session gets its own sample cache; nothing is written to ~/.cache.
    monkeypatch.setenv("MEMBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch) -> Path:
    """Each test's own workspace ($MEMBENCH_HOME): nothing lands in the checkout's current folder."""
    ws = tmp_path / "workspace"
    monkeypatch.setenv("MEMBENCH_HOME", str(ws))
    return ws


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def tiny_unet_config(size: int = 8, channels: int = 1) -> dict:
    return dict(sample_size=size, in_channels=channels, out_channels=channels, block_out_channels=[8, 16],
                down_block_types=["DownBlock2D", "DownBlock2D"], up_block_types=["UpBlock2D", "UpBlock2D"],
                layers_per_block=1, norm_num_groups=4, time_embedding_type="positional")


def write_tiny_registry(root: Path, name: str = "tiny", steps: int = 3, n: int = 16) -> Path:
    """A registry folder with one tiny teacher entry whose checkpoint lives under ``root``."""
    models = root / "registry" / "models"
    models.mkdir(parents=True, exist_ok=True)
    unet = tiny_unet_config()
    unet_toml = ", ".join(f"{k} = {_toml(v)}" for k, v in unet.items())
    (models / f"{name}.toml").write_text(
        f'role = "teacher"\ncheckpoint = "models/{name}"\nsampler = "heun:steps=4"\ndataset = "digits:n={n}"\n'
        f"[train]\nsteps = {steps}\nbatch_size = 8\nlr = 1e-3\nunet = {{ {unet_toml} }}\n"
    )
    return root / "registry"


def _toml(v):
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return str(v).lower() if isinstance(v, bool) else str(v)


@pytest.fixture(scope="session")
def _tiny_teacher_master(tmp_path_factory):
    """Train the tiny teacher once per test session (3 steps)."""
    from membench.training.train import train_from_registry

    root = tmp_path_factory.mktemp("tiny-master")
    reg = write_tiny_registry(root)
    old = os.environ.get("MEMBENCH_REGISTRY")
    os.environ["MEMBENCH_REGISTRY"] = str(reg)
    try:
        return train_from_registry("tiny", device="cpu", progress=False, eval_samples=20)
    finally:
        if old is None:
            os.environ.pop("MEMBENCH_REGISTRY", None)
        else:
            os.environ["MEMBENCH_REGISTRY"] = old


@pytest.fixture
def tiny_teacher(_tiny_teacher_master, tmp_path, monkeypatch):
    """A private copy of the tiny teacher, registered as ``tiny``; tests may modify it."""
    import shutil

    reg = write_tiny_registry(tmp_path)
    monkeypatch.setenv("MEMBENCH_REGISTRY", str(reg))
    target = tmp_path / "models" / "tiny"
    shutil.copytree(_tiny_teacher_master, target)
    return target
