"""The bias-corrected EMA removes the initial weights' share; distillers save raw and corrected weights."""
from __future__ import annotations

import torch

from membench.training.distillers.base import EMAVariants, ema_update


def test_corrected_ema_is_the_average_of_trained_iterates_only() -> None:
    init = torch.nn.Linear(3, 2)
    ema = torch.nn.Linear(3, 2)
    ema.load_state_dict(init.state_dict())
    model = torch.nn.Linear(3, 2)
    tracker = EMAVariants(init, 0.9)
    iterates = []
    for k in range(5):
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.full_like(p, float(k + 1)))
        iterates.append(float(k + 1))
        ema_update(ema, model, 0.9)
    weights = [0.1 * 0.9 ** (4 - j) for j in range(5)]
    expected = sum(w * v for w, v in zip(weights, iterates)) / sum(weights)
    corrected = tracker.corrected(ema, 5)
    for p in corrected.parameters():
        assert torch.allclose(p, torch.full_like(p, expected), atol=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(tracker.corrected(ema, 0).parameters(), ema.parameters()))
