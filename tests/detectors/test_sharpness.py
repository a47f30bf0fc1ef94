"""Sharpness: Hutchinson trace and subspace-iteration eigenvalues against denoisers with known Jacobians."""
import numpy as np
import pytest
import torch
from torch import nn

from membench.data import load_dataset
from membench.detectors import DetectorContext, make_detector
from membench.detectors.sharpness import density_for, sharpness_batch
from membench.core.errors import MembenchError, UnavailableError
from membench.models.specs import ModelSpec


class LinearDenoiser(nn.Module):
    """D(x, sigma) = A x: J_D = A exactly."""

    def __init__(self, a: torch.Tensor):
        super().__init__()
        self.a = a

    def forward(self, x, sigma):
        return (x.flatten(1) @ self.a.T).view_as(x)


class OptimalDenoiser(nn.Module):
    """The empirical optimal denoiser of a training set: a perfect memorizer (DiffMemorize's OptimEDM)."""

    def __init__(self, train: np.ndarray):
        super().__init__()
        self.t = torch.from_numpy(train.reshape(len(train), -1)).double()

    def forward(self, x, sigma):
        flat = x.flatten(1).double()
        logits = -torch.cdist(flat, self.t) ** 2 / (2 * sigma**2)
        return (torch.softmax(logits, 1) @ self.t).to(x.dtype).view_as(x)


@pytest.mark.parametrize("mode", ["vjp", "jvp"])
def test_diagonal_jacobian_exact(mode):
    d, sigma = 64, 0.1
    diag = torch.cat([torch.tensor([0.0, 0.1]), torch.linspace(0.5, 0.9, d - 2)])  # a spectral gap for the iteration
    x = torch.randn(3, 1, 8, 8)
    out = sharpness_batch(LinearDenoiser(torch.diag(diag)), x, np.arange(3), sigma, probes=2, eigs=2, iters=60,
                          seed=0, mode=mode)
    # Rademacher probes are exact on a diagonal matrix
    np.testing.assert_allclose(out["sharpness"], 1 - diag.mean().item(), rtol=1e-5)
    np.testing.assert_allclose(out["trace_H"], (diag.sum().item() - d) / sigma**2, rtol=1e-5)
    np.testing.assert_allclose(out["lambda1_H"], -1 / sigma**2, rtol=1e-4)
    np.testing.assert_allclose(out["lambda2_H"], (0.1 - 1) / sigma**2, rtol=1e-4)


def test_dense_symmetric_jacobian_close():
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(64, 64, generator=g))
    eig = torch.rand(64, generator=g) * 0.8 + 0.1
    eig[0] = 0.0  # one direction the denoiser ignores: lambda_min(H) = -1/sigma^2
    a = q @ torch.diag(eig) @ q.T
    out = sharpness_batch(LinearDenoiser(a), torch.randn(4, 1, 8, 8), np.arange(4), 0.5, probes=64, eigs=1, iters=80,
                          seed=0, mode="vjp")
    np.testing.assert_allclose(out["sharpness"], 1 - eig.mean().item(), atol=0.03)  # Hutchinson: Monte Carlo
    np.testing.assert_allclose(out["lambda1_H"], -1 / 0.25, rtol=2e-2)


def test_rows_independent_of_batch():
    a = torch.diag(torch.linspace(0, 1, 64)) + 0.01
    x = torch.randn(6, 1, 8, 8)
    full = sharpness_batch(LinearDenoiser(a), x, np.arange(6), 0.2, 3, 1, 5, 0, "vjp")
    part = sharpness_batch(LinearDenoiser(a), x[4:], np.arange(4, 6), 0.2, 3, 1, 5, 0, "vjp")
    np.testing.assert_allclose(full["sharpness"][4:], part["sharpness"], rtol=1e-6)


def test_perfect_memorizer_is_sharp_at_training_images():
    ds = load_dataset("digits:n=64")
    det = make_detector("sharpness:sigma=0.5,probes=8")
    model = OptimalDenoiser(ds.images)
    train = det.measure(model, ds.images, "cpu")["sharpness"]
    held = det.measure(model, ds.heldout[:100], "cpu")["sharpness"]
    assert np.median(train) > 0.99  # D snaps to the image itself: J_D ~ 0
    from membench.analysis.roc import roc_auc

    assert roc_auc(train, held) > 0.9


