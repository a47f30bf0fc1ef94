import numpy as np
import pytest
import torch

from membench.models.edm import EDMConfig, EDMDenoiser
from membench.models.samplers.karras import EulerSampler, HeunSampler, karras_sigmas
from membench.models.samplers.noise import noise_for


def test_karras_grid_formula():
    s = karras_sigmas(18)
    assert s[0].item() == pytest.approx(80.0) and s[-1].item() == pytest.approx(0.002)
    i = 5
    expected = (80 ** (1 / 7) + i / 17 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert s[i].item() == pytest.approx(expected, rel=1e-12)
    assert (s[1:] < s[:-1]).all()


class Counting(torch.nn.Module):
    """Optimal denoiser of a point mass at ``target``: D(x, sigma) = target."""

    def __init__(self, target):
        super().__init__()
        self.target, self.calls = target, 0

    def forward(self, x, sigma):
        self.calls += 1
        return self.target.expand_as(x)


@pytest.mark.parametrize("cls,steps,nfe", [(HeunSampler, 18, 35), (HeunSampler, 1, 1), (EulerSampler, 4, 4)])
def test_nfe_counts(cls, steps, nfe):
    d = Counting(torch.zeros(1, 1, 8, 8))
    sampler = cls(steps=steps)
    sampler.sample(d, torch.randn(3, 1, 8, 8))
    assert d.calls == nfe == sampler.nfe


def test_point_mass_is_recovered():
    target = torch.rand(1, 1, 8, 8) * 2 - 1
    for sampler in (HeunSampler(), EulerSampler(steps=1)):
        out = sampler.sample(Counting(target), torch.randn(4, 1, 8, 8))
        torch.testing.assert_close(out, target.expand(4, -1, -1, -1), atol=1e-4, rtol=0)


def empirical_optimal_denoiser(train):
    """D*(x, sigma) = sum_i softmax_i(-||x - x_i||^2 / 2 sigma^2) x_i: samples are training images."""

    def d(x, sigma):
        flat = x.reshape(len(x), -1).double()
        t = train.reshape(len(train), -1).double()
        logits = -torch.cdist(flat, t) ** 2 / (2 * sigma.double().view(-1, 1) ** 2)
        return (torch.softmax(logits, 1) @ t).reshape(x.shape).to(x.dtype)

    return d


def test_heun_on_optimal_denoiser_reproduces_training_images():
    train = torch.rand(16, 1, 8, 8) * 2 - 1
    out = HeunSampler().sample(empirical_optimal_denoiser(train), noise_for(0, np.arange(32), (1, 8, 8)))
    dist = torch.cdist(out.reshape(32, -1), train.reshape(16, -1))
    assert dist.min(1).values.max() < 1e-2  # float32 rounding at sigma=80; images are ~4 apart


def test_noise_is_per_index_and_batch_independent():
    a = noise_for(3, np.arange(10), (1, 8, 8))
    b = noise_for(3, np.array([7, 2]), (1, 8, 8))
    torch.testing.assert_close(a[[7, 2]], b)
    assert not torch.equal(noise_for(4, np.arange(2), (1, 8, 8)), a[:2])
    assert not torch.equal(noise_for(3, np.arange(2), (1, 8, 8), step=1), a[:2])


def test_edm_scalings_and_boundary_condition():
    net = torch.nn.Identity()

    class Wrap(torch.nn.Module):
        def forward(self, x, t):
            return type("O", (), {"sample": torch.ones_like(x)})()

    x = torch.randn(2, 1, 8, 8)
    edm = EDMDenoiser(Wrap(), EDMConfig())
    sigma = torch.tensor([0.5, 2.0])
    c_skip, c_out, c_in = edm.scalings(sigma)
    torch.testing.assert_close(c_skip, 0.25 / (sigma**2 + 0.25))
    torch.testing.assert_close(c_out, sigma * 0.5 / torch.sqrt(sigma**2 + 0.25))
    torch.testing.assert_close(c_in, 1 / torch.sqrt(sigma**2 + 0.25))
    cm = EDMDenoiser(Wrap(), EDMConfig(boundary=True))
    torch.testing.assert_close(cm(x, 0.002), x)  # f(x, sigma_min) = x
    assert not torch.allclose(edm(x, 0.002), x)
    del net
