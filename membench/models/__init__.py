"""Models: registry entries, checkpoints, denoisers, samplers and sample sets.

``MODELS`` holds the model entries, one TOML file each: ``registry/models/<name>.toml``
(schema in ``membench.models.specs``), from the built-ins, the workspace and
``$MEMBENCH_REGISTRY``. Plugins: the entry-point group ``membench.models`` names a registry
folder (a path, or a function returning one) holding ``models/<name>.toml``; as for the
built-ins, relative checkpoint paths are resolved against the folder's parent.
"""
from membench.core.registry import Registry

MODELS = Registry("models", folders=True, code=False, describe="membench.models.specs:summary")
