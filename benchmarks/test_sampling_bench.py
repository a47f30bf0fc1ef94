"""Sampling throughput of each default model, and the sharpness detector before and after
its forward graph is shared between products.

* ``sampling, N samples``: every registered model samples the same N noises (batches of
  ``SAMPLE_BATCH``); the baseline is ``teacher``, so each ratio is a model's time over the
  teacher's and its inverse is the student's speed-up (teacher: 35 network evaluations a
  sample; students 1 or 2).
* ``sampling batch size``: 1,000 samples of ``cd-student`` (the same network as the teacher,
  one evaluation a sample) at batch sizes 125..1000 against the default ``SAMPLE_BATCH``.
* ``sharpness``: ``Sharpness.measure`` on 128 held-out digits under ``teacher``, today's
  code against the same estimator with a fresh forward pass per product (the code before
  the change); the two must give the same bits, which the benchmark asserts.
"""
from __future__ import annotations

import numpy as np
import pytest

from membench.executors.base import SAMPLE_BATCH

N = 200
_MODELS: dict[str, tuple] = {}


def _model(name: str):
    from membench.models.checkpoints import load_denoiser
    from membench.models.specs import make_sampler, resolve_model

    if name not in _MODELS:
        spec = resolve_model(name)
        model, meta = load_denoiser(spec.checkpoint, "cpu")
        _MODELS[name] = (model, make_sampler(spec.sampler), tuple(meta["image_shape"]))
    return _MODELS[name]


def _sample(name: str, batch_size: int = SAMPLE_BATCH, n: int = N) -> np.ndarray:
    from membench.models.samples import generate

    model, sampler, shape = _model(name)
    return generate(model, sampler, n, 0, shape, "cpu", batch_size=batch_size)[0]


def _models() -> list[str]:
    from membench.core.registry import names

    return names("models")


@pytest.mark.benchmark(group=f"sampling, {N} samples on CPU")
def test_baseline_sampling_teacher(benchmark):
    out = benchmark.pedantic(_sample, args=("teacher",), rounds=2, warmup_rounds=1)
    assert out.shape[0] == N
    benchmark.extra_info["samples_per_s"] = N / benchmark.stats.stats.mean


@pytest.mark.benchmark(group=f"sampling, {N} samples on CPU")
@pytest.mark.parametrize("name", [m for m in _models() if m != "teacher"])
def test_sampling(benchmark, name):
    out = benchmark.pedantic(_sample, args=(name,), rounds=2, warmup_rounds=1)
    assert out.shape[0] == N
    benchmark.extra_info["samples_per_s"] = N / benchmark.stats.stats.mean


@pytest.mark.benchmark(group="sampling batch size, 1000 samples of cd-student")
def test_baseline_sampling_batch_default(benchmark):
    benchmark.pedantic(_sample, args=("cd-student", SAMPLE_BATCH, 1000), rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="sampling batch size, 1000 samples of cd-student")
@pytest.mark.parametrize("batch", [b for b in (125, 250, 1000) if b != SAMPLE_BATCH])
def test_sampling_batch(benchmark, batch):
    benchmark.pedantic(_sample, args=("cd-student", batch, 1000), rounds=3, warmup_rounds=1)


# ------------------------------------------------------------------ sharpness


def _sharpness_inputs():
    from membench.data import load_dataset
    from membench.detectors import make_detector
    from membench.models.specs import resolve_model

    model, _, _ = _model("teacher")
    images = np.asarray(load_dataset(resolve_model("teacher").dataset).heldout[:128])
    return make_detector("sharpness"), model, images


@pytest.fixture
def fresh_forward(monkeypatch):
    """The estimator as it was: every product runs its own forward pass."""
    from membench.detectors import sharpness

    class FreshForward(sharpness._Products):
        def __call__(self, u):
            self._graph = None
            return super().__call__(u)

    monkeypatch.setattr(sharpness, "_Products", FreshForward)


_SHARP: dict[str, dict] = {}


@pytest.mark.benchmark(group="sharpness, 128 images under teacher")
def test_baseline_sharpness_fresh_forward_per_product(benchmark, fresh_forward):
    det, model, images = _sharpness_inputs()
    _SHARP["before"] = benchmark.pedantic(det.measure, args=(model, images, "cpu"), rounds=2, warmup_rounds=0)


@pytest.mark.benchmark(group="sharpness, 128 images under teacher")
def test_sharpness_shared_forward(benchmark):
    det, model, images = _sharpness_inputs()
    out = benchmark.pedantic(det.measure, args=(model, images, "cpu"), rounds=2, warmup_rounds=0)
    if "before" in _SHARP:  # the same bits as the code before the change
        for k, v in _SHARP["before"].items():
            assert out[k].tobytes() == v.tobytes(), k
