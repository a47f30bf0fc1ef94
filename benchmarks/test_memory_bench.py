"""Peak memory of a detector run against 10k, 100k and 1M memory-mapped training images.

Each size runs `l2ratio` (through `membench.detect`, as `membench detect` would) in its own
process (`benchmarks/memrun.py`), on 1,000 synthetic samples against a synthetic `.npy`
training set opened memory-mapped; the figure is the process's peak resident memory
(`ru_maxrss`, touched memory-mapped pages included). The baseline is the 10k run of the same
dimension; the bound checked is the issue's: every size within 10% of the 10k figure plus
one reference chunk (`membench.detectors.knn.plan_tiles`). Dim 64 (1x8x8 images).
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from membench.detectors.knn import MARGIN, plan_tiles

REPO = Path(__file__).resolve().parent.parent
N_SAMPLES = 1000
CASES = {(1, 8, 8): (10_000, 100_000, 1_000_000)}
_PEAKS: dict = {}


def _write(path: Path, n: int, shape: tuple, seed: int) -> None:
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, *shape))
    rng = np.random.default_rng(seed)
    for s in range(0, n, 65536):
        arr[s : s + 65536] = rng.uniform(-1, 1, (min(65536, n - s), *shape)).astype(np.float32)
    arr.flush()
    del arr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("memory")

    def get(shape, n):
        name = f"{'x'.join(map(str, shape))}-{n}"
        train, samples = root / f"train-{name}.npy", root / f"samples-{'x'.join(map(str, shape))}.npy"
        if not train.exists():
            _write(train, n, shape, seed=n)
        if not samples.exists():
            _write(samples, N_SAMPLES, shape, seed=1)
        return train, samples

    return get


def run(train: Path, samples: Path) -> dict:
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "memrun.py"), str(train), str(samples)],
                         check=True, capture_output=True, text=True, cwd=REPO,
                         env={**__import__("os").environ, "PYTHONPATH": str(REPO), "MEMBENCH_HOME": str(train.parent / "ws")})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _case(benchmark, files, shape, n):
    dim = int(np.prod(shape))
    benchmark.group = f"peak memory, l2ratio, {N_SAMPLES} samples, dim {dim}"
    train, samples = files(shape, n)
    result: dict = {}
    benchmark.pedantic(lambda: result.update(run(train, samples)), rounds=1, iterations=1, warmup_rounds=0)
    chunk_mib = plan_tiles(N_SAMPLES, n, dim, 2 + MARGIN).chunk * dim * 4 / 2**20
    benchmark.extra_info.update(peak_mib=result["maxrss_mib"], train_n=n, dim=dim, chunk_mib=chunk_mib,
                                detect_seconds=result["seconds"])
    _PEAKS[(dim, n)] = result["maxrss_mib"]
    return dim, chunk_mib, result["maxrss_mib"]


@pytest.mark.parametrize("shape", sorted(CASES))
def test_baseline_peak_memory_10k(benchmark, files, shape):
    _case(benchmark, files, shape, 10_000)


@pytest.mark.parametrize("shape,n", [(s, n) for s, ns in sorted(CASES.items()) for n in ns if n != 10_000])
def test_peak_memory(benchmark, files, shape, n):
    dim, chunk_mib, peak = _case(benchmark, files, shape, n)
    base = _PEAKS.get((dim, 10_000))
    assert base is not None, "run with the 10k baseline (the whole file)"
    bound = 1.1 * base + chunk_mib
    benchmark.extra_info.update(baseline_peak_mib=base, bound_mib=bound)
    assert peak <= bound, f"peak {peak:.0f} MiB at {n} > 1.1 x {base:.0f} MiB + one chunk {chunk_mib:.0f} MiB"
