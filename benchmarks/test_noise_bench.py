"""Cost of per-sample paired noise (one RNG stream per sample) vs one batched torch.randn."""
import numpy as np
import pytest
import torch

from membench.models.samplers.noise import noise_for


@pytest.mark.benchmark(group="initial noise, 1000 x 1x8x8")
def test_baseline_torch_randn(benchmark):
    g = torch.Generator().manual_seed(0)
    out = benchmark(lambda: torch.randn((1000, 1, 8, 8), generator=g))
    assert out.shape == (1000, 1, 8, 8)


@pytest.mark.benchmark(group="initial noise, 1000 x 1x8x8")
def test_membench_noise_for(benchmark):
    out = benchmark(noise_for, 0, np.arange(1000), (1, 8, 8))
    assert out.shape == (1000, 1, 8, 8)
