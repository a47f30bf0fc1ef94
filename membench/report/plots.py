"""Report figures as PNG bytes (matplotlib, headless Agg backend, imported lazily).

Every figure is drawn at most ~620 px wide so that two sit side by side, legible, in a
1280 px browser window; many panels are many figures (the page lays them out in a grid),
never one long strip. Scores are plotted in their own units with their direction stated.
"""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

ROLE_COLORS = {"teacher": "#1f77b4", "student": "#d62728", "control": "#7f7f7f", "samples": "#2ca02c"}
DPI = 100
WIDTH_IN = 6.0  # 600 px


def label(name: str, role: str | None) -> str:
    """A model named once, with its role unless the name already says it ("teacher", "cd-student")."""
    role = role or ""
    return name if not role or role in name else f"{name} ({role})"


def direction_text(test: dict[str, Any]) -> str:
    """'lower = more memorized' / 'higher = more memorized', with the flagging threshold."""
    hi = bool(test.get("higher_is_memorized"))
    thr = (test.get("config") or {}).get("threshold")
    text = f"{'higher' if hi else 'lower'} = more memorized"
    if isinstance(thr, (int, float)):
        text += f"; flagged when {'>' if hi else '<'} {thr:.3g}"
    return text


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers/CI
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8})
    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)  # no bbox "tight": it draws the figure twice
    _plt().close(fig)
    return buf.getvalue()


def _row_label(r: pd.Series, multi: bool) -> str:
    text = label(r["model"], r["role"])
    return f"{text}, n={int(r['n_samples'])}, seed {int(r['seed'])}" if multi else text


def memorized_per_detector(board: pd.DataFrame) -> list[tuple[str, bytes]]:
    """Per detector: memorized fraction per model with its 95% Wilson interval (one figure each)."""
    ok = board[board["status"] == "ok"]
    out = []
    plt = _plt()
    for det in sorted(ok["detector"].unique()):
        rows = ok[ok["detector"] == det].reset_index(drop=True)
        multi = rows.groupby("model").size().max() > 1  # several n or seeds: say which
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.32 * len(rows) + 1.3))
        y = np.arange(len(rows))[::-1]
        for yi, (_, r) in zip(y, rows.iterrows()):
            ax.errorbar(r["memorized"], yi, xerr=[[r["memorized"] - r["ci_low"]], [r["ci_high"] - r["memorized"]]],
                        fmt="o", color=ROLE_COLORS.get(r["role"], "k"), capsize=3)
        ax.set_yticks(y, [_row_label(r, multi) for _, r in rows.iterrows()])
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("memorized fraction, 95% CI (lower = less)")
        ax.set_title(det)
        ax.grid(axis="x", alpha=0.3)
        fig.subplots_adjust(left=0.34, right=0.97, bottom=0.6 / fig.get_figheight(), top=1 - 0.3 / fig.get_figheight())
        out.append((det, _png(fig)))
    return out


