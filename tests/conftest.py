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


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def tiny_unet_config(size: int = 8, channels: int = 1) -> dict:
    return dict(sample_size=size, in_channels=channels, out_channels=channels, block_out_channels=[8, 16],
                down_block_types=["DownBlock2D", "DownBlock2D"], up_block_types=["UpBlock2D", "UpBlock2D"],
                layers_per_block=1, norm_num_groups=4, time_embedding_type="positional")
