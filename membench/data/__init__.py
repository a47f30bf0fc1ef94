"""Datasets: training images (N, C, H, W) in [-1, 1] plus a disjoint held-out split.

``DATASETS`` holds the named datasets: loaders ``load(**options) -> Dataset`` declared
lazily (``digits``), TOML entries ``registry/datasets/<name>.toml`` (``path = "..."`` or
``base = "<dataset>"`` with ``[params]``) and plugins. A plugin of the entry-point group
``membench.datasets`` is either a loader (its entry-point name is the dataset's name; its
keyword parameters are the ``name:k=v`` options) or a registry folder (a path) holding
``datasets/<name>.toml``. Whatever the source, the images are validated on load.

Modules, one job each: ``validate`` (the rules every source ends in), ``files`` (paths:
``.npz``, ``.npy``, folders), ``images`` (image files), ``hf`` (Hugging Face ``save_to_disk``
folders), ``arrays`` (``from_arrays``, ``from_torch``), ``datasets`` (``Dataset`` and name/path
resolution), ``digits`` (the built-in).
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

__all__ = ["DATASETS", "Dataset", "as_dataset", "from_arrays", "from_torch", "load_dataset", "load_images"]
__getattr__ = lazy_exports(__name__, {
    **{name: "membench.data.datasets" for name in ("Dataset", "as_dataset", "load_dataset", "load_images")},
    **{name: "membench.data.arrays" for name in ("from_arrays", "from_torch")},
})
