"""membench: does my diffusion model reproduce its training images, and what does distillation do to that?

The public API (``membench.api``; importing it loads nothing heavy)::

    membench.run(models="teacher", detectors="l2ratio", n_samples=1000) -> pandas.DataFrame
    membench.detect(samples="samples.npz", train="digits:n=64", detectors="l2ratio")
    membench.api.quality(samples="samples.npz", train="digits:n=64")   # (membench.quality is the metrics package)
    membench.import_model("my-ddpm/", name="my-ddpm", train="my_train.npz")  # register a diffusers checkpoint

The command line (``membench`` / ``python -m membench``) wraps the same functions.
"""
from __future__ import annotations

__version__ = "0.1.0"

from membench.api import detect, run  # noqa: E402  (after __version__, which api's records stamp)
from membench.models.importing import import_model  # noqa: E402  (light: heavy imports happen inside)


__all__ = ["run", "detect", "import_model", "__version__"]
