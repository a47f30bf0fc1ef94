"""Sampling spread over a Ray cluster (https://docs.ray.io): one actor per GPU, or per CPU.

A CPU actor computes with as many torch threads as this process (``threads``; the float
arithmetic of the network depends on the thread count as well as on the batch: measured up to
2e-6 apart at 1 and 2 threads), and takes as many of the cluster's CPUs.

Each actor holds the models it was sent (a checkpoint travels as its files' bytes through
Ray's object store, so workers need membench installed but not the driver's folders) and
samples shards of noise indices. Shards are whole sampling batches (``aligned_shards``), so
sample i is bit for bit what the local executor makes; the driver gathers the shards in
index order and the caller caches and measures them as usual (``models.samples.get_samples``).

``address``: None starts a Ray instance on this machine (or joins ``$RAY_ADDRESS``);
``auto`` joins the cluster started here with ``ray start --head``; ``HOST:PORT`` joins a
cluster's head; ``ray://HOST:PORT`` goes through the Ray client (``ray[client]``).
"""
from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from membench.core.errors import MembenchError
from membench.executors.base import SAMPLE_BATCH, aligned_shards, checkpoint_files

CONNECT_TIMEOUT_S = 5.0


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MembenchError("--executor ray needs Ray: pip install 'membench[ray]'") from None
    return ray


def check_reachable(address: str) -> None:
    """An explicit HOST:PORT (or ray://HOST:PORT) must accept a connection; Ray itself would retry for a minute."""
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise MembenchError(f"--address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise MembenchError(f"--address {address}: cannot reach a Ray cluster there ({exc.strerror or exc})") from None


class _Worker:
    """The actor: models by checkpoint hash, loaded once each; samples one shard per call."""

    def __init__(self, device: str, threads: int):
        import torch

        self.device = "cuda" if device == "gpu" else "cpu"
        self.models: dict[str, tuple[Any, tuple[int, ...]]] = {}
        if self.device == "cpu":
            torch.set_num_threads(threads)  # the driver's count: same bits as the local executor

    def sample(self, files: dict[str, bytes], ckpt_hash: str, sampler: str, seed: int, start: int, stop: int,
               batch_size: int, labels: np.ndarray | None = None, parameterization: str | None = None) -> np.ndarray:
        import tempfile
        from pathlib import Path

        from membench.executors.base import sample_range, write_checkpoint_files
        from membench.models.checkpoints import checkpoint_hash, load_denoiser

        if ckpt_hash not in self.models:
            with tempfile.TemporaryDirectory() as tmp:
                root = write_checkpoint_files(files, Path(tmp) / "ckpt")
                if checkpoint_hash(root) != ckpt_hash:
                    raise MembenchError("the checkpoint changed on its way to a Ray worker")
                from types import SimpleNamespace

                # the entry's declared parameterization travels with the files (a diffusers folder may not say)
                where = SimpleNamespace(checkpoint=str(root), parameterization=parameterization, revision=None)
                model, meta = load_denoiser(where, self.device)
            self.models[ckpt_hash] = (model, tuple(meta["image_shape"]))
        model, shape = self.models[ckpt_hash]
        return sample_range(model, sampler, seed, start, stop, shape, self.device, batch_size, labels=labels)


@dataclass
class RayExecutor:
    address: str | None = None
    batch_size: int = SAMPLE_BATCH
    num_cpus: int | None = None  # only when starting a Ray instance here (tests: 2)
    threads: int | None = None  # torch threads (and Ray CPUs) per CPU actor; default: this process's
    _actors: dict[str, list[Any]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        import torch

        ray = _import_ray()
        self.threads = self.threads or torch.get_num_threads()
        if self.address not in (None, "auto"):
            check_reachable(self.address)
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "logging_level": "ERROR"}
            if self.address is None and self.num_cpus is not None:
                kwargs["num_cpus"] = self.num_cpus
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise MembenchError(f"--executor ray: cannot connect to Ray at {self.address or 'a new local instance'}: "
                                    f"{first}") from None

    def workers(self, device: str) -> list[Any]:
        """One actor per GPU of the cluster (``device`` auto or cuda), else one per ``threads`` CPUs."""
        ray = _import_ray()
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
        if device.startswith("cuda") and not gpus:
            raise MembenchError(f"--device {device}: the Ray cluster has no GPU")
        kind = "gpu" if gpus and device != "cpu" else "cpu"
        if kind not in self._actors:
            threads = int(self.threads or 1)
            if kind == "gpu":
                actor, count = ray.remote(num_gpus=1, num_cpus=0)(_Worker), gpus
            else:
                actor, count = ray.remote(num_cpus=min(threads, max(cpus, 1)))(_Worker), max(1, cpus // threads)
            self._actors[kind] = [actor.remote(kind, threads) for _ in range(count)]
        return self._actors[kind]

    def generate(self, spec: Any, n: int, seed: int, device: str, progress: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, str, np.ndarray | None]:
        """Samples 0..n-1 of ``seed`` from ``spec``, shards over the actors, gathered in index order
        (with each index's class label, drawn here, for a class-conditional model)."""
        ray = _import_ray()
        from membench.models.checkpoints import checkpoint_hash
        from membench.models.formats import inspect_checkpoint
        from membench.models.samples import model_labels

        if str(spec.checkpoint).startswith("hf:"):
            raise MembenchError(f"model {spec.name!r}: the Ray executor takes local checkpoint folders; "
                                "download the hub checkpoint first (membench import keeps the hub id)")
        param = getattr(spec, "parameterization", None)
        found = inspect_checkpoint(spec.checkpoint, param)
        labels = model_labels(spec, found.num_classes, seed, np.arange(n, dtype=np.int64))

        actors = self.workers(device)
        files = ray.put(checkpoint_files(spec.checkpoint))
        ckpt = checkpoint_hash(spec.checkpoint)
        shards = aligned_shards(n, len(actors), self.batch_size)
        futures = [actors[i % len(actors)].sample.remote(files, ckpt, spec.sampler, seed, a, b, self.batch_size,
                                                          None if labels is None else labels[a:b], param)
                   for i, (a, b) in enumerate(shards)]
        try:
            parts = ray.get(futures)
        except ray.exceptions.RayError as exc:
            first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise MembenchError(f"sample {spec.name} on Ray: {first}") from None
        where = "cuda" if self._actors.get("gpu") is actors else "cpu"
        return np.concatenate(parts), np.arange(n, dtype=np.int64), f"ray:{where}x{len(actors)}", labels
