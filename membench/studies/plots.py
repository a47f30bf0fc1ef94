"""Figures of the digits studies (matplotlib, Agg, imported lazily)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from membench.data import Dataset
from membench.studies.base import pyplot, write_figure


def _series(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows) per model/steps, in a stable order."""
    out = []
    for (model, steps), g in df.groupby(["model", df["steps"].fillna(-1)], sort=True):
        label = model if steps < 0 else f"{model}, {int(steps)} step(s)"
        out.append((label, g))
    order = {"teacher": 0, "control": 1, "student": 2}
    return sorted(out, key=lambda t: (order.get(t[1]["model"].iloc[0], 3), t[0]))


def _color(g: pd.DataFrame) -> str:
    """Black for the teacher; otherwise one colour per number of sampling steps, shared by a
    student and its NFE-matched control (they differ in marker and line style)."""
    if g["model"].iloc[0] == "teacher":
        return "k"
    steps = g["steps"].iloc[0]
    return f"C{int(np.log2(steps)) % 10}" if pd.notna(steps) and steps >= 1 else "C9"


def _plot(ax: Any, g: pd.DataFrame, x: str, y: str, lo: str | None, hi: str | None, label: str, style: str) -> None:
    color = _color(g)
    if g[x].isna().all():  # a fixed reference (the teacher of a distillation-length study)
        v = g[y].iloc[0]
        ax.axhline(v, ls="--" if g["model"].iloc[0] == "teacher" else ":", lw=1.2, label=label, color=color)
        return
    g = g.sort_values(x)
    xs = g[x].to_numpy(dtype=float)
    ys = g[y].to_numpy(dtype=float)
    if lo and hi and lo in g and hi in g:
        ax.errorbar(xs, ys, yerr=_yerr(g, y, lo, hi), fmt=style, capsize=2, ms=4, lw=1, label=label, color=color)
    else:
        ax.plot(xs, ys, style, ms=4, lw=1, label=label, color=color)


def _yerr(g: pd.DataFrame, y: str, lo: str, hi: str) -> list[np.ndarray]:
    """Asymmetric error bars from interval columns (clipped: a point estimate may sit on a bound)."""
    ys = g[y].to_numpy(dtype=float)
    return [np.clip(ys - g[lo].to_numpy(dtype=float), 0, None), np.clip(g[hi].to_numpy(dtype=float) - ys, 0, None)]


def _quiet_minor_labels(ax: Any) -> None:
    """Minor tick labels of a short log range overlap; call after the scale is set (it resets them)."""
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())


def _xscale(ax: Any, df: pd.DataFrame, x: str) -> None:
    """Log x for wide positive ranges; symlog when 0 is among the values (length 0 = the teacher's
    weights), with the axis starting at 0 (autoscaling would show negative decades)."""
    xs = df[x].dropna()
    pos = xs[xs > 0]
    if not len(pos) or xs.min() < 0 or xs.max() <= 20 * max(float(pos.min()), 1.0):
        return
    if xs.min() > 0:
        ax.set_xscale("log")
        ax.set_xlim(float(xs.min()) / 1.5, float(xs.max()) * 1.5)
    else:
        ax.set_xscale("symlog", linthresh=max(1.0, float(pos.min())))
        ax.set_xlim(-0.1 * max(1.0, float(pos.min())), float(xs.max()) * 1.5)
    _quiet_minor_labels(ax)


