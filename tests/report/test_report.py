"""`membench report` end to end on the tiny teacher, a student and a control (sampled at 1 and 2 steps)."""
import os
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from membench.cli import main
from membench.store.records import iter_records

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def add_student_entries(registry) -> None:
    """A student and a control of the tiny teacher: the same checkpoint, fewer sampling steps."""
    models = registry / "models"
    (models / "stu.toml").write_text('role = "student"\ncheckpoint = "models/tiny"\nsampler = "euler:steps=1"\n'
                                     'dataset = "digits:n=16"\nteacher = "tiny"\nmethod = "test"\n')
    (models / "tiny-euler2.toml").write_text('role = "control"\ncheckpoint = "models/tiny"\nsampler = "euler:steps=2"\n'
                                             'dataset = "digits:n=16"\nteacher = "tiny"\n')


@pytest.fixture
def reported(tiny_teacher, tmp_path, capsys):
    add_student_entries(tmp_path / "registry")
    res = tmp_path / "res"
    # threshold=1.0 flags (almost) every sample, so the transfer categories are populated.
    code = main(["run", "--model", "tiny,stu,tiny-euler2", "--detector", "l2ratio,l2ratio:threshold=1.0",
                 "--n-samples", "30", "--results-dir", str(res), "--quiet"])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    return res


def _run_report(capsys, res, *extra):
    code = main(["report", "--results-dir", str(res), "--top", "4", "--quiet", *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_report_tables_match_result_files(reported, capsys):
    code, out, err = _run_report(capsys, reported)
    assert code == 0, err
    rep = reported / "report"
    for name in ("report.html", "leaderboard.csv", "leaderboard.md", "effect.csv", "effect.md"):
        assert (rep / name).is_file(), name
    effect = pd.read_csv(rep / "effect.csv")
    assert sorted(set(effect["student"])) == ["stu", "tiny-euler2"] and (effect["status"] == "ok").all()
    assert len(effect) == 4  # 2 students/controls x 2 detectors
    # Recount one row straight from the .npz files.
    recs = {(r.subject["name"], r.test["name"]): r for r in iter_records(reported, "detection")}
    t = recs[("tiny", "l2ratio:threshold=1.0")].load_arrays()
    s = recs[("stu", "l2ratio:threshold=1.0")].load_arrays()
    row = effect[(effect.student == "stu") & (effect.detector == "l2ratio:threshold=1.0")].iloc[0]
    same = t["nearest"] == s["nearest"]
    assert row["n_transferred"] == int(np.sum(t["flags"] & s["flags"] & same))
    assert row["n_suppressed"] == int(np.sum(t["flags"] & ~s["flags"]))
    assert row["same_nearest"] == pytest.approx(same.mean())
    assert row["teacher_distance_median"] == pytest.approx(np.median(t["extra_d1"]))
    md = (rep / "leaderboard.md").read_text()
    assert "memorized ↓ (95% CI)" in md and "↓: lower is better" in md
    assert "Δ student−teacher ↓" in (rep / "effect.md").read_text()
    html = (rep / "report.html").read_text()
    # plot of fractions + 4 pair plots + quality-vs-memorization (run measures quality) + grids
    assert len(re.findall(r'<img class="plot"', html)) == 6
    assert len(re.findall(r'<img class="grid"', html)) == 4 * 4 + 2 * 4
    assert "images unavailable" not in html


def test_report_survives_corrupt_result_and_missing_cache(reported, capsys, tmp_path, monkeypatch):
    victim = next((reported / "records" / "detection" / "tiny-euler2").glob("*.json"))
    victim.write_text('{"schema": 2, "kind": ')  # truncated
    # Empty sample cache: the grids are regenerated from the registered models.
    monkeypatch.setenv("MEMBENCH_CACHE", str(tmp_path / "fresh-cache"))
    code, out, err = _run_report(capsys, reported)
    assert code == 0
    warnings = [l for l in err.splitlines() if l.startswith("membench: warning: skipped")]
    assert len(warnings) == 1 and victim.name in warnings[0]
    html = (reported / "report" / "report.html").read_text()
    assert "id='problems'" in html and victim.name in html
    assert "images unavailable" not in html  # regenerated, same content key
    assert len(pd.read_csv(reported / "report" / "effect.csv")) == 3


@pytest.mark.parametrize("setup,match", [
    (lambda res: None, "no results"),
    (lambda res: (res / "records").mkdir(parents=True), "no readable records"),
])
def test_report_bad_input(tmp_path, capsys, setup, match):
    res = tmp_path / "res"
    setup(res)
    code, out, err = _run_report(capsys, res)
    assert code == 1 and len(err.strip().splitlines()) == 1 and match in err


@pytest.mark.skipif(not CHROMIUM and not os.environ.get("MEMBENCH_REQUIRE_CHROMIUM"),
                    reason="chromium not installed (apt-get install chromium); CI sets MEMBENCH_REQUIRE_CHROMIUM=1")
def test_report_renders_in_headless_chromium(reported, capsys, tmp_path):
    assert CHROMIUM, "MEMBENCH_REQUIRE_CHROMIUM is set but chromium is not installed"
    assert _run_report(capsys, reported)[0] == 0
    html = reported / "report" / "report.html"
    shot = tmp_path / "shot.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,3000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # The rendered DOM (after parsing) has the tables, the headers and every inline image.
    assert 'id="leaderboard-table"' in dom.stdout and 'id="effect-table"' in dom.stdout
    assert "Effect of distillation" in dom.stdout and "Most memorized samples" in dom.stdout
    assert len(re.findall(r'src="data:image/png;base64,', dom.stdout)) == 6 + 4 * 4 + 2 * 4
    shot_run = subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", html.as_uri()], capture_output=True,
                              text=True, timeout=120)
    assert shot_run.returncode == 0 and shot.is_file(), shot_run.stderr[-2000:]
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert img.shape == (3000, 1400)
    # Not a blank page: plots and tables put dark ink on a good share of rows.
    assert (img < 128).any(axis=1).mean() > 0.3
    if os.environ.get("MEMBENCH_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["MEMBENCH_KEEP_SCREENSHOT"])
