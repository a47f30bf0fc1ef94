"""An epsilon-prediction DDPM teacher distils like any other; the student loads in diffusers."""
from __future__ import annotations

import numpy as np
import torch

import membench
from tests.models.byo_fixtures import ddpm_pipeline


def test_epsilon_teacher_distils_into_a_consistency_pipeline(tmp_path, workspace):
    from diffusers import ConsistencyModelPipeline

    from membench.models.checkpoints import load_denoiser
    from membench.models.samplers.consistency import ConsistencySampler
    from membench.models.specs import resolve_model
    from membench.training.distill import distill_from_registry

    imgs = np.random.default_rng(0).uniform(-1, 1, (20, 3, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "train.npz", images=imgs[:16], heldout=imgs[16:])
    membench.import_model(ddpm_pipeline(tmp_path / "ddpm"), name="ddpm", train=str(tmp_path / "train.npz"),
                          sampler="ddim:steps=4")
    ckpt, entry = distill_from_registry("ddpm", "cd:iterations=3,batch_size=4,levels=10", name="ddpm-cd",
                                        device="cpu", progress=False, eval_samples=4)
    spec = resolve_model("ddpm-cd")
    assert spec.teacher == "ddpm" and spec.sampler == "consistency:levels=10,steps=1"
    student, meta = load_denoiser(spec)
    assert meta["parameterization"] == "consistency" and meta["teacher_parameterization"] == "epsilon"
    # the teacher's schedule bounds the student's range: sigma_min = max(0.002, sigma_0 of linear betas)
    assert abs(student.sigma_min - (1e-4 / (1 - 1e-4)) ** 0.5) < 1e-6 and student.sigma_max == 80.0

    pipe = ConsistencyModelPipeline.from_pretrained(ckpt)  # outside membench: diffusers alone
    pipe.set_progress_bar_config(disable=True)
    g = torch.Generator().manual_seed(0)
    theirs = pipe(batch_size=2, num_inference_steps=1, generator=g, output_type="pt").images
    z = torch.randn((2, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    ours = ConsistencySampler(steps=1, levels=10).sample(student, z)
    torch.testing.assert_close(ours / 2 + 0.5, theirs, atol=1e-5, rtol=0)
    board = membench.run(models="ddpm,ddpm-cd", detectors="l2ratio", n_samples=4, device="cpu", quality=False)
    assert (board["status"] == "ok").all()
