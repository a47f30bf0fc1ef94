"""Where membench writes: the workspace (--workspace > $MEMBENCH_HOME > ./membench-workspace),
explicit --results-dir/--cache-dir overrides, the user's umask, and never the package."""
from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import membench
from membench.cli import build_parser, main, resolve_paths
from membench.core.workspace import PACKAGE, Workspace, builtin_models_dir, resolve_results

REPO = Path(__file__).resolve().parents[2]


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def resolved(*argv: str):
    args = build_parser().parse_args(list(argv))
    resolve_paths(args)
    return args


# --- resolution order --------------------------------------------------------------------

def test_default_workspace_is_under_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMBENCH_HOME")
    monkeypatch.chdir(tmp_path)
    args = resolved("run")
    assert args.workspace == tmp_path / "membench-workspace"
    assert args.results_dir == tmp_path / "membench-workspace" / "results"
    assert args.cache_dir == Path(os.environ["MEMBENCH_CACHE"])


def test_flag_beats_env_beats_default(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "env"))
    assert resolved("run").workspace == tmp_path / "env"
    args = resolved("run", "--workspace", str(tmp_path / "flag"))
    assert args.workspace == tmp_path / "flag" and args.results_dir == tmp_path / "flag" / "results"
    # relative paths are made absolute once, so a later chdir does not move the workspace
    monkeypatch.chdir(tmp_path)
    assert resolved("run", "--workspace", "rel").workspace == tmp_path / "rel"


