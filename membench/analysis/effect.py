"""The effect of distillation: each student (or control) beside its teacher, paired by noise.

Sample ``i`` of a seed starts from the same noise for every model, so a student's and its
teacher's results for the same detector and seed form a paired 2x2 table over noises:

* transferred: both flagged, and both reproduce the *same* training image;
* switched:    both flagged, but on different training images;
* suppressed:  the teacher is flagged, the student is not;
* introduced:  the student is flagged, the teacher is not.

The difference of memorized fractions (student - teacher) gets Newcombe's paired
square-and-add interval and McNemar's exact test (plus mid-p). Irrespective of any
threshold, we also report how often the student's nearest training image is the teacher's
nearest for the same noise, with both distance distributions: a student can land on the
same image, only less precisely, and pass a threshold test.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from membench.store.records import Record

from membench.core.stats import wilson_interval

COMPARED_ROLES = ("student", "control", "samples")  # samples: a file set with a reference set (detect --noise-index)

# Which direction is better for each effect column (less memorization is better).
DIRECTIONS: dict[str, str] = {
    "teacher_memorized": "lower", "student_memorized": "lower", "diff": "lower",
    "transferred": "lower", "switched": "lower", "introduced": "lower", "suppressed": "higher",
    "transfer_rate": "lower", "same_nearest": "lower", "student_farther": "higher",
}


# ------------------------------------------------------------------ paired statistics


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def paired_difference_interval(n11: int, n10: int, n01: int, n00: int,
                               confidence: float = 0.95) -> tuple[float, float, float]:
    """Difference p1 - p2 of two paired proportions with Newcombe's square-and-add interval.

    ``n10``: first positive only, ``n01``: second positive only (so p1 = (n11+n10)/n,
    p2 = (n11+n01)/n). Newcombe (1998), method 10, with the continuity-corrected
    correlation estimate as in Newcombe's paper and Fagerland, Lydersen & Laake (2017).
    Returns (difference, low, high).
    """
    counts = (n11, n10, n01, n00)
    if min(counts) < 0:
        raise ValueError("counts must be non-negative")
    n = sum(counts)
    if n <= 0:
        raise ValueError("no pairs")
    p1, p2 = (n11 + n10) / n, (n11 + n01) / n
    l1, u1 = wilson_interval(n11 + n10, n, confidence)
    l2, u2 = wilson_interval(n11 + n01, n, confidence)
    row1, row0, col1, col0 = n11 + n10, n01 + n00, n11 + n01, n10 + n00
    phi = 0.0
    if min(row1, row0, col1, col0) > 0:
        a = n11 * n00 - n10 * n01
        denom = math.sqrt(row1 * row0 * col1 * col0)
        phi = (a - n / 2) / denom if a > n / 2 else (0.0 if a >= 0 else a / denom)
    d = p1 - p2
    lo = d - math.sqrt(max(0.0, (p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)))
    hi = d + math.sqrt(max(0.0, (p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1)))
    return d, max(-1.0, lo), min(1.0, hi)


def paired_flags_difference(first: np.ndarray, second: np.ndarray,
                            confidence: float = 0.95) -> tuple[float, float, float]:
    """``paired_difference_interval`` of two boolean flag arrays paired by position (first - second)."""
    a, b = np.asarray(first, bool), np.asarray(second, bool)
    if a.shape != b.shape:
        raise ValueError(f"paired flags need one shape, got {a.shape} and {b.shape}")
    return paired_difference_interval(int(np.sum(a & b)), int(np.sum(a & ~b)), int(np.sum(~a & b)),
                                      int(np.sum(~a & ~b)), confidence)


def mcnemar(n10: int, n01: int) -> tuple[float, float]:
    """McNemar's exact two-sided p-value and its mid-p version, from the discordant counts.

    Under H0 each discordant pair is 10 or 01 with probability 1/2: the exact test is the
    two-sided binomial test of min(n10, n01) of n10 + n01 (scipy's ``binomtest``); Fagerland
    et al. 2013 recommend the mid-p for its closer-to-nominal size.
    """
    from scipy import stats

    m = n10 + n01
    if m == 0:
        return 1.0, 1.0
    k = min(n10, n01)
    exact = float(stats.binomtest(k, m, 0.5).pvalue)
    midp = min(1.0, float(2 * stats.binom.cdf(k, m, 0.5) - stats.binom.pmf(k, m, 0.5))) if n10 != n01 else 1.0
    return exact, midp


def _with_ci(prefix: str, k: int, n: int) -> dict[str, float]:
    if n == 0:
        nan = float("nan")
        return {prefix: nan, f"{prefix}_ci_low": nan, f"{prefix}_ci_high": nan}
    lo, hi = wilson_interval(k, n)
    return {prefix: k / n, f"{prefix}_ci_low": lo, f"{prefix}_ci_high": hi}


@dataclass
class Paired:
    """Teacher and student per-sample arrays restricted to their common noises, in noise order."""

    noise_index: np.ndarray
    teacher_flags: np.ndarray
    student_flags: np.ndarray
    teacher_nearest: np.ndarray
    student_nearest: np.ndarray
    teacher_scores: np.ndarray
    student_scores: np.ndarray
    teacher_distance: np.ndarray
    student_distance: np.ndarray
    distance_source: str


def _distance(arrays: dict[str, np.ndarray], higher_is_memorized: bool) -> tuple[np.ndarray, str]:
    """Distance to the nearest training image: the detector's ``d1`` when it records one,
    else its score oriented so that larger means farther (less memorized)."""
    if "extra_d1" in arrays:
        return np.asarray(arrays["extra_d1"], dtype=np.float64), "d1"
    s = np.asarray(arrays["scores"], dtype=np.float64)
    return (-s, "-score") if higher_is_memorized else (s, "score")


def pair_arrays(teacher: dict[str, np.ndarray], student: dict[str, np.ndarray],
                higher_is_memorized: bool) -> Paired:
    """Align two runs of one detector on the noises both have (noise i = same start noise)."""
    common, ti, si = np.intersect1d(teacher["noise_index"], student["noise_index"], assume_unique=True,
                                    return_indices=True)
    td, src = _distance(teacher, higher_is_memorized)
    sd, _ = _distance(student, higher_is_memorized)
    return Paired(common, np.asarray(teacher["flags"], bool)[ti], np.asarray(student["flags"], bool)[si],
                  np.asarray(teacher["nearest"])[ti], np.asarray(student["nearest"])[si],
                  np.asarray(teacher["scores"], np.float64)[ti], np.asarray(student["scores"], np.float64)[si],
                  td[ti], sd[si], src)


def compare(p: Paired) -> dict[str, Any]:
    """All paired statistics of one student/teacher/detector triple (fractions with Wilson CIs)."""
    n = len(p.noise_index)
    if n == 0:
        raise ValueError("teacher and student share no noise indices")
    t, s = p.teacher_flags, p.student_flags
    same = p.teacher_nearest == p.student_nearest
    n11, n10, n01 = int(np.sum(t & s)), int(np.sum(t & ~s)), int(np.sum(~t & s))
    n00 = n - n11 - n10 - n01
    n_transferred = int(np.sum(t & s & same))
    diff, dlo, dhi = paired_difference_interval(n11, n01, n10, n00)  # first = student, second = teacher
    exact, midp = mcnemar(n10, n01)
    n_same = int(same.sum())
    farther = int(np.sum(p.student_distance[same] > p.teacher_distance[same]))
    row: dict[str, Any] = {
        "n_paired": n,
        **_with_ci("teacher_memorized", n11 + n10, n), **_with_ci("student_memorized", n11 + n01, n),
        "diff": diff, "diff_ci_low": dlo, "diff_ci_high": dhi,
        "n_transferred": n_transferred, "n_switched": n11 - n_transferred, "n_suppressed": n10,
        "n_introduced": n01, "n_neither": n00,
        **_with_ci("transferred", n_transferred, n), **_with_ci("switched", n11 - n_transferred, n),
        **_with_ci("suppressed", n10, n), **_with_ci("introduced", n01, n),
        # Of the teacher's copies, the share the student reproduces (same image).
        **_with_ci("transfer_rate", n_transferred, n11 + n10),
        # Of the teacher's copies: the student lands on the same image (flagged or not) / is flagged too.
        "n_teacher_copies": n11 + n10,
        **_with_ci("copies_kept", int(np.sum(t & same)), n11 + n10), **_with_ci("copies_flagged", n11, n11 + n10),
        "mcnemar_p": exact, "mcnemar_midp": midp,
        **_with_ci("same_nearest", n_same, n),
        "distance_source": p.distance_source,
        "teacher_distance_median": float(np.median(p.teacher_distance)),
        "student_distance_median": float(np.median(p.student_distance)),
        # Among noises landing on the same image: how often the student is the farther copy.
        **_with_ci("student_farther", farther, n_same),
        "same_nearest_distance_ratio_median": (
            float(np.median(p.student_distance[same] / np.maximum(p.teacher_distance[same], 1e-12)))
            if n_same and p.distance_source == "d1" else float("nan")),
    }
    return row


# ------------------------------------------------------------------ from the result store


def _match_key(rec: "Record") -> tuple:
    return (rec.test["name"], repr(sorted((rec.test.get("config") or {}).items())), rec.seed,
            rec.data.get("fingerprint"))


def find_teacher_record(student: "Record", records: list["Record"]) -> "Record | None":
    """The teacher's completed detection for the same detector (and config), seed and training set.

    Prefers the same sample count, else the largest (pairs use the common noises); among
    equals, the newest record (a retrained teacher's).
    """
    teacher = student.subject.get("teacher")
    key = _match_key(student)
    cands = [r for r in records if r.kind == "detection" and r.subject["name"] == teacher and r.ok
             and _match_key(r) == key]
    if not cands:
        return None
    return max(cands, key=lambda r: (r.n == student.n, r.n, r.created))


def effect_table(records: list["Record"], problems: list[str] | None = None,
                 pairs_out: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per (student or control, detector, seed, n) with a completed detection record.

    Rows without a teacher record say so in ``status``; unreadable arrays are appended to
    ``problems`` and their rows marked. ``pairs_out`` receives the aligned arrays per row
    (for plots and image grids).
    """
    from membench.core.errors import MembenchError

    # A rerun after retraining leaves the older record beside the new one: keep the newest.
    newest: dict[tuple, "Record"] = {}
    for rec in records:
        m = rec.subject
        if rec.kind != "detection" or m.get("role") not in COMPARED_ROLES or not m.get("teacher") or not rec.ok:
            continue
        k = (m["name"], *_match_key(rec), rec.n)
        if k not in newest or rec.created >= newest[k].created:
            newest[k] = rec
    rows = []
    for rec in newest.values():
        m, d = rec.subject, rec.test
        base = {"student": m["name"], "teacher": m["teacher"], "role": m["role"], "method": m.get("method") or "",
                "sampler": m.get("sampler", ""), "nfe": m.get("nfe"), "detector": d["name"], "seed": rec.seed,
                "n_samples": rec.n}
        trec = find_teacher_record(rec, records)
        if trec is None:
            rows.append({**base, "status": "no teacher result",
                         "note": f"run: membench run --model {m['teacher']} --detector {d['name']} "
                                 f"--n-samples {rec.n} --seed {rec.seed}"})
            continue
        try:
            paired = pair_arrays(trec.load_arrays(), rec.load_arrays(), bool(d.get("higher_is_memorized", False)))
            stats = compare(paired)
        except (MembenchError, KeyError, ValueError) as exc:
            msg = f"{m['name']} vs {trec.subject['name']} ({d['name']}): {exc}"
            if problems is not None:
                problems.append(msg)
            rows.append({**base, "status": "error", "note": msg})
            continue
        rows.append({**base, "status": "ok", "note": "", **stats})
        if pairs_out is not None:
            pairs_out.append({"row": rows[-1], "paired": paired, "student_record": rec, "teacher_record": trec})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    return df.sort_values(["detector", "teacher", "student", "n_samples", "seed"], ignore_index=True)


def null_row(effect: pd.DataFrame, row: pd.Series) -> pd.Series | None:
    """The null of a student's row: the NFE-matched control's row (the teacher itself sampled at the
    student's number of network evaluations, ``role = "control"``) for the same teacher, detector,
    seed and sample count, when one was measured. Its same-nearest-image share is what agreement
    with the teacher looks like without any distillation."""
    if row.get("role") != "student" or effect.empty or "nfe" not in effect:
        return None
    ok = effect[(effect["role"] == "control") & (effect["status"] == "ok") & (effect["teacher"] == row["teacher"])
                & (effect["detector"] == row["detector"]) & (effect["seed"] == row["seed"])
                & (effect["n_samples"] == row["n_samples"]) & (effect["nfe"] == row["nfe"])]
    return ok.iloc[0] if len(ok) else None


def format_effect(df: pd.DataFrame) -> pd.DataFrame:
    """Human-readable view; every header says which direction is better."""
    def ci(row: pd.Series, col: str) -> str:
        return f"{row[col]:.3f} [{row[col + '_ci_low']:.3f}, {row[col + '_ci_high']:.3f}]"

    out = []
    for _, r in df.iterrows():
        base = {"student": r["student"], "teacher": r["teacher"], "role": r["role"], "method": r["method"],
                "detector": r["detector"], "n paired": r.get("n_paired", r["n_samples"])}
        if r["status"] != "ok":
            out.append({**base, "teacher memorized ↓": f"{r['status']}: {r['note']}"})
            continue
        tr = "" if pd.isna(r["transfer_rate"]) else f" (rate {ci(r, 'transfer_rate')})"
        out.append({
            **base,
            "teacher memorized ↓": ci(r, "teacher_memorized"),
            "student memorized ↓": ci(r, "student_memorized"),
            "Δ student−teacher ↓ (paired 95% CI)": f"{r['diff']:+.3f} [{r['diff_ci_low']:+.3f}, {r['diff_ci_high']:+.3f}]",
            "transferred ↓": f"{int(r['n_transferred'])}{tr}",
            "suppressed ↑": int(r["n_suppressed"]), "introduced ↓": int(r["n_introduced"]),
            "switched image ↓": int(r["n_switched"]),
            "McNemar p (mid-p)": f"{r['mcnemar_p']:.3g} ({r['mcnemar_midp']:.3g})",
            "same nearest image ↓": ci(r, "same_nearest"),
            f"median {r['distance_source']} teacher / student": f"{r['teacher_distance_median']:.3f} / {r['student_distance_median']:.3f}",
            "student farther on same image ↑": ("" if pd.isna(r["student_farther"]) else ci(r, "student_farther")),
        })
    return pd.DataFrame(out)
