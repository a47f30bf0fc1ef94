"""Quality columns of the leaderboard, joined to detector rows by the sample set they measured.

Column names say the reference (stable: ``membench report``/``check`` read them):
``fid_heldout``, ``kid_heldout``, ``kid_heldout_std``, ``precision_heldout`` (+ ``_ci_low``,
``_ci_high``), ``recall_heldout`` (+ CI), the same with ``_train``, ``quality_n_heldout``,
``quality_n_train``, ``quality_extractor`` and ``quality_note``. When a sample set has
quality records from several extractors, the digits classifier's is shown, else the newest.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from membench.quality.evaluate import REFERENCES, summary

QUALITY_COLUMNS = ["quality_extractor"] + [
    c for ref in REFERENCES for c in (
        f"fid_{ref}", f"kid_{ref}", f"kid_{ref}_std",
        f"precision_{ref}", f"precision_{ref}_ci_low", f"precision_{ref}_ci_high",
        f"recall_{ref}", f"recall_{ref}_ci_low", f"recall_{ref}_ci_high", f"quality_n_{ref}")
] + ["quality_note"]


def _pick(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The digits classifier's record when there is one, else the newest."""
    from membench.quality.harness import DEFAULT_EXTRACTOR

    newest_first = sorted(records, key=lambda r: r.get("created", ""), reverse=True)
    return sorted(newest_first, key=lambda r: r["extractor"]["name"] != DEFAULT_EXTRACTOR)[0]


def quality_by_sample(results_dir: str | Path, extra: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """sample_key -> flat quality columns (stored records, then this run's unavailable ones)."""
    from membench.quality.harness import iter_quality

    groups: dict[str, list[dict[str, Any]]] = {}
    for rec in iter_quality(results_dir):
        groups.setdefault(rec["sample_key"], []).append(rec)
    out = {key: summary(_pick(recs)["quality"]) for key, recs in groups.items()}
    for rec in extra or []:
        if rec.get("sample_key") not in out:
            out[rec["sample_key"]] = {"quality_extractor": rec["extractor"]["name"],
                                      "quality_note": f"unavailable: {rec['reason']}"}
    return out


def merge(df: pd.DataFrame, results_dir: str | Path, extra: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """Add the quality columns to every row whose ``sample_key`` has a quality record."""
    table = quality_by_sample(results_dir, extra)
    rows = [table.get(k, {}) if isinstance(k, str) else {} for k in df.get("sample_key", pd.Series(dtype=object))]
    q = pd.DataFrame(rows, columns=QUALITY_COLUMNS, index=df.index)
    for c in ("quality_extractor", "quality_note"):
        q[c] = q[c].astype(object).where(q[c].notna(), "")
    for c in QUALITY_COLUMNS:
        if c not in ("quality_extractor", "quality_note"):
            q[c] = pd.to_numeric(q[c], errors="coerce")
    return pd.concat([df.drop(columns=[c for c in QUALITY_COLUMNS if c in df.columns]), q], axis=1)


def _num(v: float, fmt: str) -> str:
    return "" if pd.isna(v) else format(v, fmt)


def _frac(v: float, lo: float, hi: float) -> str:
    return "" if pd.isna(v) else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def display_columns(df: pd.DataFrame) -> dict[str, list[str]]:
    """Compact human-readable quality columns for the printed/Markdown table."""
    if "fid_heldout" not in df.columns:
        return {}
    return {
        "FID held-out": [_num(v, ".3g") for v in df["fid_heldout"]],
        "KID held-out": [_num(v, ".3g") for v in df["kid_heldout"]],
        "precision held-out (95% CI)": [_frac(*t) for t in zip(df["precision_heldout"], df["precision_heldout_ci_low"],
                                                                df["precision_heldout_ci_high"])],
        "recall held-out (95% CI)": [_frac(*t) for t in zip(df["recall_heldout"], df["recall_heldout_ci_low"],
                                                             df["recall_heldout_ci_high"])],
        "FID train": [_num(v, ".3g") for v in df["fid_train"]],
        **({"quality note": list(df["quality_note"])} if df["quality_note"].astype(bool).any() else {}),
    }