def score_distributions(det: str, test: dict[str, Any], scores: list[tuple[str, str, np.ndarray]]) -> bytes:
    """One detector's per-sample scores per model, in the score's own units, threshold drawn."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.32 * len(scores) + 1.4))
    y = np.arange(len(scores))[::-1]
    for yi, (name, role, s) in zip(y, scores):
        s = np.asarray(s, np.float64)
        s = s[np.isfinite(s)]
        jitter = (np.random.default_rng(0).random(len(s)) - 0.5) * 0.5
        ax.scatter(s, yi + jitter, s=3, alpha=0.35, color=ROLE_COLORS.get(role, "k"), linewidths=0)
        if len(s):
            ax.plot([np.median(s)] * 2, [yi - 0.35, yi + 0.35], color="k", lw=1.5)
    ax.set_yticks(y, [label(n, r) for n, r, _ in scores])
    thr = (test.get("config") or {}).get("threshold")
    if isinstance(thr, (int, float)):
        ax.axvline(thr, color="k", ls="--", lw=1)
    ax.set_xlabel(f"{test.get('score', 'score')} ({direction_text(test)})")
    ax.set_title(f"{det}: each sample's score; bar: median", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.subplots_adjust(left=0.3, right=0.97, bottom=0.6 / fig.get_figheight(), top=1 - 0.3 / fig.get_figheight())
    return _png(fig)


def teacher_vs_student(pair: dict[str, Any]) -> bytes:
    """Same noises: score histograms of teacher and student (left), and per noise the teacher's
    against the student's distance to the nearest training image, or score when the detector
    records no distance (right), green where both land on the same training image."""
    plt = _plt()
    p, row = pair["paired"], pair["row"]
    det = pair["student_record"].test
    t_label = label(row["teacher"], "teacher")
    s_label = label(row["student"], row["role"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(WIDTH_IN, 3.1))
    both = np.concatenate([p.teacher_scores, p.student_scores])
    finite = both[np.isfinite(both)]
    bins = np.linspace(finite.min(), finite.max(), 31) if finite.size and finite.min() < finite.max() else 20
    ax1.hist(p.teacher_scores, bins=bins, alpha=0.55, color=ROLE_COLORS["teacher"], label=t_label)
    ax1.hist(p.student_scores, bins=bins, alpha=0.55, color=ROLE_COLORS.get(row["role"], "#d62728"), label=s_label)
    thr = (det.get("config") or {}).get("threshold")
    if isinstance(thr, (int, float)):
        ax1.axvline(thr, color="k", ls="--", lw=1, label=f"threshold {thr:.3g}")
    ax1.set_xlabel(f"{det.get('score', 'score')}\n({'higher' if det.get('higher_is_memorized') else 'lower'} = more memorized)")
    ax1.set_ylabel("samples")
    ax1.legend(fontsize=7)
    same = p.teacher_nearest == p.student_nearest
    if p.distance_source == "d1":
        tx, sx, what = p.teacher_distance, p.student_distance, "distance to nearest"
    else:  # the score itself, in its own units
        tx, sx, what = p.teacher_scores, p.student_scores, str(det.get("score", "score"))
    ax2.scatter(tx[~same], sx[~same], s=6, alpha=0.5, color="#999999", label=f"other image ({int((~same).sum())})")
    ax2.scatter(tx[same], sx[same], s=6, alpha=0.6, color="#2ca02c", label=f"same image ({int(same.sum())})")
    vals = np.concatenate([tx, sx])
    vals = vals[np.isfinite(vals)]
    if vals.size:
        lim = [min(0.0, float(vals.min())) if p.distance_source == "d1" else float(vals.min()), float(vals.max())]
        ax2.plot(lim, lim, color="k", lw=0.8, ls=":")
    ax2.set_xlabel(f"teacher: {what}", fontsize=8)
    ax2.set_ylabel(f"student: {what}", fontsize=8)
    ax2.legend(fontsize=7, title="nearest training image", title_fontsize=7)
    fig.suptitle(f"{row['detector']}: {s_label} vs {t_label}, {int(row['n_paired'])} noises", fontsize=9)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.22, top=0.88, wspace=0.42)
    return _png(fig)


def quality_vs_memorization(board: pd.DataFrame, col: str) -> bytes | None:
    """One quality column (y) against the memorized fraction (x, 95% CI): colour = model, marker = detector."""
    from membench.store.directions import direction

    ok = board[(board["status"] == "ok") & board[col].notna()] if col in board else board.iloc[0:0]
    if ok.empty:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.6))
    models = list(dict.fromkeys(ok["model"]))
    dets = list(dict.fromkeys(ok["detector"]))
    cmap = plt.get_cmap("tab10")
    markers = "osD^v<>pX*"
    for _, r in ok.iterrows():
        ax.errorbar(r["memorized"], r[col], xerr=[[r["memorized"] - r["ci_low"]], [r["ci_high"] - r["memorized"]]],
                    fmt=markers[dets.index(r["detector"]) % len(markers)], color=cmap(models.index(r["model"]) % 10),
                    capsize=2, ms=5)
    roles = dict(zip(ok["model"], ok["role"]))
    handles = [plt.Line2D([], [], marker="o", ls="", color=cmap(i % 10), label=label(m, roles[m]))
               for i, m in enumerate(models)]
    handles += [plt.Line2D([], [], marker=markers[i % len(markers)], ls="", color="k", label=d)
                for i, d in enumerate(dets)]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7, frameon=False)
    ax.set_xlabel("memorized fraction (lower = less), 95% CI")
    better = {"lower": "lower = better", "higher": "higher = better"}.get(direction(col) or "", "")
    ax.set_ylabel(f"{col.replace('_', ' ')} ({better})")
    ax.set_xlim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    fig.subplots_adjust(left=0.12, right=0.66, bottom=0.14, top=0.95)
    return _png(fig)
