"""Fault loops (issue 13): ``membench run`` and ``membench distill`` killed (SIGKILL, in a real
process) or interrupted (SIGINT, Ctrl-C) at named points (``membench.core.faults``), then rerun:
the rerun's outputs equal an uninterrupted run's, byte for byte (records' JSON up to their time
stamps), and nothing is left over (no temporary files, no lock files a clean run would not have,
no half-written student). Corrupt or partial records are detected, reported and recomputed.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from membench.cli import main

REPO = Path(__file__).resolve().parent.parent
RUN = ["run", "--model", "tiny", "--detector", "l2ratio,carlini", "--n-samples", "64", "--no-quality",
       "--device", "cpu", "--quiet"]
DISTILL = ["distill", "--teacher", "tiny", "--method", "cd:iterations=2,batch_size=8", "--name", "stu",
           "--eval-samples", "8", "--device", "cpu", "--quiet"]
TIMING = {"created", "detect_seconds", "wall_time_s"}  # when and how long: the only fields a rerun changes


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _untimed(obj):
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if k not in TIMING}
    return obj


def same_outputs(a: Path, b: Path) -> None:
    """Same files; the same bytes, except the time stamps inside JSON files and model cards (and
    the pid inside lock files)."""
    fa, fb = files(a), files(b)
    assert sorted(fa) == sorted(fb), set(fa) ^ set(fb)
    for name, data in fa.items():
        if name.endswith(".lock"):
            continue  # a lock file holds its last holder's pid, for a curious human: the names must match
        if name.endswith(".json"):
            assert _untimed(json.loads(data)) == _untimed(json.loads(fb[name])), name
        elif name.endswith("README.md"):
            keep = lambda t: [ln for ln in t.decode().splitlines() if "wall" not in ln.lower()]  # noqa: E731
            assert keep(data) == keep(fb[name]), name
        else:
            assert data == fb[name], name


def no_leftovers(*roots: Path) -> None:
    for root in roots:
        assert not [p for p in root.rglob("*") if p.name.endswith(".tmp") or ".old-" in p.name], root


def in_process(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def killed(argv: list[str], fault: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``membench argv`` in a real process that kills itself at ``fault`` (``point:KILL[:n]``)."""
    full = {**os.environ, **env, "PYTHONPATH": str(REPO), "MEMBENCH_FAULT": fault,
            "OMP_NUM_THREADS": str(torch.get_num_threads())}  # the same threads: the same floats
    return subprocess.run([sys.executable, "-m", "membench", *argv], env=full, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def dirs(tiny_teacher, tmp_path, workspace, monkeypatch):
    out = {k: tmp_path / k for k in ("clean", "broken", "cache-clean", "cache-broken")}
    return {**out, "registry": tmp_path / "registry", "ws": workspace}


# --------------------------------------------------------------------------- run


def test_run_killed_or_interrupted_then_rerun_is_identical(dirs, capsys, monkeypatch):
    clean = [*RUN, "--results-dir", str(dirs["clean"]), "--cache-dir", str(dirs["cache-clean"])]
    broken = [*RUN, "--results-dir", str(dirs["broken"]), "--cache-dir", str(dirs["cache-broken"])]
    assert in_process(clean, capsys)[0] == 0
    env = {"MEMBENCH_REGISTRY": str(dirs["registry"]), "MEMBENCH_HOME": str(dirs["ws"])}

    # Ctrl-C once the samples are made, before the cache is written; then after the first record
    for fault in ("samples-generated:INT", "record-written:INT"):
        monkeypatch.setenv("MEMBENCH_FAULT", fault)
        code, err = in_process(broken, capsys)
        assert code == 130 and err.strip().splitlines() == ["membench: interrupted; nothing half-written was kept"]
    monkeypatch.delenv("MEMBENCH_FAULT")
    # SIGKILL (a real process): the first record's arrays on disk, its JSON not yet
    proc = killed(broken, "record-arrays-written:KILL", env)
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    code, err = in_process(broken, capsys)
    assert code == 0, err
    same_outputs(dirs["clean"], dirs["broken"])  # records, arrays, leaderboard, lock files
    same_outputs(dirs["cache-clean"], dirs["cache-broken"])  # the sample cache too
    no_leftovers(dirs["broken"], dirs["cache-broken"])


# --------------------------------------------------------------------------- distill


def test_distill_killed_or_interrupted_then_rerun_is_identical(dirs, capsys, monkeypatch, tmp_path):
    ws_clean, ws_broken = tmp_path / "ws-clean", tmp_path / "ws-broken"
    assert in_process([*DISTILL, "--workspace", str(ws_clean)], capsys)[0] == 0
    broken = [*DISTILL, "--workspace", str(ws_broken)]
    env = {"MEMBENCH_REGISTRY": str(dirs["registry"])}

    # Ctrl-C during the model card's evaluation (the defect): nothing is written, the rerun is not refused
    monkeypatch.setenv("MEMBENCH_FAULT", "distill-evaluating:INT")
    code, err = in_process(broken, capsys)
    assert code == 130 and len(err.strip().splitlines()) == 1
    monkeypatch.delenv("MEMBENCH_FAULT")
    assert files(ws_broken) == {} if ws_broken.exists() else True

    # Ctrl-C after training, before the evaluation
    monkeypatch.setenv("MEMBENCH_FAULT", "distill-trained:INT")
    assert in_process(broken, capsys)[0] == 130
    monkeypatch.delenv("MEMBENCH_FAULT")
    assert not (ws_broken / "models" / "stu").exists() and not (ws_broken / "registry").exists()
    # SIGKILL (a real process) between the checkpoint's rename and the entry's write: the one partial state
    proc = killed(broken, "distill-checkpoint-placed:KILL", env)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (ws_broken / "models" / "stu").is_dir() and not (ws_broken / "registry" / "models" / "stu.toml").exists()

    with pytest.warns(UserWarning, match="without its registry entry .* recomputing it"):
        code, err = in_process(broken, capsys)  # no --force: the half-written student is found and recomputed
    assert code == 0, err
    same_outputs(ws_clean, ws_broken)
    no_leftovers(ws_broken)
    # a complete student is still refused without --force
    code, err = in_process(broken, capsys)
    assert code == 1 and "already exists" in err


# --------------------------------------------------------------------------- corrupt records


def _corrupt_json(p: Path) -> None:
    p.write_text(p.read_text()[:40])


def _corrupt_arrays(p: Path) -> None:
    npz = p.with_suffix(".npz")
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))


