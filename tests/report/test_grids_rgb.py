"""Image grids of RGB and larger images: the rendering function, and `membench report` on a tiny RGB result set."""
import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from membench.cli import main
from membench.core.errors import MembenchError
from membench.report.grids import render_image

from tests.conftest import tiny_unet_config


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def test_render_image_draws_gray_rgb_and_sizes_exactly(rng):
    rgb4 = rng.integers(0, 256, (3, 4, 4))
    gray8 = rng.integers(0, 256, (1, 8, 8))
    rgb64 = rng.integers(0, 256, (3, 64, 64))
    to_model = lambda u: (u / 127.5 - 1).astype(np.float32)  # noqa: E731
    # each image's longer side ~72 px by an integer scale: 4 -> x18 (72), 8 -> x9 (72), 64 -> x1 (64)
    np.testing.assert_array_equal(decode(render_image(to_model(rgb4))), rgb4.transpose(1, 2, 0).repeat(18, 0).repeat(18, 1))
    np.testing.assert_array_equal(decode(render_image(to_model(gray8))),
                                  np.repeat(gray8[0].repeat(9, 0).repeat(9, 1)[..., None], 3, 2))
    np.testing.assert_array_equal(decode(render_image(to_model(rgb64))), rgb64.transpose(1, 2, 0))
    for bad in [np.zeros((2, 8, 8), np.float32), np.zeros((4, 8, 8), np.float32), np.zeros((8, 8), np.float32)]:
        with pytest.raises(MembenchError, match="expected .1 or 3, H, W. images"):
            render_image(bad)


def test_report_grids_show_rgb_32x32_samples_and_training_images(tmp_path, monkeypatch, capsys):
    """An untrained tiny 3x32x32 UNet, registered on a random RGB training set: run, report, decode the grid."""
    from membench.models.checkpoints import save_denoiser
    from membench.models.edm import EDMDenoiser

    import torch
    from diffusers import UNet2DModel

    train = np.random.default_rng(0).integers(0, 256, (12, 3, 32, 32), dtype=np.uint8)
    np.savez(tmp_path / "train.npz", images=train)
    torch.manual_seed(0)
    save_denoiser(EDMDenoiser(UNet2DModel(**tiny_unet_config(32, 3))), tmp_path / "models" / "rgb",
                  {"name": "rgb", "role": "teacher", "image_shape": [3, 32, 32], "dataset": str(tmp_path / "train.npz")})
    models = tmp_path / "registry" / "models"
    models.mkdir(parents=True)
    (models / "rgb.toml").write_text(f'role = "teacher"\ncheckpoint = "{tmp_path / "models" / "rgb"}"\n'
                                     f'sampler = "euler:steps=1"\ndataset = "{tmp_path / "train.npz"}"\n')
    monkeypatch.setenv("MEMBENCH_REGISTRY", str(tmp_path / "registry"))
    res = tmp_path / "res"
    assert main(["run", "--model", "rgb", "--detector", "l2ratio", "--n-samples", "4", "--no-quality",
                 "--results-dir", str(res), "--quiet"]) == 0, capsys.readouterr().err
    assert main(["report", "--results-dir", str(res), "--top", "2", "--quiet"]) == 0, capsys.readouterr().err
    html = (res / "report" / "report.html").read_text()
    cells = re.findall(r'<img class="grid" alt="([^"]*)" src="data:image/png;base64,([^"]+)"', html)
    nearest = [(int(m.group(1)), png) for alt, png in cells if (m := re.search(r"nearest: #(\d+)", alt))]
    samples = [png for alt, png in cells if alt.endswith(": sample")]
    assert len(nearest) == len(samples) == 2
    for k, png in nearest:  # 32x32 at x2, the training image itself, in colour
        np.testing.assert_array_equal(decode(base64.b64decode(png)), train[k].transpose(1, 2, 0).repeat(2, 0).repeat(2, 1))
    sample = decode(base64.b64decode(samples[0]))
    assert sample.shape == (64, 64, 3)
    assert np.abs(sample[..., 0] - sample[..., 1]).mean() > 10  # colour, not gray
