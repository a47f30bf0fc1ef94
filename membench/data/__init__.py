"""Datasets: training images (N, C, H, W) in [-1, 1] plus a disjoint held-out split.

``DATASETS`` holds the named datasets: loaders ``load(**options) -> Dataset`` declared
lazily (``digits``), TOML entries ``registry/datasets/<name>.toml`` (``path = "..."`` or
``base = "<dataset>"`` with ``[params]``) and plugins. A plugin of the entry-point group
``membench.datasets`` is either a loader (its entry-point name is the dataset's name; its
keyword parameters are the ``name:k=v`` options) or a registry folder (a path) holding
``datasets/<name>.toml``. Whatever the source, the images are validated on load.
"""
from membench.core.lazy import lazy_exports
from membench.core.registry import Lazy, Registry

DATASETS = Registry("datasets", folders=True, required={
    "__call__": (callable, "a loader, load(**options) -> Dataset"),
}, builtins={
    "digits": Lazy("membench.data.digits:load",
                   "scikit-learn's handwritten digits, 8x8 gray, de-duplicated, seeded nested subsets; "
                   "options n, seed, holdout (default 300)"),
})

__all__ = ["DATASETS", "Dataset", "load_dataset", "load_images"]
__getattr__ = lazy_exports(__name__, {name: "membench.data.datasets" for name in __all__[1:]})