def _drop_arrays(p: Path) -> None:
    p.with_suffix(".npz").unlink()


def _drop_key(p: Path) -> None:
    d = json.loads(p.read_text())
    del d["metrics"]
    p.write_text(json.dumps(d))


@pytest.mark.parametrize("damage,why", [(_corrupt_json, "corrupt record"), (_corrupt_arrays, "do not match"),
                                        (_drop_arrays, "partial record"), (_drop_key, "missing metrics")],
                         ids=["json", "arrays", "no-arrays", "no-metrics"])
def test_corrupt_record_is_reported_and_recomputed(dirs, capsys, damage, why):
    res = dirs["clean"]
    argv = [*RUN[:4], "l2ratio", "--n-samples", "16", *RUN[7:], "--results-dir", str(res),
            "--cache-dir", str(dirs["cache-clean"])]
    assert in_process(argv, capsys)[0] == 0
    rec = next((res / "records" / "detection" / "tiny").glob("*.json"))
    good = files(res)
    damage(rec)

    if damage is _corrupt_json or damage is _drop_key:  # the leaderboard keeps the row, marked
        from membench.store.leaderboard import from_store

        with pytest.warns(UserWarning):
            board = from_store(res)
        row = board[board["model"] == "tiny"]
        assert len(row) == 1 and row["status"].item() == "corrupt" and "rerun" in row["note"].item()

    with pytest.warns(UserWarning) as caught:
        code, err = in_process(argv, capsys)
    assert code == 0, err
    said = [str(w.message) for w in caught if "recomputing" in str(w.message)]
    assert len(said) == 1 and why in said[0] and str(rec) in said[0]
    same = {k: v for k, v in good.items() if not k.endswith(".json")}
    assert {k: v for k, v in files(res).items() if not k.endswith(".json")} == same  # arrays byte-identical
    board = pd.read_csv(res / "leaderboard.csv")
    assert list(board["status"]) == ["ok"]
    np.testing.assert_array_equal(np.load(rec.with_suffix(".npz"))["noise_index"], np.arange(16))


def test_cli_warnings_are_one_line():
    from membench.cli import _one_line_warning

    assert _one_line_warning("x.json: corrupt record\nmore", UserWarning, "f.py", 3) == \
        "membench: warning: x.json: corrupt record\n"
