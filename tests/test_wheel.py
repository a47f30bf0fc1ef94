"""The wheel: built from the sources (with a used checkout's leftovers), installed apart from the
checkout, and run from an empty folder: the built-ins come from package data, everything
written goes to the workspace, nothing into the installed package.

Commands (dependencies come from the test environment, hence ``--no-deps``)::

    python -m pip wheel --no-deps --no-build-isolation SRC -w DIST
    python -m pip install --no-deps --target SITE DIST/membench-*.whl
    cd EMPTY && PYTHONPATH=SITE python -m membench run --model cd-student --detector l2ratio --n-samples 50 --no-quality
    cd EMPTY && PYTHONPATH=SITE MEMBENCH_REGISTRY=USER/registry python -m membench distill --teacher tiny \\
        --method cd:iterations=2,batch_size=8 --name tiny-cd --eval-samples 0
    cd EMPTY && PYTHONPATH=SITE python -m membench run --model tiny-cd --n-samples 50   # quality on
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import write_tiny_registry

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "membench" / "assets"
STRAYS = ("membench/assets/models/teacher/notes.txt", "membench/core/__pycache__/io.cpython-311.pyc",
          "membench/assets/models/.teacher.123.tmp/x.json")


def pip(*args: str, cwd: Path | None = None) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of a copy of the sources to which a used checkout's leftovers were added: a stale
    egg-info manifest naming a stray file, bytecode and an interrupted write's temp folder."""
    import setuptools  # noqa: F401  (the build backend, without isolation: in the [test] extra)

    src = tmp_path_factory.mktemp("src")
    for f in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / f, src / f)
    shutil.copytree(REPO / "membench", src / "membench",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".*.tmp"))
    for stray in STRAYS:
        (src / stray).parent.mkdir(parents=True, exist_ok=True)
        (src / stray).write_text("stray")
    (src / "membench.egg-info").mkdir()
    (src / "membench.egg-info" / "SOURCES.txt").write_text("\n".join(STRAYS) + "\n")
    dist = tmp_path_factory.mktemp("dist")
    pip("wheel", "--no-deps", "--no-build-isolation", "-q", str(src), "-w", str(dist))
    (whl,) = dist.glob("membench-*.whl")
    return whl


@pytest.fixture(scope="module")
def site(wheel, tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    pip("install", "--no-deps", "--no-compile", "-q", "--target", str(site), str(wheel))
    return site


def test_wheel_ships_the_package_and_its_data_and_nothing_else(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    source = {str(p.relative_to(REPO)) for p in (REPO / "membench").rglob("*.py") if "__pycache__" not in p.parts}
    assert source <= names  # every module, subpackages included
    entries = {str(p.relative_to(REPO)) for p in (ASSETS / "registry").glob("*/*.toml")}
    weights = {str(p.relative_to(REPO)) for p in ASSETS.rglob("*.safetensors")}
    cards = {str(p.relative_to(REPO)) for p in ASSETS.glob("models/*/README.md")}
    assert {Path(w).parts[3] for w in weights} >= {"teacher", "teacher-large", "cd-student", "pd-student", "ct-student",
                                                   "digits-classifier", "digits-embedder"}
    assert entries and entries <= names and weights <= names and cards <= names
    package_files = {n for n in names if not n.startswith("membench-")}  # the rest is dist-info
    assert not package_files & set(STRAYS)
    assert not [n for n in package_files if n.endswith((".pyc", ".tmp")) or "egg-info" in n]
    data = {n for n in package_files if not n.endswith(".py")}
    tracked = {str(p.relative_to(REPO)) for p in ASSETS.rglob("*") if p.is_file() and not p.name.endswith(".py")
               and "__pycache__" not in p.parts}
    assert data == tracked, data ^ tracked  # exactly the assets: no stray, none missing


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else -1, p.stat().st_mtime_ns)
            for p in root.rglob("*")}


def test_installed_wheel_runs_from_an_empty_folder(site, _tiny_teacher_master, tmp_path):
    empty, user, cache = tmp_path / "empty", tmp_path / "user", tmp_path / "cache"
    empty.mkdir()
    # The user's own teacher, registered outside the workspace (MEMBENCH_REGISTRY), as in conftest.
    registry = write_tiny_registry(user)
    shutil.copytree(_tiny_teacher_master, user / "models" / "tiny")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMBENCH_", "PYTHON"))}
    env.update(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1", MEMBENCH_CACHE=str(cache), HF_HUB_OFFLINE="1",
               OMP_NUM_THREADS="2")
    before = snapshot(site / "membench")

    def membench(*argv: str, **extra: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "membench", *argv, "--quiet"], cwd=empty, env={**env, **extra},
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    found = subprocess.run([sys.executable, "-c", "import membench; print(membench.__file__)"], cwd=empty, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(found).is_relative_to(site), found  # the installed copy, not the checkout

    membench("run", "--model", "cd-student", "--detector", "l2ratio", "--n-samples", "50", "--no-quality")
    ws = empty / "membench-workspace"
    board = pd.read_csv(ws / "results" / "leaderboard.csv")
    assert list(board.model) == ["cd-student"] and board.n_samples.item() == 50 and board.status.item() == "ok"
    (result,) = (ws / "results" / "records" / "detection" / "cd-student").glob("*.json")
    assert result.with_suffix(".npz").is_file()
    assert json.loads(result.read_text())["samples"]["n"] == 50

    out = membench("distill", "--teacher", "tiny", "--method", "cd:iterations=2,batch_size=8", "--name", "tiny-cd",
                   "--eval-samples", "0", MEMBENCH_REGISTRY=str(registry)).stdout
    assert (ws / "models" / "tiny-cd" / "membench.json").is_file() and (ws / "models" / "tiny-cd" / "README.md").is_file()
    assert 'checkpoint = "models/tiny-cd"' in (ws / "registry" / "models" / "tiny-cd.toml").read_text()
    assert str(ws) in out and not (user / "models" / "tiny-cd").exists()

    membench("run", "--model", "tiny-cd", "--n-samples", "50", MEMBENCH_REGISTRY=str(registry))  # quality on
    board = pd.read_csv(ws / "results" / "leaderboard.csv").set_index("model")
    assert set(board.index) == {"cd-student", "tiny-cd"}
    assert board.loc["tiny-cd", "n_samples"] == 50 and pd.notna(board.loc["tiny-cd", "fid_heldout"])

    assert os.listdir(empty) == ["membench-workspace"]  # nothing else in the current folder
    assert snapshot(site / "membench") == before  # the installed package is untouched
