"""What `membench run`/`detect` print: the compact table and the paired effects fit 100 columns,
plain ASCII off a terminal, machine formats carry only data; progress stays off a pipe."""
import io
import json
import re
import sys

import numpy as np
import pandas as pd
import pytest

from membench.cli import main
from membench.report.terminal import WIDTH, render_data, render_table

from tests.conftest import REPO

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOARD = REPO / "benchmarks" / "leaderboard"


def default_run() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The committed results of `membench run --model all --detector all`, cut to l2ratio,carlini."""
    board = pd.read_csv(BOARD / "leaderboard.csv")
    effect = pd.read_csv(BOARD / "effect.csv")
    dets = ["l2ratio", "carlini"]
    return (board[board["detector"].isin(dets)].reset_index(drop=True),
            effect[effect["detector"].isin(dets)].reset_index(drop=True))


@pytest.mark.parametrize("tty", [False, True])
def test_default_output_fits_100_columns(tty):
    board, effect = default_run()
    assert len(board) == 16 and len(effect) == 12  # 8 models x 2 detectors; 6 students/controls x 2
    buf = io.StringIO()
    render_table(board, effect, buf, width=WIDTH, tty=tty, footer=["leaderboard: x"])
    text = buf.getvalue()
    plain = ANSI.sub("", text)
    lines = plain.splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    if not tty:
        assert text.isascii() and text == plain  # no escape codes, no Unicode off a terminal
    for model in board["model"].unique():
        assert model in plain
    # every student's row: its own same-nearest share, then its NFE-matched control's as the null
    ci = lambda r: f"{r['same_nearest']:.2f} [{r['same_nearest_ci_low']:.2f}, {r['same_nearest_ci_high']:.2f}]"  # noqa: E731
    for _, r in effect[effect["role"] == "student"].iterrows():
        ctrl = effect[(effect["role"] == "control") & (effect["nfe"] == r["nfe"])
                      & (effect["detector"] == r["detector"])].iloc[0]
        row = [line for line in lines if line.split()[:2] == [r["student"], r["detector"]]]
        assert len(row) == 1 and row[0].rstrip().endswith(f"{ci(r)}  {ci(ctrl)}"), row
    assert "no null measured" not in plain and "teacher-euler1 at 1 NFE" in plain


def test_machine_formats_carry_only_data():
    board, effect = default_run()
    back = pd.read_csv(io.StringIO(render_data("csv", board, effect)))
    assert list(back.columns) == list(board.columns) and len(back) == len(board)
    data = json.loads(render_data("json", board, effect))
    assert len(data["leaderboard"]) == 16 and len(data["effect"]) == 12
    assert data["effect"][0]["mcnemar_p"] == pytest.approx(effect["mcnemar_p"][0])
    md = render_data("markdown", board, effect)
    assert md.count("\n|") >= 16 + 12


def test_run_prints_effects_and_cached_pairs(tiny_teacher, tmp_path, capsys):
    from tests.report.test_report import add_student_entries

    reg = tmp_path / "registry" / "models"
    add_student_entries(tmp_path / "registry")
    (reg / "tiny-euler1.toml").write_text('role = "control"\ncheckpoint = "models/tiny"\nsampler = "euler:steps=1"\n'
                                          'dataset = "digits:n=16"\nteacher = "tiny"\n')
    argv = ["run", "--model", "tiny,stu,tiny-euler1", "--detector", "l2ratio", "--n-samples", "12",
            "--results-dir", str(tmp_path / "res"), "--no-quality", "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if not line.startswith("leaderboard: ")]  # a path is not cut
    assert out.isascii() and max(len(line) for line in table) <= 100
    assert "stu" in out and "McNemar" in out and "(a control)" in out and "cached" not in out
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if line.startswith("cached: ")]) == 3
    assert main([*argv, "--format", "json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)  # nothing but the data on stdout
    assert {r["model"] for r in data["leaderboard"]} == {"tiny", "stu", "tiny-euler1"}
    assert all(r["cached"] for r in data["leaderboard"])
    stu = next(r for r in data["effect"] if r["student"] == "stu")
    assert stu["status"] == "ok" and stu["n_paired"] == 12


def _sample_sets(tmp_path):
    """A folder of PNGs (teacher-like) and an .npz holding the same images in another order,
    with its noise indices inside: paired by noise they agree image for image."""
    from PIL import Image

    from membench.data import load_dataset

    ds = load_dataset("digits:n=16")
    imgs = np.concatenate([ds.images[:6], ds.heldout[:6]])
    folder = tmp_path / "a"
    folder.mkdir()
    names = [f"img{k:02d}.png" for k in range(len(imgs))]
    for name, im in zip(names, imgs):
        Image.fromarray(np.round((im[0] + 1) * 127.5).astype(np.uint8)).save(folder / name)
    noise = np.arange(100, 100 + len(imgs))
    pd.DataFrame({"file": names[::-1], "noise_index": noise[::-1]}).to_csv(tmp_path / "a.csv", index=False)
    perm = np.random.default_rng(0).permutation(len(imgs))
    a_reloaded = load_dataset(str(folder)).images
    np.savez(tmp_path / "b.npz", images=a_reloaded[perm], noise_index=noise[perm])
    return folder, names


def test_detect_pairs_two_sample_sets_by_noise_index(tmp_path, capsys):
    folder, names = _sample_sets(tmp_path)
    per = tmp_path / "per.csv"
    code = main(["detect", "--samples", str(folder), "--noise-index", str(tmp_path / "a.csv"),
                 "--samples", str(tmp_path / "b.npz"), "--noise-index", "noise_index", "--train", "digits:n=16",
                 "--per-sample", str(per), "--results-dir", str(tmp_path / "res"), "--format", "json", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    effect = json.loads(out.out)["effect"]
    assert len(effect) == 1 and effect[0]["student"] == "samples:b.npz" and effect[0]["teacher"] == "samples:a"
    # the same images, paired by noise: identical flags and nearest images
    assert effect[0]["n_paired"] == 12 and effect[0]["same_nearest"] == 1.0 and effect[0]["diff"] == 0.0
    table = pd.read_csv(per)
    a = table[table["samples"] == "a"].sort_values("sample")
    assert list(a["file"]) == names and list(a["noise_index"]) == list(range(100, 112))
    b = table[table["samples"] == "b.npz"]
    assert b["file"].str.startswith("b.npz[").all()
    merged = a.merge(b, on="noise_index")
    assert (merged["nearest_train_index_x"] == merged["nearest_train_index_y"]).all()


@pytest.mark.parametrize("write,spec,match", [
    (lambda p: pd.DataFrame({"file": ["img00.png"], "noise_index": [1]}).to_csv(p / "i.csv", index=False),
     "i.csv", "no row for 11 image"),
    (lambda p: pd.DataFrame({"sample": range(12), "noise_index": [3] * 12}).to_csv(p / "i.csv", index=False),
     "i.csv", "given to 12 images"),
    (lambda p: pd.DataFrame({"sample": range(12), "n": range(12)}).to_csv(p / "i.csv", index=False),
     "i.csv", "no column 'noise_index'"),
    (lambda p: np.savez(p / "i.npz", noise_index=np.arange(5)), "i.npz", "5 noise indices for 12 images"),
    (lambda p: None, "missing.csv", "file not found"),
])
def test_bad_noise_index_is_one_line(tmp_path, capsys, write, spec, match):
    folder, _ = _sample_sets(tmp_path)
    write(tmp_path)
    code = main(["detect", "--samples", str(folder), "--noise-index", str(tmp_path / spec),
                 "--train", "digits:n=16", "--results-dir", str(tmp_path / "res"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and match in err[0], err
    assert not (tmp_path / "res").exists()


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_shows_on_a_terminal_only(monkeypatch):
    from membench.core import progress

    fake = _Tty()
    monkeypatch.setattr(sys, "stderr", fake)
    assert list(progress.track(range(5), "counting")) == list(range(5))
    with progress.task("a step", total=3) as bar:
        bar.advance(3)
        bar.update(loss=0.5)
    shown = ANSI.sub("", fake.getvalue())
    assert "done counting in" in shown and "done a step in" in shown and "0/5" in shown  # a bar, then its line
    progress.silence()
    try:
        before = fake.getvalue()
        assert list(progress.track(range(3), "quiet")) == [0, 1, 2]
        assert fake.getvalue() == before
    finally:
        progress.silence(False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal: nothing shown
    assert not progress.active()


def test_one_progress_module():
    """Every long loop reports through membench.core.progress; no ad-hoc bars or prints."""
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "membench").rglob("*.py") if "tqdm" in p.read_text()]
    assert offenders == []
