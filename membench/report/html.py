"""HTML assembly: one file, inline CSS, images as base64 PNG data URIs (no network, no scripts)."""
from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from membench.store.leaderboard import DIRECTION_NOTE
EFFECT_NOTE = (
    "Each student (distilled) or control (the teacher at the student's step count) beside its teacher, "
    "over the same initial noises. Δ = student − teacher memorized fraction with Newcombe's paired 95% interval; "
    "McNemar's exact test (mid-p in brackets) on the discordant noises. "
    "transferred: both reproduce the same training image from the same noise; switched image: both flagged, "
    "different images; suppressed: teacher only; introduced: student only. "
    "Same nearest image: how often the student's nearest training image is the teacher's for the same noise, "
    "whatever the threshold; student farther: among those, how often the student's copy is farther from the image "
    "(less precise). Fractions: 95% Wilson intervals.")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1500px}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}
.scroll{overflow-x:auto}.note{color:#555;font-size:13px;max-width:1100px}.problem{color:#a00}
table.grid th{max-width:330px;white-space:normal}
figure{display:inline-block;margin:8px 16px 16px 0;vertical-align:top}
figcaption{font-size:12px;color:#333;max-width:700px}
img{image-rendering:pixelated;max-width:100%}
"""


def _img(png: bytes, alt: str, cls: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="{cls}" alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _table(df: pd.DataFrame, table_id: str) -> str:
    if df.empty:
        return '<p class="note">(empty)</p>'
    head = "".join(f"<th>{escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{escape('' if pd.isna(v) else str(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f'<div class="scroll"><table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def render(board_view: pd.DataFrame, effect_view: pd.DataFrame, figures: dict[str, Any],
           grids: list[tuple[str, Any, str]], problems: list[str], results_dir: Path, created: str) -> str:
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>membench report</title>"
             f"<style>{CSS}</style></head><body>",
             "<h1>membench report</h1>",
             f"<p class='note'>Rebuilt from the result files in <code>{escape(str(results_dir))}</code> on {escape(created)}.</p>"]
    if problems:
        parts.append("<h2 id='problems'>Problems</h2><ul>" +
                     "".join(f"<li class='problem'>{escape(p)} (skipped)</li>" for p in problems) + "</ul>")
    parts += ["<h2 id='leaderboard'>Leaderboard</h2>", f"<p class='note'>{escape(DIRECTION_NOTE)}</p>",
              _table(board_view, "leaderboard-table")]
    if figures.get("memorized"):
        parts.append("<figure>" + _img(figures["memorized"], "memorized fraction per model", "plot") +
                     "<figcaption>Memorized fraction per model and detector, 95% Wilson intervals.</figcaption></figure>")
    parts += ["<h2 id='effect'>Effect of distillation</h2>", f"<p class='note'>{escape(EFFECT_NOTE)}</p>",
              _table(effect_view, "effect-table") if not effect_view.empty
              else "<p class='note'>No students or controls with results.</p>"]
    for row, png in figures.get("pairs", []):
        parts.append("<figure>" + _img(png, f"{row['student']} vs {row['teacher']} {row['detector']}", "plot") +
                     f"<figcaption>{escape(row['detector'])}: score histograms of {escape(row['teacher'])} (teacher) "
                     f"and {escape(row['student'])} over the same {int(row['n_paired'])} noises (left); distance to the "
                     "nearest training image per noise, green where both land on the same image (right).</figcaption></figure>")
    parts.append("<h2 id='quality'>Quality versus memorization</h2>")
    if figures.get("quality"):
        parts.append("<figure>" + _img(figures["quality"], "quality versus memorization", "plot") +
                     "<figcaption>Quality metric against memorized fraction (95% Wilson interval).</figcaption></figure>")
    else:
        parts.append("<p class='note'>No quality columns (FID, KID, precision, recall) in these results.</p>")
    parts.append("<h2 id='grids'>Most memorized samples</h2><p class='note'>Each row: a sample and the training "
                 "image nearest to it; for students, the teacher's sample from the same noise beside it.</p>")
    for title, grid, note in grids:
        if grid is None:
            parts.append(f"<p class='note'><b>{escape(title)}</b>: images unavailable: {escape(note)}</p>")
            continue
        body = "".join(f"<tr><td>{_img(png, caption, 'grid')}</td><td>{escape(caption)}</td></tr>"
                       for caption, png in grid.rows)
        parts.append(f"<h3>{escape(title)}</h3><table class='grid'><thead><tr><th>{escape(' · '.join(grid.columns))}"
                     f"</th><th>noise, category, scores</th></tr></thead><tbody>{body}</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts)
