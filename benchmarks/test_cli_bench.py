"""Start-up cost of the commands that only list or explain: `membench list`, `--help`.

Each is a fresh interpreter (what a user waits for), reported as a multiple of a bare
`python -c pass` measured in the same run. Listing imports only the registries' lazy
tables (no torch, numpy or pandas), so these stay a small multiple of interpreter start.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
GROUP = "CLI start-up, fresh interpreter"
COMMANDS = {
    "list_distillers": ["-m", "membench", "list", "distillers"],
    "list_models": ["-m", "membench", "list", "models"],
    "help": ["-m", "membench", "--help"],
    "run_help": ["-m", "membench", "run", "--help"],
}


def launch(args: list[str]) -> None:
    subprocess.run([sys.executable, *args], check=True, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL)


@pytest.mark.benchmark(group=GROUP)
def test_baseline_python_startup(benchmark):
    benchmark.pedantic(launch, args=(["-c", "pass"],), rounds=7, warmup_rounds=1)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_membench(benchmark, name):
    benchmark.pedantic(launch, args=(COMMANDS[name],), rounds=7, warmup_rounds=1)
