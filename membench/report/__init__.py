"""``membench report``: a self-contained HTML report plus CSV/Markdown tables.

Everything is rebuilt from the result files: the leaderboard, the effect of distillation
(each student beside its teacher, paired by noise), the plots and the image grids. A corrupt
result file is listed under "Problems" and skipped; it never stops the report.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from membench.core.io import atomic_write_text
from membench.core.errors import MembenchError


@dataclass
class Report:
    html: Path
    files: list[Path]
    leaderboard: pd.DataFrame
    effect: pd.DataFrame
    problems: list[str] = field(default_factory=list)


def build_report(results_dir: str | Path | None = None, out_dir: str | Path | None = None,
                 cache_dir: str | Path | None = None, device: str = "cpu", top: int = 8,
                 regenerate: bool = True, progress: bool = False) -> Report:
    """Write ``report.html``, ``leaderboard.csv/.md`` and ``effect.csv/.md`` into ``out_dir``
    (default ``<results>/report``) and return what was written."""
    from membench.analysis.effect import effect_table, format_effect
    from membench.core.progress import task, track
    from membench.core.workspace import resolve_results
    from membench.report import html
    from membench.store import leaderboard
    from membench.store.records import has_records, iter_records

    results_dir = resolve_results(results_dir)
    if not has_records(results_dir):
        raise MembenchError(f"no results in {results_dir} (expected {results_dir / 'records'}; run `membench run` first)")
    if not isinstance(top, int) or top <= 0:
        raise MembenchError(f"--top must be a positive integer, got {top!r}")
    out_dir = Path(out_dir) if out_dir else results_dir / "report"
    problems: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported once, below, via `problems`
        records = list(iter_records(results_dir, problems=problems))
    board = leaderboard.build(records)
    if not records:
        raise MembenchError(f"no readable records in {results_dir / 'records'}" +
                            (f" ({len(problems)} corrupt)" if problems else ""))
    pairs: list[dict[str, Any]] = []
    with task("report: effect of distillation", enabled=progress):
        effect = effect_table(records, problems, pairs)
    with task("report: figures", enabled=progress):
        view = _tables_and_figures(board, effect, records, pairs, problems)
    view["grids"] = _grids(records, pairs, cache_dir, device, regenerate, top,
                           lambda items, what: track(items, what, enabled=progress))
    board_view = leaderboard.format_table(board)
    effect_view = format_effect(effect) if not effect.empty else pd.DataFrame()
    page = html.render(view, results_dir=results_dir, created=time.strftime("%Y-%m-%d %H:%M:%S %z"))
    files = {
        "report.html": page,
        "leaderboard.csv": board.to_csv(index=False),
        "leaderboard.md": ("# membench leaderboard\n\n" + leaderboard.DIRECTION_NOTE + "\n\n"
                           + board_view.to_markdown(index=False) + "\n"),
        "effect.csv": effect.to_csv(index=False),
        "effect.md": ("# Effect of distillation\n\n" + html.EFFECT_NOTE + "\n\n"
                      + (effect_view.to_markdown(index=False) if not effect_view.empty else "No students or controls.")
                      + "\n"),
    }
    written = []
    for name, text in files.items():
        atomic_write_text(out_dir / name, text)
        written.append(out_dir / name)
    return Report(html=out_dir / "report.html", files=written, leaderboard=board, effect=effect, problems=problems)


def _tables_and_figures(board: pd.DataFrame, effect: pd.DataFrame, records: list[Any], pairs: list[dict[str, Any]],
                        problems: list[str]) -> dict[str, Any]:
    """Everything on the page but the image grids."""
    from membench.analysis.effect import format_effect
    from membench.report import plots, summary
    from membench.report.terminal import UNICODE, compact_rows, effect_rows
    from membench.store import leaderboard
    from membench.store.directions import quality_columns

    main_board = compact_rows(board)
    main_board.insert(1, "seed", [int(s) for s in board["seed"]])
    main_board.insert(2, "n", [int(n) for n in board["n_samples"]])
    main_effect = pd.DataFrame()
    if not effect.empty:
        main_effect = effect_rows(effect, UNICODE)
        main_effect.insert(3, "seed", [int(s) for s in effect["seed"]])
    qcols = [c for c in quality_columns(board.columns) if board[c].notna().any() and not c.startswith("kid")]
    quality = {ref: [(png, col, f"{col.replace('_', ' ')} against memorized fraction")
                     for col in qcols if col.endswith(ref) for png in [plots.quality_vs_memorization(board, col)] if png]
               for ref in ("heldout", "train")}
    return {
        "problems": problems,
        "main_board": main_board, "detail_board": leaderboard.format_table(board),
        "main_effect": main_effect, "detail_effect": format_effect(effect) if not effect.empty else pd.DataFrame(),
        "says": summary.paragraphs(effect),
        "memorized": [(png, det, f"{det}: memorized fraction per model (95% Wilson interval); colour: role")
                      for det, png in plots.memorized_per_detector(board)],
        "pairs": [(plots.teacher_vs_student(p), f"{p['row']['student']} vs {p['row']['teacher']}",
                   f"{p['row']['detector']}: score histograms over the same {int(p['row']['n_paired'])} noises (left); "
                   "per noise, teacher against student (right), green where both land on the same training image")
                  for p in pairs],
        "detectors": _detector_figures(records),
        "quality_heldout": quality["heldout"], "quality_train": quality["train"],
    }


def _detector_figures(records: list[Any]) -> list[tuple[str, str, bytes | None]]:
    """Per detector: its direction in words and its per-sample scores per model (newest record per model)."""
    from membench.core.errors import MembenchError
    from membench.report import plots

    by_det: dict[str, dict[str, Any]] = {}
    for rec in sorted((r for r in records if r.kind == "detection" and r.ok), key=lambda r: r.created):
        by_det.setdefault(rec.test["name"], {})[rec.subject["name"]] = rec  # newest wins
    out = []
    for det in sorted(by_det):
        recs = sorted(by_det[det].values(), key=lambda r: ({"teacher": 0, "student": 1, "control": 2}.get(
            r.subject.get("role"), 3), r.subject["name"]))
        test = recs[0].test
        text = f"score {test.get('score', 'score')}, {plots.direction_text(test)}"
        scores = []
        for r in recs:
            try:
                scores.append((r.subject["name"], r.subject.get("role", ""), r.load_arrays()["scores"]))
            except (MembenchError, KeyError):
                continue
        out.append((det, text, plots.score_distributions(det, test, scores) if scores else None))
    return out


def _grids(records: list[Any], pairs: list[dict[str, Any]], cache_dir: Any, device: str, regenerate: bool,
           top: int, track: Any) -> list[tuple[str, list[Any]]]:
    """Per (teacher, student) pair: its grids ranked by the teacher's and by the student's score;
    then teachers without a student: their own grid. A grid repeating shown images is left out."""
    from membench.report.grids import SampleSource, model_grid, pair_grid
    from membench.report.plots import label

    source = SampleSource(Path(cache_dir) if cache_dir else None, device=device, regenerate=regenerate)
    seen: set[tuple] = set()
    sections: dict[str, list[Any]] = {}
    for p in track(pairs, "report: image grids"):
        r = p["row"]
        section = f"{label(r['student'], r['role'])} vs {label(r['teacher'], 'teacher')}"
        for by in ("teacher", "student"):
            try:
                g = pair_grid(p, source, top, by=by)
            except MembenchError as exc:
                sections.setdefault(section, []).append((f"{r['detector']}, ranked by the {by}'s score", str(exc)))
                break
            if g.noises not in seen:
                seen.add(g.noises)
                sections.setdefault(section, []).append(g)
    paired = {p["row"]["teacher"] for p in pairs}
    for rec in records:
        if rec.kind != "detection" or not rec.ok or rec.subject.get("role") != "teacher":
            continue
        if rec.subject["name"] in paired:
            continue  # its images are in its students' grids
        section = label(rec.subject["name"], rec.subject.get("role"))
        try:
            g = model_grid(rec, source, top)
        except MembenchError as exc:
            sections.setdefault(section, []).append((rec.test["name"], str(exc)))
            continue
        if g.noises not in seen:
            seen.add(g.noises)
            sections.setdefault(section, []).append(g)
    return list(sections.items())
