"""Sharpness of the learned density at each sample (Jeon, Kim & No, ICML 2025, arXiv 2412.04140).

Memorized samples sit where the log density is sharp: the Hessian of log p_sigma has large
negative eigenvalues. With the EDM denoiser D, the score of the sigma-smoothed density is
s(x, sigma) = (D(x, sigma) - x) / sigma^2, so its Jacobian -- the Hessian of log p_sigma --
is H = (J_D - I) / sigma^2, evaluated at the sample x itself at a small ``sigma``. We estimate

* tr H by Hutchinson's estimator with ``probes`` Rademacher vectors v: E[v^T J_D v] = tr J_D;
* the most negative eigenvalues of H (the ``eigs`` largest of I - J_D) by subspace (power)
  iteration, ``iters`` steps, with Rayleigh-Ritz on the iterated subspace.

Both need only products with J_D. ``products="vjp"`` (default) uses reverse-mode
vector-Jacobian products, ``"jvp"`` forward-mode ``torch.func.jvp``; v^T J v and the spectrum
are the same for J and J^T, so the two agree (a test checks it) and VJPs are about 4x
faster on CPU here. The statistic is the dimension-free

    sharpness = -sigma^2 tr(H) / d = 1 - tr(J_D) / d

0 where the denoiser passes local changes through (a generalizing model at small sigma),
1 where it ignores them and snaps to one point (a memorized training image).

Whose density: a teacher's own; students (and controls) are scored under their teacher's
density (a consistency student's boundary-scaled f is not a denoiser of a fixed density),
recorded in ``info["density"]``.

Threshold: calibrated on the training set's held-out images (never seen by the model): a
sample is flagged when it is sharper than the (1 - ``fpr``) quantile of held-out images,
so about ``fpr`` of novel images are flagged. ``info`` also records the AUC of training
versus held-out images under the same model, the calibration's check that sharpness
separates them at all. ``threshold=`` fixes the cut instead.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from membench.data import Dataset
from membench.core.errors import MembenchError
from membench.detectors.base import Detector, DetectorContext, DetectorOutput, check_compatible

PROBE_STEP = 10_000  # noise_for step offset of the probe vectors (disjoint from sampler steps)
MAX_CALIBRATION_TRAIN = 500  # training images scored for the calibration AUC
_CALIBRATION: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def density_for(model_spec: Any) -> str:
    """Which density scores a model's samples: its own (teachers) or its teacher's."""
    if model_spec is None:
        return "self"
    return "teacher" if model_spec.role in ("student", "control") and model_spec.teacher else "self"


def _rademacher(seed: int, index: np.ndarray, shape: tuple[int, ...], probe: int) -> Any:
    from membench.models.samplers.noise import noise_for

    return noise_for(seed, index, shape, step=PROBE_STEP + probe).sign()


class _Products:
    """u -> J_D u (jvp) or J_D^T u (vjp) for a batch, at fixed x and sigma.

    In ``vjp`` mode the forward pass runs once per batch and its graph is kept: every product
    (the probes, each subspace iteration) is one backward pass through the same graph. That
    gives the same bits as a fresh forward per product (same inputs, same kernels) at about
    half the cost; the forward is built lazily so a batch that needs no product costs nothing.
    """

    def __init__(self, model: Any, x: Any, sigma: float, mode: str):
        self.model, self.x, self.sigma, self.mode = model, x, sigma, mode
        self._graph: tuple[Any, Any] | None = None

    def __call__(self, u: Any) -> Any:
        import torch

        if self.mode == "jvp":
            from torch.func import jvp
            from torch.nn.attention import SDPBackend, sdpa_kernel

            with sdpa_kernel(SDPBackend.MATH):  # fused CPU attention has no forward-mode derivative
                return jvp(lambda y: self.model(y, self.sigma), (self.x,), (u,))[1].detach()
        if self._graph is None:
            with torch.enable_grad():
                x = self.x.detach().requires_grad_(True)
                self._graph = (x, self.model(x, self.sigma))
        x, out = self._graph
        (g,) = torch.autograd.grad(out, x, grad_outputs=u, retain_graph=True)
        return g.detach()


def _bdot(a: Any, b: Any) -> Any:
    return (a.flatten(1) * b.flatten(1)).sum(1)


def sharpness_batch(model: Any, x: Any, index: np.ndarray, sigma: float, probes: int, eigs: int, iters: int,
                    seed: int, mode: str) -> dict[str, np.ndarray]:
    """Per-sample trace and eigenvalue estimates for one batch (independent of the batch's other rows).

    ``eigs=0``: the trace only (``sharpness``, ``trace_H``), without the subspace iteration.
    """
    import torch

    prod = _Products(model, x, sigma, mode)
    b, d = x.shape[0], x[0].numel()
    shape = tuple(x.shape[1:])
    tr = torch.zeros(b, dtype=torch.float64)
    for p in range(probes):
        v = _rademacher(seed, index, shape, p).to(x.device, x.dtype)
        tr += _bdot(v, prod(v)).double().cpu()
    tr_jd = tr / probes
    out = {
        "sharpness": (1.0 - tr_jd / d).numpy(),
        "trace_H": ((tr_jd - d) / sigma**2).numpy(),
    }
    if eigs == 0:
        return out
    # Subspace iteration on A = I - J (or its transpose: same spectrum) for its `eigs` largest eigenvalues.
    w = torch.stack([_rademacher(seed + 1, index, shape, p).to(x.device, x.dtype) for p in range(eigs)], -1)
    w = w.flatten(1, -2)  # (b, d, k)
    w, _ = torch.linalg.qr(w)

    def apply_a(m: Any) -> Any:
        cols = [m[..., j] - prod(m[..., j].reshape(b, *shape)).flatten(1) for j in range(m.shape[-1])]
        return torch.stack(cols, -1)

    for _ in range(iters):
        w, _ = torch.linalg.qr(apply_a(w))
    small = w.transpose(1, 2) @ apply_a(w)  # (b, k, k) Rayleigh-Ritz
    mu = torch.linalg.eigvalsh(0.5 * (small + small.transpose(1, 2))).flip(-1)  # descending
    lam = (-mu.double().cpu() / sigma**2).numpy()  # most negative Hessian eigenvalues, ascending
    for j in range(eigs):
        out[f"lambda{j + 1}_H"] = lam[:, j]
    return out


def _checkpoint_key(spec: Any, which: str) -> str:
    from membench.models.checkpoints import checkpoint_hash
    from membench.models.specs import resolve_model

    return checkpoint_hash((resolve_model(spec.teacher) if which == "teacher" else spec))


@dataclass
class Sharpness(Detector):
    sigma: float = 0.1
    probes: int = 4
    eigs: int = 1
    iters: int = 8
    fpr: float = 0.01
    threshold: float | None = None
    products: str = "vjp"
    seed: int = 0
    batch_size: int = 128

    score_name = "sharpness"
    higher_is_memorized = True
    needs_training_shape = True
    calibrate_on_heldout = False  # its cut is already the held-out (1 - fpr) quantile (slow to score twice)

    def check(self) -> None:
        if not isinstance(self.sigma, (int, float)) or isinstance(self.sigma, bool) or not 0.0 < self.sigma <= 80.0:
            raise MembenchError(f"sharpness: sigma must be in (0, 80], got {self.sigma!r}")
        for name, lo in (("probes", 1), ("eigs", 1), ("iters", 1), ("batch_size", 1)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise MembenchError(f"sharpness: {name} must be an integer >= {lo}, got {v!r}")
        if not isinstance(self.fpr, (int, float)) or not 0.0 < float(self.fpr) < 1.0:
            raise MembenchError(f"sharpness: fpr must be in (0, 1), got {self.fpr!r}")
        if self.threshold is not None and (isinstance(self.threshold, bool)
                                           or not isinstance(self.threshold, (int, float))
                                           or not np.isfinite(self.threshold)):
            raise MembenchError(f"sharpness: threshold must be a finite number, got {self.threshold!r}")
        if self.products not in ("vjp", "jvp"):
            raise MembenchError(f"sharpness: products must be 'vjp' or 'jvp', got {self.products!r}")

    def measure(self, model: Any, images: np.ndarray, device: str, index_offset: int = 0,
                labels: np.ndarray | None = None, spectrum: bool = True) -> dict[str, np.ndarray]:
        """Per-image statistics of ``images`` under ``model``; image i uses probes of index ``index_offset + i``
        (and class ``labels[i]`` under a class-conditional model).

        ``spectrum=False`` skips the eigenvalues (the calibration needs only the score).
        """
        import torch

        from membench.models.denoisers.labels import Conditioned

        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, len(images), self.batch_size):
            block = np.ascontiguousarray(images[start : start + self.batch_size], dtype=np.float32)
            idx = np.arange(start, start + len(block)) + index_offset
            x = torch.from_numpy(block).to(device)
            cond = None if labels is None else torch.from_numpy(np.asarray(labels[start : start + len(block)])).to(device)
            parts.append(sharpness_batch(Conditioned(model, cond), x, idx, float(self.sigma), self.probes,
                                         self.eigs if spectrum else 0,
                                         self.iters, self.seed, self.products))
        out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if not all(np.isfinite(v).all() for v in out.values()):
            raise MembenchError("sharpness: the model produced NaN or infinite values")
        return out

    def _calibration(self, model: Any, weights_key: str, train: Dataset, device: str) -> tuple[np.ndarray, np.ndarray]:
        """Sharpness of held-out and (up to 500) training images under ``model``.

        Memoized per (weights, data, configuration, device): students scored under one
        teacher's density share it, so `run --model all` calibrates each teacher once.
        Held-out and training images get probe indices far from the samples' (independent probes).
        """
        cfg = {k: v for k, v in self.config().items() if k not in ("threshold", "fpr")}  # the cut is applied later
        key = (weights_key, train.fingerprint(), json.dumps(cfg, sort_keys=True, default=str), device)
        if key not in _CALIBRATION:
            cond = bool(getattr(model, "num_classes", None))
            held = self.measure(model, np.asarray(train.heldout), device, index_offset=10_000_000,
                                labels=train.heldout_labels if cond else None, spectrum=False)["sharpness"]
            n_tr = min(len(train), MAX_CALIBRATION_TRAIN)
            pick = np.sort(np.random.default_rng(self.seed).choice(len(train), n_tr, replace=False))
            tr_s = self.measure(model, np.asarray(train.images[pick]), device, index_offset=20_000_000,
                                labels=train.labels[pick] if cond else None, spectrum=False)["sharpness"]
            _CALIBRATION[key] = (held, tr_s)
        return _CALIBRATION[key]

    def detect(self, samples: np.ndarray, train: Dataset, ctx: DetectorContext) -> DetectorOutput:
        from membench.detectors.knn import knn_l2
        from membench.analysis.roc import roc_auc

        check_compatible(samples, train)
        which = density_for(ctx.model)
        model, meta = ctx.load_denoiser(which)  # UnavailableError without a registered model
        shape = tuple(meta.get("image_shape", samples.shape[1:]))
        if shape != tuple(samples.shape[1:]):
            raise MembenchError(f"sharpness: the {which} model takes {shape} images, samples are {samples.shape[1:]}")
        if getattr(model, "num_classes", None):
            from membench.core.errors import UnavailableError

            if ctx.labels is None:
                raise UnavailableError("sharpness: a class-conditional model needs the samples' class labels")
            if train.labels is None or (train.heldout is not None and len(train.heldout)
                                        and train.heldout_labels is None):
                raise UnavailableError(f"sharpness: a class-conditional model needs class labels for {train.spec}")
        stats = self.measure(model, samples, ctx.device, labels=ctx.labels)
        score = stats.pop("sharpness")
        info: dict[str, Any] = {"density": which, "density_model": getattr(ctx.model, "teacher", None)
                                if which == "teacher" else getattr(ctx.model, "name", None),
                                "sigma": self.sigma, "products": self.products}
        threshold = self.threshold
        if train.heldout is not None and len(train.heldout):
            held, tr_s = self._calibration(model, _checkpoint_key(ctx.model, which), train, ctx.device)
            info.update({"calibration_auc_train_vs_heldout": roc_auc(tr_s, held), "n_heldout": len(held),
                         "n_train_scored": len(tr_s), "heldout_median": float(np.median(held)),
                         "train_median": float(np.median(tr_s))})
            if threshold is None:
                threshold = float(np.quantile(held, 1.0 - self.fpr, method="higher"))
                info["calibration"] = f"held-out {1 - self.fpr:.0%} quantile ({len(held)} images)"
        elif threshold is None:
            raise MembenchError(f"sharpness: {train.spec} has no held-out images to calibrate on; pass threshold=")
        info["threshold"] = threshold
        _, nearest = knn_l2(samples, train.images, k=1)
        return DetectorOutput(scores=score, flags=score > threshold, nearest=nearest[:, 0], extras=stats, info=info)
