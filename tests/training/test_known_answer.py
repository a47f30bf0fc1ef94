"""Known answers of the closed-form teachers: the empirical optimal denoiser's samples are exactly
training images, the Gaussian fit's are not; cd distils a weightless teacher into a given network.

(That the cd student of the optimal denoiser copies is not tested here: no configuration was found
that learns it from scratch within the test budget; see docs/FINDINGS.md.)"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from membench.data import Dataset
from membench.data.digits import load
from membench.detectors.base import DetectorContext, make_detector
from membench.models.edm import EDMConfig, EDMDenoiser, build_unet, default_unet_config
from membench.models.optimal import EmpiricalOptimalDenoiser, GaussianDenoiser
from membench.models.samplers.karras import HeunSampler
from membench.models.samples import generate
from membench.studies.pipeline import unet_preset
from membench.training.distillers.base import DistillContext, make_distiller

N_TRAIN = 4


@pytest.fixture(scope="module")
def data() -> Dataset:
    ds = load(n=N_TRAIN, seed=0, holdout=8)
    return Dataset(spec="known-answer", images=ds.images, heldout=ds.heldout)


def flagged(images: np.ndarray, data: Dataset) -> float:
    out = make_detector("l2ratio").detect(images, data, DetectorContext())
    return float(out.flags.mean())


def test_optimal_denoiser_reproduces_training_images(data: Dataset) -> None:
    images, _ = generate(EmpiricalOptimalDenoiser(data.images), HeunSampler(steps=18), 32, 0, data.shape, "cpu")
    assert flagged(images, data) == 1.0
    gauss, _ = generate(GaussianDenoiser(data.images), HeunSampler(steps=18), 32, 0, data.shape, "cpu")
    assert flagged(gauss, data) < 0.5


def test_cd_starts_the_student_from_student_init(data: Dataset) -> None:
    """A teacher without weights (the closed form) is distilled into a network given as student_init."""
    torch.manual_seed(0)
    init = EDMDenoiser(build_unet({**default_unet_config(8, 1), **unet_preset("tiny")}), EDMConfig())
    seen = {}
    ctx = DistillContext(student_init=init, snapshot_at=(0, 2),
                         on_snapshot=lambda k, m: seen.setdefault(k, [p.detach().clone() for p in m.parameters()]))
    result = make_distiller("cd:iterations=2,levels=4,batch_size=4").distill(EmpiricalOptimalDenoiser(data.images),
                                                                            data, ctx)
    assert all(torch.equal(a, b) for a, b in zip(seen[0], init.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(seen[2], init.parameters()))
    assert set(result.variants) == {"raw", "ema-corrected"}
