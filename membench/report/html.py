"""HTML assembly: one file, inline CSS, images as base64 PNG data URIs (no network, no scripts).

Layout for a 1280 px window: a short main table per section (never wider than the page),
the full tables folded in ``<details>``, figures in a two-column grid, image grids with a
label under every image.
"""
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
NULL_NOTE = ("Δ: student − teacher memorized fraction (paired 95% CI); same nearest: share of noises whose student "
             "sample has the teacher's sample's nearest training image (95% Wilson CI); "
             "null: the same share for the NFE-matched control (the teacher itself sampled with the student's number "
             "of network evaluations): what agreement with the teacher looks like without distillation.")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:16px auto;padding:0 16px;color:#222;
max-width:1220px}
h1{font-size:1.5em;margin-bottom:4px}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:1.6em}
h3{font-size:1.05em;margin:1.2em 0 .3em}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}
.fit{max-width:100%;overflow-x:auto}.fit table{width:auto}
.scroll{overflow-x:auto}.note{color:#555;font-size:13px;max-width:1100px}.problem{color:#a00}
details{margin:8px 0}summary{cursor:pointer;color:#1a4f8b;font-size:14px}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:12px 20px;align-items:start}
figure{margin:0}figcaption{font-size:12px;color:#333}
img{max-width:100%}img.plot{width:100%;height:auto}
img.grid{image-rendering:pixelated;width:72px;height:auto;display:block}
table.grid td{background:#fff;vertical-align:middle}table.grid figure{text-align:center}
table.grid figcaption{font-size:11px;max-width:96px;margin:2px auto 0}
table.grid td.cap{font-size:12px;max-width:190px}.grids{display:grid;grid-template-columns:repeat(auto-fill,
minmax(580px,1fr));gap:4px 20px;align-items:start}
.says{max-width:1100px;font-size:14px;line-height:1.45}.says h3{margin-bottom:2px}
code{font-size:12px}
"""


def _img(png: bytes, alt: str, cls: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="{cls}" alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _table(df: pd.DataFrame, table_id: str, cls: str = "scroll") -> str:
    if df.empty:
        return '<p class="note">(empty)</p>'
    head = "".join(f"<th>{escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{escape('' if pd.isna(v) else str(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f'<div class="{cls}"><table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _details(summary: str, inner: str, open_: bool = False) -> str:
    return f"<details{' open' if open_ else ''}><summary>{escape(summary)}</summary>{inner}</details>"


def _figs(items: list[tuple[bytes, str, str]]) -> str:
    """A grid of figures: (png, alt, caption)."""
    return "<div class='figs'>" + "".join(
        f"<figure>{_img(png, alt, 'plot')}<figcaption>{escape(cap)}</figcaption></figure>" for png, alt, cap in items
    ) + "</div>"


def _grid(grid: Any) -> str:
    rows = []
    for caption, cells in grid.rows:
        tds = "".join(f"<td><figure>{_img(png, lab, 'grid')}<figcaption>{escape(lab)}</figcaption></figure></td>"
                      for lab, png in cells)
        rows.append(f"<tr>{tds}<td class='cap'>{escape(caption)}</td></tr>")
    return f"<div><h3>{escape(grid.title)}</h3><table class='grid'><tbody>{''.join(rows)}</tbody></table></div>"


def render(view: dict[str, Any], results_dir: Path, created: str) -> str:
    """``view``: main_board, detail_board, main_effect, detail_effect (DataFrames), says [(heading,
    text)], detectors [(name, direction text, png or None)], memorized, pairs, quality_heldout,
    quality_train [(png, alt, caption)], grids [(section, [Grid or (title, why not)])], problems."""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>membench report</title>"
             f"<style>{CSS}</style></head><body>",
             "<h1>membench report</h1>",
             f"<p class='note'>Rebuilt from the result files in <code>{escape(str(results_dir))}</code> on "
             f"{escape(created)}. Sections: <a href='#leaderboard'>memorization</a> · <a href='#effect'>effect of "
             "distillation</a> · <a href='#detectors'>detectors</a> · <a href='#quality'>quality</a> · "
             "<a href='#grids'>images</a>.</p>"]
    if view["problems"]:
        parts.append("<h2 id='problems'>Problems</h2><ul>" +
                     "".join(f"<li class='problem'>{escape(p)} (skipped)</li>" for p in view["problems"]) + "</ul>")
    parts += ["<h2 id='leaderboard'>Memorization</h2>",
              "<p class='note'>Memorized: fraction of samples the detector flags (lower = less memorization), "
              "95% Wilson interval over samples. FID against the held-out images (lower = better). "
              "NFE: network evaluations per sample.</p>",
              _table(view["main_board"], "leaderboard-table", "fit"),
              _details("All columns (quality against held-out and training images, sampler, notes)",
                       f"<p class='note'>{escape(DIRECTION_NOTE)}</p>" + _table(view["detail_board"], "leaderboard-detail"))]
    if view["memorized"]:
        parts.append(_figs(view["memorized"]))
    parts.append("<h2 id='effect'>Effect of distillation</h2>")
    if view["main_effect"].empty:
        parts.append("<p class='note'>No students or controls with results.</p>")
    else:
        parts += ["<p class='note'>Each student and control against its teacher, noise by noise. "
                  f"{escape(NULL_NOTE)}</p>", _table(view["main_effect"], "effect-table", "fit")]
        if view["says"]:
            parts.append("<div class='says'>" + "".join(
                f"<h3>What this says: {escape(h)}</h3><p>{escape(t)}</p>" for h, t in view["says"]) + "</div>")
        parts.append(_details("All effect columns (transferred, suppressed, introduced, distances)",
                              f"<p class='note'>{escape(EFFECT_NOTE)}</p>" + _table(view["detail_effect"], "effect-detail")))
        if view["pairs"]:
            parts.append(_figs(view["pairs"]))
    parts.append("<h2 id='detectors'>Detectors: what each score says</h2><ul class='note'>" + "".join(
        f"<li><b>{escape(name)}</b>: {escape(text)}</li>" for name, text, _ in view["detectors"]) + "</ul>")
    figs = [(png, name, f"{name}: each sample's score per model, in the score's own units ({text})")
            for name, text, png in view["detectors"] if png]
    if figs:
        parts.append(_figs(figs))
    parts.append("<h2 id='quality'>Quality versus memorization</h2>")
    if view["quality_heldout"] or view["quality_train"]:
        parts.append("<p class='note'>Against the held-out images (the fair reference). Colour: model; "
                     "marker: detector.</p>")
        parts.append(_figs(view["quality_heldout"]))
        if view["quality_train"]:
            parts.append(_details("Against the training images (rewards memorization)", _figs(view["quality_train"])))
    else:
        parts.append("<p class='note'>No quality columns (FID, KID, precision, recall) in these results.</p>")
    parts.append("<h2 id='grids'>Most memorized samples</h2><p class='note'>Each row: a sample and the training "
                 "image nearest to it; for a student, the teacher's sample from the same noise first. Each pair is "
                 "shown ranked by the teacher's score and by the student's; a grid repeating the images of one "
                 "above is left out.</p>")
    for k, (section, grids) in enumerate(view["grids"]):
        inner = []
        for g in grids:
            if isinstance(g, tuple):
                inner.append(f"<p class='note'><b>{escape(g[0])}</b>: images unavailable: {escape(g[1])}</p>")
            else:
                inner.append(_grid(g))
        parts.append(_details(section, "<div class='grids'>" + "".join(inner) + "</div>", open_=(k == 0)))
    parts.append("</body></html>")
    return "\n".join(parts)
