"""The "what this says" paragraph of each student: a template filled from its effect rows.

Nothing here is written about results by hand: every number and every verdict word comes
from the effect table (``analysis.effect``), by these rules:

* memorized fraction: "less often" / "more often" than the teacher when the paired 95%
  interval of the difference excludes 0, else "about as often";
* same nearest training image against its null (``analysis.effect.null_row``, the NFE-matched
  control): "above" / "below" when the two Wilson intervals do not overlap, else "within";
  "no null measured" without a control. Stated once when every detector agrees on it (they
  share the nearest-image search), else per detector.
"""
from __future__ import annotations

from typing import Any

import pandas as pd


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _ci_pct(r: Any, col: str) -> str:
    return f"{_pct(r[col])} [{_pct(r[col + '_ci_low'])}, {_pct(r[col + '_ci_high'])}]"


def _p(p: float) -> str:
    return "p < 1e-300" if p == 0 else f"p = {p:.2g}"


def direction(row: Any) -> str:
    if row["diff_ci_high"] < 0:
        return "less often"
    if row["diff_ci_low"] > 0:
        return "more often"
    return "about as often"


def memorized_clause(row: Any) -> str:
    return (f"{row['detector']} {_pct(row['student_memorized'])} against {_pct(row['teacher_memorized'])} "
            f"(difference {row['diff']:+.3f} [{row['diff_ci_low']:+.3f}, {row['diff_ci_high']:+.3f}], "
            f"McNemar {_p(row['mcnemar_p'])})")


def same_nearest_clause(row: Any, null: Any) -> str:
    s = f"for {_ci_pct(row, 'same_nearest')} of noises"
    if null is None:
        return s + " (no null measured: no NFE-matched control of this teacher in these results)"
    rel = ("above" if row["same_nearest_ci_low"] > null["same_nearest_ci_high"] else
           "below" if row["same_nearest_ci_high"] < null["same_nearest_ci_low"] else "within")
    s += f", {rel} its null ({null['student']}, the teacher at {int(null['nfe'])} NFE: {_ci_pct(null, 'same_nearest')})"
    far = row.get("student_farther")
    if row.get("distance_source") == "d1" and far is not None and not pd.isna(far):
        s += f"; where both land on the same image, its sample is the farther one for {_pct(far)}"
    return s


def paragraph(rows: pd.DataFrame, effect: pd.DataFrame) -> str:
    from membench.analysis.effect import null_row

    dirs = [direction(r) for _, r in rows.iterrows()]
    lead = (f"Flagged {dirs[0]} than its teacher by every detector" if len(set(dirs)) == 1 and len(dirs) > 1 else
            "Flagged " + "; ".join(f"{d} than its teacher by {r['detector']}" for d, (_, r) in zip(dirs, rows.iterrows())))
    text = lead + ": " + "; ".join(memorized_clause(r) for _, r in rows.iterrows()) + ". "
    clauses = {r["detector"]: same_nearest_clause(r, null_row(effect, r)) for _, r in rows.iterrows()}
    if len(set(clauses.values())) == 1:
        text += f"From the same noise it lands on the teacher's nearest training image {next(iter(clauses.values()))}."
    else:
        text += "From the same noise it lands on the teacher's nearest training image: " + "; ".join(
            f"{d}: {c}" for d, c in clauses.items()) + "."
    return text


def paragraphs(effect: pd.DataFrame) -> list[tuple[str, str]]:
    """(heading, paragraph) per student of the effect table (per seed and sample count)."""
    if effect.empty:
        return []
    ok = effect[(effect["status"] == "ok") & (effect["role"] == "student")]
    out = []
    for (student, teacher, seed, n), rows in ok.groupby(["student", "teacher", "seed", "n_samples"], sort=True):
        first = rows.iloc[0]
        nfe = first.get("nfe")
        method = first.get("method")
        parts = [f"student of {teacher}"]
        if isinstance(method, str) and method:
            parts.append(f"method {method}")
        if nfe is not None and not pd.isna(nfe):
            parts.append(f"{int(nfe)} NFE")
        head = f"{student} ({', '.join(parts)}; {int(n)} noises of seed {int(seed)})"
        out.append((head, paragraph(rows, effect)))
    return out