def test_explicit_results_and_cache_dirs_override(tmp_path, monkeypatch):
    args = resolved("run", "--workspace", str(tmp_path / "w"), "--results-dir", str(tmp_path / "r"),
                    "--cache-dir", str(tmp_path / "c"))
    assert (args.workspace, args.results_dir, args.cache_dir) == (tmp_path / "w", tmp_path / "r", tmp_path / "c")
    monkeypatch.delenv("MEMBENCH_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolved("report").cache_dir == tmp_path / "home" / ".cache" / "membench"
    assert resolved("check", "--baseline", "b.json", "--workspace", str(tmp_path / "w")).results_dir == \
        tmp_path / "w" / "results" / "check"  # check recomputes beside, not into, the main results


def test_every_writing_command_takes_workspace():
    import argparse

    def leaves(parser, name):
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not nested:
            return [(name, parser)]
        return [leaf for a in nested for k, p in a.choices.items() for leaf in leaves(p, f"{name} {k}")]

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, p in sub.choices.items():
        for full, leaf in leaves(p, name):  # `weights fetch`, `weights list`: each action takes it
            assert any(a.dest == "workspace" for a in leaf._actions), full


def test_library_defaults_follow_the_workspace(tiny_teacher, workspace):
    assert resolve_results() == workspace / "results" and resolve_results("x") == Path("x")
    df = membench.run(models="tiny", n_samples=8, quality=False)
    assert len(df) == 1 and (workspace / "results" / "leaderboard.csv").is_file()


@pytest.mark.parametrize("where", ["flag", "env"])
def test_run_writes_into_the_workspace_only(tiny_teacher, tmp_path, monkeypatch, capsys, where):
    monkeypatch.chdir(tmp_path)
    other, ws = tmp_path / "other", tmp_path / "mine"
    monkeypatch.setenv("MEMBENCH_HOME", str(other if where == "flag" else ws))
    flag = ["--workspace", str(ws)] if where == "flag" else []
    code, out, err = cli(capsys, "run", "--model", "tiny", "--n-samples", "8", "--no-quality", "--quiet", *flag)
    assert code == 0, err
    assert (ws / "results" / "leaderboard.csv").is_file() and str(ws / "results" / "leaderboard.csv") in out
    assert not other.exists() and not (tmp_path / "membench-workspace").exists()
    assert os.environ["MEMBENCH_HOME"] == str(other if where == "flag" else ws)  # --workspace is not left behind


def test_results_dir_override_leaves_workspace_empty(tiny_teacher, workspace, tmp_path, capsys):
    res = tmp_path / "res"
    assert cli(capsys, "run", "--model", "tiny", "--n-samples", "8", "--no-quality", "--quiet",
               "--results-dir", str(res))[0] == 0
    assert (res / "leaderboard.csv").is_file() and not (workspace / "results").exists()


@pytest.mark.parametrize("bad", ["file", "package", "package-results", "package-cache"])
def test_bad_workspace_is_one_line(tmp_path, capsys, bad):
    (tmp_path / "f").write_text("x")
    argv = {"file": ["--workspace", str(tmp_path / "f")],
            "package": ["--workspace", str(PACKAGE / "ws")],
            "package-results": ["--results-dir", str(builtin_models_dir() / "results")],
            "package-cache": ["--cache-dir", str(PACKAGE / "cache")]}[bad]
    before = sorted(PACKAGE.iterdir())
    code, _, err = cli(capsys, "run", "--model", "teacher", "--n-samples", "4", "--quiet", *argv)
    assert code == 1 and len(err.strip().splitlines()) == 1 and err.startswith("membench: error:")
    assert ("not a folder" in err) if bad == "file" else ("inside the membench package" in err)
    assert sorted(PACKAGE.iterdir()) == before


# --- distill / train -----------------------------------------------------------------------

def test_distilled_student_lives_in_the_workspace_and_moves_with_it(tiny_teacher, tmp_path, capsys):
    ws = tmp_path / "ws"
    code, out, err = cli(capsys, "distill", "--teacher", "tiny", "--method", "cd:iterations=2,batch_size=4",
                         "--name", "stu", "--eval-samples", "0", "--quiet", "--workspace", str(ws))
    assert code == 0, err
    entry = ws / "registry" / "models" / "stu.toml"
    assert 'checkpoint = "models/stu"' in entry.read_text()  # relative: the workspace can be moved
    assert (ws / "models" / "stu" / "membench.json").is_file()
    assert f"--workspace {ws}" in out
    # another workspace does not know the student
    code, _, err = cli(capsys, "run", "--model", "stu", "--n-samples", "8", "--no-quality", "--quiet")
    assert code == 1 and "unknown model 'stu'" in err
    moved = tmp_path / "moved"
    shutil.move(ws, moved)
    code, out, err = cli(capsys, "run", "--model", "stu", "--n-samples", "8", "--no-quality", "--quiet",
                         "--workspace", str(moved))
    assert code == 0, err
    board = pd.read_csv(moved / "results" / "leaderboard.csv")
    assert list(board.model) == ["stu"]


def test_distill_refuses_a_name_a_builtin_would_hide(tiny_teacher, workspace, capsys):
    # with --force the workspace entry would be written but `--model cd-student` would find the built-in
    code, _, err = cli(capsys, "distill", "--teacher", "tiny", "--method", "cd:iterations=1", "--name", "cd-student",
                       "--force", "--eval-samples", "0", "--quiet")
    assert code == 1 and "would hide" in err and len(err.strip().splitlines()) == 1
    assert not workspace.exists()


def test_train_never_replaces_a_packaged_checkpoint_by_default(tiny_teacher, workspace):
    from membench.models.specs import resolve_model
    from membench.training.train import default_target

    assert default_target(resolve_model("teacher")) == workspace / "models" / "teacher"
    assert default_target(resolve_model("teacher-large")) == workspace / "models" / "teacher-large"
    assert default_target(resolve_model("tiny")) == tiny_teacher  # the user's own entry: its checkpoint


def test_train_out_is_recorded_and_registration_explained(tiny_teacher, tmp_path, capsys):
    out = tmp_path / "retrained"
    code, stdout, err = cli(capsys, "train", "--model", "tiny", "--out", str(out), "--steps", "1", "--quiet")
    assert code == 0, err
    assert f"membench train --model tiny --out {out} --force --steps 1" in (out / "README.md").read_text()
    assert "still names" in stdout and str(out) in stdout


def test_committed_cards_rebuild_their_own_folder():
    """Each committed model card's rebuild command writes into that folder (an explicit --out:
    the defaults go to the workspace), and its entry, if any, into the built-in registry."""
    cards = sorted(builtin_models_dir().glob("*/README.md"))
    assert len(cards) >= 4
    for card in cards:
        text = card.read_text().split("## Rebuild", 1)[1]
        command = text.split("```bash\n", 1)[1].split("\n```", 1)[0].strip()
        argv = shlex.split(command)
        if argv[0] == "membench":
            args = build_parser().parse_args(argv[1:])
            out = args.out
            if args.command == "distill":
                assert REPO / args.registry == PACKAGE / "assets" / "registry", card
                entry = (PACKAGE / "assets" / "registry" / "models" / f"{args.name}.toml").read_text()
                assert f"# written by: {command}" in entry, card
        else:
            out = argv[argv.index("--out") + 1]
        assert out and REPO / out == card.parent, card


# --- umask ---------------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from membench.core.io import atomic_directory, atomic_save_npz, atomic_write_text
    from membench.core.locks import file_lock
    import numpy as np
    root = Path(sys.argv[1])
    atomic_write_text(root / "a" / "f.txt", "x")
    atomic_save_npz(root / "a" / "g.npz", x=np.zeros(2))
    from safetensors.numpy import save_file
    with atomic_directory(root / "ckpt") as tmp:
        atomic_write_text(tmp / "inner.json", "{}")
        (tmp / "sub").mkdir()
        save_file({"w": np.zeros(2, np.float32)}, str(tmp / "sub" / "w.safetensors"))  # written 0600 by safetensors
        os.close(os.open(tmp / "private", os.O_CREAT | os.O_WRONLY, 0o600))
    with file_lock(root / "locks" / "l.lock"):
        pass
""")


@pytest.mark.parametrize("umask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_written_files_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    script = f"umask {umask:03o} && exec {shlex.quote(sys.executable)} -c {shlex.quote(WRITER)} {shlex.quote(str(tmp_path))}"
    subprocess.run(["sh", "-c", script], check=True, env=env, timeout=120)
    for p in ("a/f.txt", "a/g.npz", "ckpt/inner.json", "ckpt/sub/w.safetensors", "ckpt/private", "locks/l.lock"):
        assert stat.S_IMODE((tmp_path / p).stat().st_mode) == file_mode, p
    for p in ("a", "ckpt", "ckpt/sub", "locks"):
        assert stat.S_IMODE((tmp_path / p).stat().st_mode) == dir_mode, p


# --- the package is never written ------------------------------------------------------------

def package_snapshot() -> dict[str, tuple[int, int]]:
    """Every file and folder under the package (Python's own __pycache__ aside): size and mtime."""
    snap = {}
    for p in PACKAGE.rglob("*"):
        if "__pycache__" not in p.parts:
            st = p.stat()
            snap[str(p.relative_to(PACKAGE))] = (st.st_size if p.is_file() else -1, st.st_mtime_ns)
    return snap


def test_main_flows_never_write_into_the_package(tiny_teacher, tmp_path, monkeypatch, capsys):
    from membench.core.io import DIR_MODE, FILE_MODE
    from membench.data import load_dataset

    monkeypatch.delenv("MEMBENCH_HOME")  # the default workspace, under the current folder
    monkeypatch.chdir(tmp_path)
    ws = Workspace.resolve()
    assert ws.root == tmp_path / "membench-workspace"
    before = package_snapshot()
    ds = load_dataset("digits:n=16")
    np.savez(tmp_path / "s.npz", images=np.concatenate([ds.images[:4], ds.heldout[:4]]))
    flows = [
        ["list", "models"],
        ["run", "--model", "tiny", "--n-samples", "16"],
        ["detect", "--samples", str(tmp_path / "s.npz"), "--train", "digits:n=16", "--per-sample",
         str(ws.root / "per.csv")],
        ["distill", "--teacher", "tiny", "--method", "cd:iterations=2,batch_size=4", "--name", "stu",
         "--eval-samples", "8"],
        ["run", "--model", "stu", "--n-samples", "16", "--no-quality"],
        ["report"],
        ["sweep", "--quick", "--set", "sizes=8", "--set", "n_samples=8"],
    ]
    for argv in flows:
        code, _, err = cli(capsys, *argv, *([] if argv[0] == "list" else ["--quiet"]))
        assert code == 0, (argv, err)
    assert package_snapshot() == before
    for f in ("results/leaderboard.csv", "results/report/report.html", "models/stu/membench.json",
              "registry/models/stu.toml", "studies/sweep-quick/record.json", "per.csv"):
        assert (ws.root / f).is_file(), f
    assert set(os.listdir(tmp_path)) == {"s.npz", "membench-workspace", "registry", "models"}
    # everything written got the umask's modes, not mkstemp's 0600/0700
    for p in [ws.root, *ws.root.rglob("*")]:
        assert stat.S_IMODE(p.stat().st_mode) == (DIR_MODE if p.is_dir() else FILE_MODE), p
