"""`membench report` end to end on the tiny teacher, a student and a control (sampled at 1 and 2 steps)."""
import os
import re
import shutil

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
    # per detector: memorized fractions and score distributions; per student/control row a pair plot;
    # one quality figure per quality metric (FID, precision, recall) and reference that has values
    board = pd.read_csv(rep / "leaderboard.csv")
    n_quality = sum(board[c].notna().any() for c in board.columns
                    if re.fullmatch(r"(fid|precision|recall)_(heldout|train)", c))
    assert n_quality >= 2
    assert len(re.findall(r'<img class="plot"', html)) == 2 * 2 + len(effect) + n_quality
    grids = grid_rows(html)
    assert 4 <= len(grids) <= 8  # 4 pairs, ranked by teacher and by student, repeats left out
    assert all(len(rows) == 4 for rows in grids.values())
    # no two grids of one student/teacher pair show the same noises
    pair_of = lambda title: title.split(": ", 1)[1].split(", seed")[0]  # noqa: E731
    assert len({(pair_of(t), tuple(rows)) for t, rows in grids.items()}) == len(grids)
    assert len(re.findall(r'<img class="grid"', html)) == 4 * 4 * len(grids)
    assert "images unavailable" not in html and "teacher teacher" not in html
    assert "<details" in html and 'id="leaderboard-detail"' in html  # the full table, folded
    # the "what this says" paragraph of the student, filled from its effect rows
    stu = effect[(effect.student == "stu") & (effect.detector == "l2ratio")].iloc[0]
    assert f"What this says: stu (student of tiny" in html
    assert f"{stu['diff']:+.3f} [{stu['diff_ci_low']:+.3f}, {stu['diff_ci_high']:+.3f}]" in html


def grid_rows(html: str) -> dict[str, list[str]]:
    """Each image grid's title -> the noises of its rows, in order."""
    out = {}
    for block in re.findall(r"<h3>([^<]*)</h3><table class='grid'>(.*?)</table>", html, re.S):
        out[block[0]] = re.findall(r"noise (\d+):", block[1])
    return out


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


needs_chromium = pytest.mark.skipif(
    not CHROMIUM and not os.environ.get("MEMBENCH_REQUIRE_CHROMIUM"),
    reason="chromium not installed (apt-get install chromium); CI sets MEMBENCH_REQUIRE_CHROMIUM=1")


@needs_chromium
def test_report_fits_1280_px_in_headless_chromium(reported, capsys, tmp_path):
    from tests.report.chromium import layout, no_horizontal_scroll, screenshot

    assert CHROMIUM, "MEMBENCH_REQUIRE_CHROMIUM is set but chromium is not installed"
    assert _run_report(capsys, reported)[0] == 0
    html = reported / "report" / "report.html"
    measured = layout(html)
    assert measured["viewport"] == 1280
    assert no_horizontal_scroll(measured) == []  # neither the page nor a main table scrolls sideways
    dom = measured["dom"]
    assert 'id="leaderboard-table"' in dom and 'id="effect-table"' in dom and 'id="leaderboard-detail"' in dom
    assert "Effect of distillation" in dom and "Most memorized samples" in dom
    assert len(re.findall(r'src="data:image/png;base64,', dom)) == len(re.findall(r'src="data:image/png;base64,',
                                                                                  html.read_text()))
    shot = screenshot(html, tmp_path / "shot.png", height=1600)
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert img.shape == (1600, 1280)
    assert (img < 128).any(axis=1).mean() > 0.3  # not a blank page: tables and plots put ink on many rows
    if os.environ.get("MEMBENCH_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["MEMBENCH_KEEP_SCREENSHOT"])


@needs_chromium
def test_layout_probe_sees_a_table_too_wide(tmp_path):
    """The check can fail: a 40-column main table scrolls at 1280 px and is reported."""
    from tests.report.chromium import layout, no_horizontal_scroll

    cells = "".join(f"<td>column number {k} with a long value</td>" for k in range(40))
    page = tmp_path / "wide.html"
    page.write_text("<!DOCTYPE html><html><body><div style='overflow-x:auto'><table id='leaderboard-table'><tr>"
                    f"{cells}</tr></table></div></body></html>")
    problems = no_horizontal_scroll(layout(page))
    assert len(problems) == 1 and "leaderboard-table" in problems[0]