def test_jvp_and_vjp_agree_on_a_real_unet(tiny_teacher):
    from membench.models.checkpoints import load_denoiser

    model, _ = load_denoiser(tiny_teacher)
    x = torch.from_numpy(load_dataset("digits:n=16").images[:4])
    a = sharpness_batch(model, x, np.arange(4), 0.1, 2, 1, 1, 0, "vjp")
    b = sharpness_batch(model, x, np.arange(4), 0.1, 2, 1, 1, 0, "jvp")
    np.testing.assert_allclose(a["sharpness"], b["sharpness"], rtol=1e-3, atol=1e-4)  # v^T J v = v^T J^T v


def test_jvp_and_vjp_same_spectrum_nonsymmetric():
    g = torch.Generator().manual_seed(1)
    p = torch.eye(64) + 0.3 * torch.randn(64, 64, generator=g) / 8  # J = P diag P^-1: not symmetric
    eig = torch.cat([torch.tensor([0.0]), torch.linspace(0.4, 0.9, 63)])
    a = p @ torch.diag(eig) @ torch.linalg.inv(p)
    x = torch.randn(2, 1, 8, 8)
    for mode in ("vjp", "jvp"):
        out = sharpness_batch(LinearDenoiser(a), x, np.arange(2), 0.5, 1, 1, 60, 0, mode)
        np.testing.assert_allclose(out["lambda1_H"], -1 / 0.25, rtol=1e-3)


def test_detect_calibrates_on_heldout(tiny_teacher):
    from membench.models.specs import resolve_model

    from membench.data import Dataset

    full = load_dataset("digits:n=16")
    ds = Dataset(spec=full.spec, images=full.images, heldout=full.heldout[:40])  # small, to keep the test fast
    det = make_detector("sharpness:fpr=0.1,probes=2,iters=2")
    ctx = DetectorContext(model=resolve_model("tiny"))
    samples = np.concatenate([ds.images[:4], ds.heldout[:4]])
    out = det.detect(samples, ds, ctx)
    assert out.info["density"] == "self" and out.info["density_model"] == "tiny"
    model, _ = ctx.load_denoiser("self")
    held = det.measure(model, ds.heldout, "cpu", index_offset=10_000_000)["sharpness"]
    assert (held > out.info["threshold"]).mean() <= 0.1  # at most fpr of held-out images flagged
    assert (held >= out.info["threshold"]).any()
    np.testing.assert_array_equal(out.flags, out.scores > out.info["threshold"])
    assert 0 <= out.info["calibration_auc_train_vs_heldout"] <= 1
    fixed = make_detector("sharpness:threshold=0.5,probes=2,iters=2").detect(samples, ds, ctx)
    assert fixed.info["threshold"] == 0.5
    np.testing.assert_allclose(fixed.scores, out.scores)  # same probes, same model


def test_density_choice():
    def spec(role, teacher=None):
        return ModelSpec(name="m", role=role, checkpoint="c", sampler="heun", dataset="digits", teacher=teacher)

    assert density_for(spec("teacher")) == "self"
    assert density_for(spec("student", "teacher")) == "teacher"
    assert density_for(spec("control", "teacher")) == "teacher"
    assert density_for(spec("control")) == "self"  # a control without a teacher field is the teacher itself


def test_needs_a_model():
    ds = load_dataset("digits:n=16")
    with pytest.raises(UnavailableError, match="registered model"):
        make_detector("sharpness").detect(ds.images[:2], ds, DetectorContext())


@pytest.mark.parametrize("spec", ["sharpness:sigma=0", "sharpness:sigma=-1", "sharpness:probes=0", "sharpness:fpr=1",
                                  "sharpness:products=fd", "sharpness:threshold=nan", "sharpness:eigs=1.5"])
def test_bad_config(spec):
    with pytest.raises(MembenchError):
        make_detector(spec)
