"""The leaderboard: a pandas table rebuilt from the result files (never the source of truth)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from membench.core.io import atomic_write_text
from membench.store.records import iter_results

COLUMNS = [
    "model", "role", "teacher", "method", "sampler", "nfe", "train_data", "detector",
    "n_samples", "seed", "status", "memorized", "ci_low", "ci_high", "n_flagged", "score_median", "note",
    "sample_key",
    "checkpoint",  # content hash of the weights: tells a stale result (older checkpoint) from the current one
]  # + the quality columns of membench.quality.board.QUALITY_COLUMNS


def build(results_dir: str | Path, extra_records: list[dict] | None = None,
          extra_quality: list[dict] | None = None) -> pd.DataFrame:
    """One row per result file, plus ``extra_records`` (unavailable pairs of this run, not stored).

    Quality columns (``fid_heldout``, ...) are joined by sample set; ``extra_quality`` holds
    this run's unavailable quality records (not stored).
    """
    from membench.quality.board import merge as merge_quality

    rows = []
    records = [rec for _, rec in iter_results(Path(results_dir))] + list(extra_records or [])
    for rec in records:
        m, d = rec["model"], rec["detector"]
        nan = float("nan")
        agg = rec.get("aggregate") or {"fraction": nan, "ci_low": nan, "ci_high": nan, "n_flagged": -1,
                                        "score_median": nan}
        rows.append({
            "model": m["name"], "role": m["role"], "teacher": m.get("teacher") or "",
            "method": m.get("method") or "", "sampler": m["sampler"], "nfe": m.get("nfe"),
            "train_data": m["dataset"], "detector": d["name"], "n_samples": rec["n_samples"],
            "seed": rec["seed"], "memorized": agg["fraction"], "ci_low": agg["ci_low"],
            "ci_high": agg["ci_high"], "n_flagged": agg["n_flagged"], "score_median": agg["score_median"],
            "status": rec.get("status", "ok"),
            # unavailable: the reason; ok: what the detector converted (e.g. gray -> RGB for an embedder)
            "note": rec.get("reason") or (rec.get("info") or {}).get("note", ""),
            "sample_key": rec.get("sample_key"),
            "checkpoint": m.get("checkpoint_hash") or "",
        })
    df = merge_quality(pd.DataFrame(rows, columns=COLUMNS), results_dir, extra_quality)
    return df.sort_values(["detector", "role", "model", "n_samples", "seed"], ascending=[True, False, True, True, True],
                          ignore_index=True)


def format_table(df: pd.DataFrame) -> pd.DataFrame:
    """Human-readable view: memorized fraction with its 95% Wilson interval."""
    out = df[["model", "role", "teacher", "method", "sampler", "nfe", "train_data", "detector", "n_samples"]].copy()
    out["memorized (95% CI)"] = [
        f"{f:.3f} [{lo:.3f}, {hi:.3f}]" if st == "ok" else f"unavailable: {note}"
        for f, lo, hi, st, note in zip(df["memorized"], df["ci_low"], df["ci_high"], df["status"], df["note"])
    ]
    out["median score"] = df["score_median"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    out["note"] = [n if st == "ok" and isinstance(n, str) else "" for st, n in zip(df["status"], df["note"])]
    from membench.quality.board import display_columns

    for name, values in display_columns(df).items():  # quality beside memorization
        out[name] = values
    return out


def write(df: pd.DataFrame, results_dir: str | Path) -> tuple[Path, Path]:
    results_dir = Path(results_dir)
    csv_path, md_path = results_dir / "leaderboard.csv", results_dir / "leaderboard.md"
    atomic_write_text(csv_path, df.to_csv(index=False))
    md = ("# membench leaderboard\n\nMemorized fraction: lower is less memorization. "
          "Intervals are 95% Wilson intervals over samples.\n\n"
          "Quality (digits-classifier features unless `quality_extractor` in the CSV says otherwise): "
          "*held-out* columns compare the samples with the held-out images (the fair reference); "
          "*train* compares them with the training images, which rewards memorization.\n\n"
          + format_table(df).to_markdown(index=False) + "\n")
    atomic_write_text(md_path, md)
    return csv_path, md_path
