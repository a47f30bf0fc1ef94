"""Executors: where a model's samples are made. ``EXECUTORS`` declares the built-ins lazily;
plugins use the entry-point group ``membench.executors`` and must have ``generate``.

The executor only makes samples; what is done with them (the sample cache, detection,
quality, the store) is the same for every executor (``models.samples.get_samples``,
``measure.measure``). ``make_executor`` is the one place an executor is chosen.
"""
from __future__ import annotations

from typing import Any

from membench.core.registry import Lazy, Registry

EXECUTORS = Registry("executors", required={
    "generate": (callable, "generate(spec, n, seed, device, progress) -> (images, noise_index, device)"),
}, builtins={
    "local": Lazy("membench.executors.local:LocalExecutor", "in this process (the default)"),
    "ray": Lazy("membench.executors.ray_cluster:RayExecutor",
                "shards of noise indices over the actors of a Ray cluster, one per GPU or CPU "
                "(pip install 'membench[ray]'; --address auto|HOST:PORT|ray://HOST:PORT)"),
})


def make_executor(executor: Any = "local", address: str | None = None) -> Any:
    """An executor object from its name (``local``, ``ray``) or the object itself.

    Connecting (Ray) happens here, so a bad address or a missing package fails before any work.
    """
    from membench.core.errors import MembenchError

    if not isinstance(executor, str):
        return executor
    if executor != "ray" and address is not None:
        raise MembenchError("--address is for --executor ray")
    cls = EXECUTORS.get(executor)
    return cls(address=address) if executor == "ray" else cls()
