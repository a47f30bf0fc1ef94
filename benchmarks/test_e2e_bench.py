"""The main job end to end: ``membench run --model all --detector all`` (1,000 samples per
model, quality included), cold (a fresh workspace and sample/feature cache), in a fresh
interpreter, as a user runs it.

The baseline is a fixed amount of arithmetic measured in the same run: ten float32
2048x2048 matrix products (about 172 GFLOP), so the ratio says how many of those the job
costs on whatever machine runs it; ``extra_info`` keeps the absolute seconds (the goal is
under 60 s on the 2-core project machine).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GROUP = "end-to-end main job, cold"


def _gemms() -> None:
    import torch

    a = torch.randn(2048, 2048)
    for _ in range(10):
        a @ a


def _main_job() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(REPO), "MEMBENCH_CACHE": f"{tmp}/cache", "HF_HUB_OFFLINE": "1"}
        subprocess.run([sys.executable, "-m", "membench", "run", "--model", "all", "--detector", "all",
                        "--workspace", f"{tmp}/ws", "--quiet"], check=True, cwd=tmp, env=env,
                       stdout=subprocess.DEVNULL)


@pytest.mark.benchmark(group=GROUP)
def test_baseline_ten_gemms_2048(benchmark):
    benchmark.pedantic(_gemms, rounds=5, warmup_rounds=1)


@pytest.mark.benchmark(group=GROUP)
def test_main_job_cold(benchmark):
    benchmark.pedantic(_main_job, rounds=1, warmup_rounds=0)
    benchmark.extra_info["seconds"] = benchmark.stats.stats.mean
