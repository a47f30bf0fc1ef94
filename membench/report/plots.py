"""Report figures as PNG bytes (matplotlib, headless Agg backend, imported lazily)."""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

ROLE_COLORS = {"teacher": "#1f77b4", "student": "#d62728", "control": "#7f7f7f"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers/CI
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)  # no bbox "tight": it draws the figure twice
    _plt().close(fig)
    return buf.getvalue()


def memorized_per_model(board: pd.DataFrame) -> bytes | None:
    """Memorized fraction with its 95% Wilson interval, one panel per detector."""
    ok = board[board["status"] == "ok"]
    if ok.empty:
        return None
    plt = _plt()
    dets = sorted(ok["detector"].unique())
    fig, axes = plt.subplots(1, len(dets), figsize=(max(4.5, 4.2 * len(dets)), 0.45 * ok.groupby("detector").size().max() + 1.6),
                             squeeze=False)
    for ax, det in zip(axes[0], dets):
        rows = ok[ok["detector"] == det].reset_index(drop=True)
        y = np.arange(len(rows))[::-1]
        for yi, (_, r) in zip(y, rows.iterrows()):
            color = ROLE_COLORS.get(r["role"], "k")
            ax.errorbar(r["memorized"], yi, xerr=[[r["memorized"] - r["ci_low"]], [r["ci_high"] - r["memorized"]]],
                        fmt="o", color=color, capsize=3)
        ax.set_yticks(y, [f"{m} (n={n})" for m, n in zip(rows["model"], rows["n_samples"])])
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("memorized fraction ↓ (95% Wilson CI)")
        ax.set_title(det)
        ax.grid(axis="x", alpha=0.3)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=r) for r, c in ROLE_COLORS.items()]
    fig.legend(handles=handles, loc="upper right", ncol=3, frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return _png(fig)


def teacher_vs_student(pair: dict[str, Any]) -> bytes:
    """Score histograms of teacher and student over the same noises, and the per-noise
    distances to the nearest training image (same image or not)."""
    plt = _plt()
    p, row = pair["paired"], pair["row"]
    det = pair["student_record"].test
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    both = np.concatenate([p.teacher_scores, p.student_scores])
    finite = both[np.isfinite(both)]
    bins = np.linspace(finite.min(), finite.max(), 41) if finite.size and finite.min() < finite.max() else 20
    ax1.hist(p.teacher_scores, bins=bins, alpha=0.55, color=ROLE_COLORS["teacher"], label=f"teacher {row['teacher']}")
    ax1.hist(p.student_scores, bins=bins, alpha=0.55, color=ROLE_COLORS["student"], label=f"{row['role']} {row['student']}")
    thr = (det.get("config") or {}).get("threshold")
    if isinstance(thr, (int, float)):
        ax1.axvline(thr, color="k", ls="--", lw=1, label=f"threshold {thr:.3g}")
    ax1.set_xlabel(f"{det.get('score', 'score')} ({'higher' if det.get('higher_is_memorized') else 'lower'} = more memorized)")
    ax1.set_ylabel("samples")
    ax1.legend(fontsize=7)
    ax1.set_title(f"{row['detector']}: {row['student']} vs {row['teacher']}", fontsize=9)
    same = p.teacher_nearest == p.student_nearest
    ax2.scatter(p.teacher_distance[~same], p.student_distance[~same], s=6, alpha=0.5, color="#999999",
                label=f"different nearest image ({int((~same).sum())})")
    ax2.scatter(p.teacher_distance[same], p.student_distance[same], s=6, alpha=0.6, color="#2ca02c",
                label=f"same nearest image ({int(same.sum())})")
    lim = [0, float(np.nanmax(np.concatenate([p.teacher_distance, p.student_distance, [1e-9]])))]
    if p.distance_source != "d1":
        lim[0] = float(np.nanmin(np.concatenate([p.teacher_distance, p.student_distance])))
    ax2.plot(lim, lim, color="k", lw=0.8, ls=":")
    ax2.set_xlabel(f"teacher {p.distance_source} to nearest training image")
    ax2.set_ylabel(f"student {p.distance_source}")
    ax2.legend(fontsize=7)
    ax2.set_title("same noise: above the diagonal = student farther", fontsize=9)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.9, wspace=0.28)  # cheaper than tight_layout
    return _png(fig)


def quality_vs_memorization(board: pd.DataFrame, quality_cols: list[str]) -> bytes | None:
    """One panel per quality column: quality (y) against memorized fraction (x, with CI)."""
    from membench.store.directions import arrow

    ok = board[board["status"] == "ok"]
    cols = [c for c in quality_cols if c in ok and ok[c].notna().any()]
    if ok.empty or not cols:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(cols), figsize=(4.4 * len(cols), 3.6), squeeze=False)
    for ax, col in zip(axes[0], cols):
        rows = ok[ok[col].notna()]
        for _, r in rows.iterrows():
            ax.errorbar(r["memorized"], r[col], xerr=[[r["memorized"] - r["ci_low"]], [r["ci_high"] - r["memorized"]]],
                        fmt="o", color=ROLE_COLORS.get(r["role"], "k"), capsize=3)
            ax.annotate(f"{r['model']} · {r['detector']}", (r["memorized"], r[col]), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("memorized fraction ↓")
        ax.set_ylabel(f"{col} {arrow(col)}")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def image_strip(images: list[np.ndarray], scale: int | None = None, gap: int = 6, cell: int = 72) -> bytes:
    """(C,H,W) images in [-1, 1] side by side, each upscaled without smoothing (PIL: fast, no axes).

    Gray (C=1) and RGB (C=3) images of any size may be mixed (a 3x64x64 sample beside a 1x8x8
    training image, say): each gets its own integer scale, so that its longer side is about
    ``cell`` pixels (never shrunk), and the tiles are centred vertically. ``scale`` fixes one
    scale for every tile instead.
    """
    from PIL import Image

    from membench.core.errors import MembenchError

    tiles = []
    for img in images:
        arr = np.clip((np.asarray(img, dtype=np.float32) + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)
        if arr.ndim != 3 or arr.shape[0] not in (1, 3):
            raise MembenchError(f"image grid: expected (1 or 3, H, W) images, got shape {arr.shape}")
        arr = arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))
        tile = Image.fromarray(arr).convert("RGB")
        k = scale or max(1, round(cell / max(tile.size)))
        tiles.append(tile.resize((tile.width * k, tile.height * k), Image.NEAREST))
    w = sum(t.width for t in tiles) + gap * (len(tiles) - 1)
    height = max(t.height for t in tiles)
    strip = Image.new("RGB", (w, height), "white")
    x = 0
    for t in tiles:
        strip.paste(t, (x, (height - t.height) // 2))
        x += t.width + gap
    buf = io.BytesIO()
    strip.save(buf, format="PNG")
    return buf.getvalue()
