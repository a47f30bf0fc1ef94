"""Known answers of the closed-form teachers: the empirical optimal denoiser's samples are exactly
training images, the Gaussian fit's are not; cd distils a weightless teacher into a given network,
and the one-step student of the copying teacher copies while that of the Gaussian teacher does not."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from membench.cli import main
from membench.data import Dataset
from membench.data.digits import load
from membench.detectors.base import DetectorContext, make_detector
from membench.models.edm import EDMConfig, EDMDenoiser, build_unet, default_unet_config
from membench.models.optimal import EmpiricalOptimalDenoiser, GaussianDenoiser
from membench.models.samplers.karras import HeunSampler
from membench.models.samples import generate
from membench.studies.base import StudyContext, make_study
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



@pytest.mark.slow
def test_cd_student_of_the_optimal_denoiser_copies(tmp_path) -> None:
    """The known answer of distillation: a student distilled from a teacher whose every sample is a
    training image copies; the same network, recipe and seed distilled from the Gaussian fit of the
    same images (a teacher that copies nothing) does not. So a low flagged fraction of a real
    student is not something the CD recipe produces whatever the teacher does."""
    tables = make_study("known-answer", {"seeds": (0,), "n_samples": 200}).run(tmp_path, StudyContext())
    t = tables["known_answer"].set_index(["teacher", "weights"]).l2ratio
    assert t["optimal", "teacher"] == 1.0 and t["gaussian", "teacher"] < 0.5
    paired = tables["paired"].set_index("weights")
    assert set(paired.index) == {"ema", "raw", "ema-corrected"}
    assert paired.loc["ema", "diff_ci_low"] > 0.2, paired
    assert paired.loc["ema", "gaussian_student"] < 0.15
    assert {"known_answer.csv", "paired.csv", "record.json"} <= {p.name for p in tmp_path.iterdir()}


def test_known_answer_study_from_the_cli(tmp_path) -> None:
    """The command's tables: both teachers and every weight of each seed's student, pairs per seed."""
    out = tmp_path / "ka"
    assert main(["study", "known-answer", "--quick", "--quiet", "--set", "seeds=0,1", "--out", str(out)]) == 0
    t = pd.read_csv(out / "known_answer.csv")
    assert len(t) == 2 * (1 + 2 * 3) and set(t.teacher) == {"optimal", "gaussian"}
    assert (t[t.model == "teacher"].set_index("teacher").l2ratio["optimal"]) == 1.0
    assert len(pd.read_csv(out / "paired.csv")) == 2 * 3
    assert main(["study", "known-answer", "--set", "seeds=-1", "--out", str(tmp_path / "bad")]) == 1
    assert not (tmp_path / "bad").exists()
