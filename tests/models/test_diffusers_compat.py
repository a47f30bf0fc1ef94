"""Our consistency students follow diffusers' ConsistencyModelPipeline conventions exactly."""
import torch

from membench.models.edm import EDMConfig, EDMDenoiser, build_unet
from membench.models.samplers.consistency import ConsistencySampler
from tests.conftest import tiny_unet_config


def test_one_step_sampling_matches_consistency_model_pipeline():
    from diffusers import CMStochasticIterativeScheduler, ConsistencyModelPipeline

    torch.manual_seed(0)
    # 3 channels: the pipeline's `latents` argument assumes 3-channel images.
    unet = build_unet(tiny_unet_config(size=8, channels=3))
    student = EDMDenoiser(unet, EDMConfig(boundary=True)).eval()
    z = torch.randn(4, 3, 8, 8)
    ours = ConsistencySampler(steps=1).sample(student, z)
    pipe = ConsistencyModelPipeline(unet=unet, scheduler=CMStochasticIterativeScheduler(num_train_timesteps=18))
    pipe.set_progress_bar_config(disable=True)
    with torch.no_grad():
        theirs = pipe(batch_size=4, num_inference_steps=1, latents=z, output_type="pt").images
    torch.testing.assert_close(ours / 2 + 0.5, theirs, atol=1e-5, rtol=1e-5)
