"""From the same initial noise, membench's samplers give diffusers' pipelines' images.

Tolerances are float32 round-off: membench works in the variance-exploding view
(x_VE = x_VP sqrt(1 + sigma^2), sigma up to 157 for linear betas) and converts back.
"""
import pytest
import torch

from membench.models.checkpoints import load_denoiser
from membench.models.denoisers.labels import Conditioned
from membench.models.samplers.consistency import ConsistencySampler
from membench.models.samplers.ddim import DDIMSampler
from tests.models.byo_fixtures import cm_pipeline, ddpm_pipeline

DDIM_ATOL = 1e-4  # on [0, 1] images; measured up to 2.7e-5
CM_ATOL = 1e-5


@pytest.mark.parametrize("prediction_type,beta_schedule,spacing,steps", [
    ("epsilon", "linear", "leading", 10),
    ("v_prediction", "scaled_linear", "trailing", 7),
    ("sample", "squaredcos_cap_v2", "linspace", 4),
])
def test_ddim_matches_ddim_pipeline(tmp_path, prediction_type, beta_schedule, spacing, steps):
    from diffusers import DDIMPipeline, DDPMPipeline

    folder = ddpm_pipeline(tmp_path / "p", prediction_type, beta_schedule, timestep_spacing=spacing,
                           steps_offset=1 if spacing == "leading" else 0)
    model, meta = load_denoiser(folder)
    assert meta["parameterization"] == prediction_type
    ddpm = DDPMPipeline.from_pretrained(folder)
    pipe = DDIMPipeline(unet=ddpm.unet, scheduler=ddpm.scheduler)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(batch_size=3, generator=torch.Generator().manual_seed(0), num_inference_steps=steps, eta=0.0,
                  output_type="pt").images
    z = torch.randn((3, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    ours = DDIMSampler(steps=steps).sample(model, z) / 2 + 0.5
    assert ((theirs > 0) & (theirs < 1)).float().mean() > 0.5  # mostly unclipped: the comparison bites
    torch.testing.assert_close(ours, theirs, atol=DDIM_ATOL, rtol=0)


@pytest.mark.parametrize("steps,indices", [(1, None), (2, "0/22"), (3, "0/10/30")])
def test_consistency_matches_consistency_pipeline(tmp_path, steps, indices):
    from diffusers import ConsistencyModelPipeline

    folder = cm_pipeline(tmp_path / "cm", num_classes=5)
    model, meta = load_denoiser(folder)
    assert meta["parameterization"] == "consistency" and model.num_classes == 5
    pipe = ConsistencyModelPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    labels = torch.tensor([0, 3, 4])
    timesteps = [int(i) for i in reversed(indices.split("/"))] if indices else None
    g = torch.Generator().manual_seed(1)
    theirs = pipe(batch_size=3, class_labels=labels, num_inference_steps=None if timesteps else 1,
                  timesteps=timesteps, generator=g, output_type="pt").images
    g = torch.Generator().manual_seed(1)  # the pipeline's draws, in its order: x_T, then one noise per step
    z = torch.randn((3, 3, 8, 8), generator=g)
    sampler = ConsistencySampler(levels=40, indices=indices) if indices else ConsistencySampler(steps=1, levels=40)
    ours = sampler.sample(Conditioned(model, labels), z, lambda k: torch.randn((3, 3, 8, 8), generator=g))
    torch.testing.assert_close(ours / 2 + 0.5, theirs, atol=CM_ATOL, rtol=0)
