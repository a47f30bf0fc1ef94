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
                 regenerate: bool = True) -> Report:
    """Write ``report.html``, ``leaderboard.csv/.md`` and ``effect.csv/.md`` into ``out_dir``
    (default ``<results>/report``) and return what was written."""
    from membench.analysis.effect import effect_table, format_effect
    from membench.core.workspace import resolve_results
    from membench.report import html, plots
    from membench.report.grids import SampleSource, model_grid, pair_grid
    from membench.store import leaderboard
    from membench.store.directions import quality_columns
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
    effect = effect_table(records, problems, pairs)

    qcols = quality_columns(board.columns)
    figures: dict[str, Any] = {
        "memorized": plots.memorized_per_model(board),
        "quality": plots.quality_vs_memorization(board, qcols),
        "pairs": [(p["row"], plots.teacher_vs_student(p)) for p in pairs],
    }
    source = SampleSource(Path(cache_dir) if cache_dir else None, device=device, regenerate=regenerate)
    grids: list[tuple[str, Any, str]] = []  # (title, Grid or None, why not)
    for p in pairs:
        r = p["row"]
        title = f"{r['detector']}: {r['teacher']} (teacher) vs {r['student']} ({r['role']}), seed {r['seed']}"
        try:
            grids.append((title, pair_grid(p, source, top), ""))
        except MembenchError as exc:
            grids.append((title, None, str(exc)))
    for rec in records:
        if rec.kind == "detection" and rec.subject.get("role") == "teacher" and rec.ok:
            title = f"{rec.test['name']}: {rec.subject['name']} (teacher), n={rec.n}, seed {rec.seed}"
            try:
                grids.append((title, model_grid(rec, source, top), ""))
            except MembenchError as exc:
                grids.append((title, None, str(exc)))

    board_view = leaderboard.format_table(board)
    effect_view = format_effect(effect) if not effect.empty else pd.DataFrame()
    page = html.render(board_view, effect_view, figures, grids, problems, results_dir=results_dir,
                       created=time.strftime("%Y-%m-%d %H:%M:%S %z"))
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
