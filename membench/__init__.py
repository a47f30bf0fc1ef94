"""membench: does my diffusion model reproduce its training images, and what does distillation do to that?

Library entry points (imported lazily so that ``import membench`` stays fast)::

    membench.run(models="teacher", detectors="l2ratio", n_samples=1000) -> pandas.DataFrame
    membench.detect(samples="samples.npz", train="digits:n=64", detectors="l2ratio")
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["run", "detect", "__version__"]


def run(*args: Any, **kwargs: Any):  # noqa: ANN201 - see harness.run
    from membench.api import run as _run

    return _run(*args, **kwargs)


def detect(*args: Any, **kwargs: Any):  # noqa: ANN201 - see harness.detect
    from membench.api import detect as _detect

    return _detect(*args, **kwargs)


run.__doc__ = "Evaluate (model, detector) pairs; see membench.api.run."
detect.__doc__ = "Run detectors on samples made elsewhere; see membench.api.detect."
