"""The Ray executor against the local one: the same bytes on the default models, and its bad input.

A local Ray cluster (2 CPUs) is started once for the module. Both executors sample with one
torch thread and batches of 8 (so 16 samples are 2 batches, one on each of 2 actors): the network's
float arithmetic depends on the batch and the thread count, and both are kept equal, so the
results must be equal byte for byte.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from membench.cli import main
from membench.executors.base import aligned_shards
from membench.executors.local import LocalExecutor

N, BATCH = 16, 8


def test_shards_are_whole_batches_in_order():
    assert aligned_shards(24, 2, 8) == [(0, 16), (16, 24)]
    assert aligned_shards(1000, 3, 500) == [(0, 500), (500, 1000)]
    assert aligned_shards(7, 4, 500) == [(0, 7)]
    shards = aligned_shards(2001, 4, 100)
    assert shards[0][0] == 0 and shards[-1][1] == 2001 and all(a % 100 == 0 for a, _ in shards)
    assert all(b == c for (_, b), (c, _) in zip(shards, shards[1:]))


@pytest.fixture(scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ray_executor(one_thread):
    import ray

    from membench.executors.ray_cluster import RayExecutor

    ex = RayExecutor(num_cpus=2, batch_size=BATCH)
    yield ex
    ray.shutdown()


def _run(root: Path, executor) -> None:
    import membench

    membench.run(models="all", detectors="l2ratio", n_samples=N, seed=3, device="cpu", quality=False,
                 results_dir=root / "results", cache_dir=root / "cache", executor=executor)


def test_ray_gives_the_local_executor_s_bytes_on_every_default_model(tmp_path, ray_executor):
    from membench.core.registry import names
    from membench.store.records import iter_records

    assert len(ray_executor.workers("cpu")) == 2  # the shards really are spread
    _run(tmp_path / "local", LocalExecutor(batch_size=BATCH))
    _run(tmp_path / "ray", ray_executor)
    local = sorted((tmp_path / "local/cache/samples").glob("*.npz"))
    assert len(local) == len(names("models"))
    for path in local:
        with np.load(path) as a, np.load(tmp_path / "ray/cache/samples" / path.name) as b:
            assert a["images"].tobytes() == b["images"].tobytes(), path.name
            np.testing.assert_array_equal(a["noise_index"], b["noise_index"])
    recs = {r.subject["name"]: r for r in iter_records(tmp_path / "local/results", "detection")}
    assert len(recs) == len(names("models"))
    for r in iter_records(tmp_path / "ray/results", "detection"):
        mine, theirs = r.load_arrays(), recs[r.subject["name"]].load_arrays()
        assert set(mine) == set(theirs)
        for k in mine:
            assert mine[k].tobytes() == theirs[k].tobytes(), (r.subject["name"], k)
        assert r.metrics["memorized"].value == recs[r.subject["name"]].metrics["memorized"].value


def _cli(tmp_path, capsys, *extra):
    rc = main(["run", "--model", "teacher", "--n-samples", "4", "--no-quality", "--device", "cpu",
               "--workspace", str(tmp_path / "ws"), "--cache-dir", str(tmp_path / "cache"), *extra])
    err = capsys.readouterr().err.strip()
    return rc, err


def test_unreachable_address_is_one_line_and_writes_nothing(tmp_path, capsys):
    rc, err = _cli(tmp_path, capsys, "--executor", "ray", "--address", "127.0.0.1:1")
    assert rc == 1 and len(err.splitlines()) == 1 and "cannot reach a Ray cluster" in err
    assert not (tmp_path / "ws").exists() and not (tmp_path / "cache").exists()


def test_ray_missing_is_one_line(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as without the extra
    rc, err = _cli(tmp_path, capsys, "--executor", "ray")
    assert rc == 1 and len(err.splitlines()) == 1 and "membench[ray]" in err
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize("extra, words", [(["--executor", "slurm"], "slurm"),
                                          (["--address", "auto"], "--executor ray")])
def test_bad_executor_options(tmp_path, capsys, extra, words):
    rc, err = _cli(tmp_path, capsys, *extra)
    assert rc == 1 and len(err.splitlines()) == 1 and words in err