def study_figures(out: Path, table: pd.DataFrame, x: str, xlabel: str, title: str) -> None:
    """memorization.png (one panel per detector), pairing.png and quality.png."""
    plt = pyplot()
    dets = list(dict.fromkeys(table["detector"]))
    fig, axes = plt.subplots(1, len(dets), figsize=(4.6 * len(dets), 3.6), squeeze=False)
    for ax, det in zip(axes[0], dets):
        sub = table[table.detector == det]
        for label, g in _series(sub):
            style = "s-" if g["model"].iloc[0] == "control" else ("o-" if g["model"].iloc[0] == "student" else "^-")
            _plot(ax, g, x, "memorized", "ci_low", "ci_high", label, style)
        ax.set_title(f"{det}: memorized fraction (95% CI)", fontsize=9)
        ax.set_xlabel(xlabel), ax.set_ylim(-0.02, 1.02), _xscale(ax, table, x)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    write_figure(out, "memorization", fig)

    # pairing panels use the reference test (the L2 ratio) when it ran, else the first detector
    ref = "l2ratio" if "l2ratio" in dets else dets[0]
    sub = table[(table.detector == ref) & (table.model != "teacher")]
    if "nearest_agreement" in sub:
        panels = [("nearest_agreement", "agree_ci", "same nearest training image as the teacher"),
                  ("copies_kept", "copies_kept_ci", "teacher copies: same image kept"),
                  ("copies_flagged", "copies_flagged_ci", "teacher copies: still flagged")]
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
        for ax, (col, ci, name) in zip(axes, panels):
            for label, g in _series(sub):
                style = "s-" if g["model"].iloc[0] == "control" else "o-"
                _plot(ax, g, x, col, f"{ci}_low", f"{ci}_high", label, style)
            ax.set_title(f"{name} ({ref})", fontsize=9), ax.set_xlabel(xlabel), ax.set_ylim(-0.02, 1.02)
            _xscale(ax, table, x)
        axes[0].legend(fontsize=7)
        fig.suptitle(f"{title}: paired with the teacher's sample for the same noise", fontsize=10)
        write_figure(out, "pairing", fig)

    qcols = [c for c in ("pixel_fd_heldout", "fid_heldout", "precision_heldout", "recall_heldout")
             if c in table and table[c].notna().any()]
    sub = table[table.detector == ref]
    fig, axes = plt.subplots(1, len(qcols), figsize=(4.6 * len(qcols), 3.6), squeeze=False)
    for ax, col in zip(axes[0], qcols):
        for label, g in _series(sub):
            style = "s-" if g["model"].iloc[0] == "control" else ("o-" if g["model"].iloc[0] == "student" else "^-")
            _plot(ax, g, x, col, None, None, label, style)
        ax.set_title(col + (" (lower is better)" if "fd" in col or "fid" in col else ""), fontsize=9)
        ax.set_xlabel(xlabel), _xscale(ax, table, x)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{title}: sample quality against the held-out digits", fontsize=10)
    write_figure(out, "quality", fig)
    tradeoff_figure(out, table, x, title)


def tradeoff_figure(out: Path, table: pd.DataFrame, x: str, title: str) -> None:
    """tradeoff.png: memorized fraction against sample quality, one panel per detector.

    Each series (teacher, control or student at a number of steps) is joined in the order of the
    study's variable ``x``, so a reduction that is bought with quality shows as a move to the right.
    """
    qcol = next((c for c in ("fid_heldout", "pixel_fd_heldout") if c in table and table[c].notna().any()), None)
    if qcol is None:
        return
    plt = pyplot()
    dets = list(dict.fromkeys(table["detector"]))
    fig, axes = plt.subplots(1, len(dets), figsize=(4.6 * len(dets), 3.6), squeeze=False)
    for ax, det in zip(axes[0], dets):
        for label, g in _series(table[table.detector == det]):
            g = g.sort_values(x) if g[x].notna().any() else g
            kind = g["model"].iloc[0]
            style = "s:" if kind == "control" else ("o-" if kind == "student" else "^")
            qs, ys = g[qcol].to_numpy(dtype=float), g["memorized"].to_numpy(dtype=float)
            ax.errorbar(qs, ys, yerr=_yerr(g, "memorized", "ci_low", "ci_high"), fmt=style, capsize=2, ms=4, lw=1,
                        label=label, color=_color(g))
            if kind == "student" and len(g) > 1:  # mark where the student starts (smallest x)
                ax.annotate(f"{x}={g[x].iloc[0]:g}", (qs[0], ys[0]), fontsize=6, xytext=(3, 3),
                            textcoords="offset points")
        ax.set_xscale("log"), ax.set_ylim(-0.02, 1.02)
        _quiet_minor_labels(ax)
        ax.set_xlabel(f"{qcol} (lower is better)"), ax.set_title(f"{det}: memorized vs quality", fontsize=9)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{title}: memorization against sample quality", fontsize=10)
    write_figure(out, "tradeoff", fig)


def example_grid(out: Path, name: str, sets: dict[str, np.ndarray], data: Dataset, n: int = 10) -> None:
    """Rows: the teacher's nearest training image, then each image set; columns: the first noises."""
    from membench.detectors.knn import knn_l2

    plt = pyplot()
    first = next(iter(sets.values()))[:n]
    _, idx = knn_l2(first, data.images, k=1)
    rows = [("train NN of " + next(iter(sets)), data.images[idx[:, 0]])] + [(k, v[:n]) for k, v in sets.items()]
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.8, len(rows) * 0.85))
    for r, (label, imgs) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(imgs[c, 0], cmap="gray", vmin=-1, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle("same noise per column", fontsize=8)
    write_figure(out, name, fig)
