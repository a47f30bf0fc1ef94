"""``membench baseline`` / ``membench check``: a committed leaderboard as a regression test.

A baseline is a JSON file of leaderboard rows (memorized fraction with its Wilson interval,
plus any quality columns) and the command that made it. ``check`` recomputes those rows,
possibly with fewer samples, and reports a regression when

* memorization rose: the 95% interval of (new - baseline) memorized fraction (Newcombe's
  hybrid score interval for two independent proportions) lies entirely above
  ``tolerance``, i.e. we are 95% sure it rose by more than the tolerance;
* quality fell: for a quality column (lower-better FID/KID, higher-better precision/recall),
  the new value is worse than the baseline by more than ``quality_tolerance`` (relative);
  when both rows carry ``<col>_ci_low``/``<col>_ci_high``, the intervals must be that far apart.

The rows run with the same seed, so a smaller sample count re-uses a prefix of the
baseline's noises; treating the two runs as independent is conservative.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from membench.core.errors import MembenchError
from membench.core.specs import split_list
from membench.core.stats import wilson_interval
from membench.core.workspace import resolve_results

FORMAT = "membench-baseline"
SCHEMA = 1
ROW_KEYS = {"model": str, "detector": str, "seed": int, "n_samples": int, "n_flagged": int,
            "memorized": float, "ci_low": float, "ci_high": float}
EXIT_REGRESSED = 3


def difference_interval(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """p1 - p2 of two independent proportions with Newcombe's hybrid score (MOVER-Wilson) interval
    (Newcombe 1998, method 10 for unpaired data). Returns (difference, low, high)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, confidence)
    l2, u2 = wilson_interval(k2, n2, confidence)
    d = p1 - p2
    return d, max(-1.0, d - math.hypot(p1 - l1, u2 - p2)), min(1.0, d + math.hypot(u1 - p1, p2 - l2))


# ------------------------------------------------------------------ baseline files


def read_baseline(path: str | Path) -> dict[str, Any]:
    """Parse and validate a baseline file; any problem is one MembenchError line."""
    path = Path(path)
    if not path.is_file():
        raise MembenchError(f"baseline not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MembenchError(f"{path}: malformed baseline (not JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise MembenchError(f"{path}: not a membench baseline (expected \"format\": \"{FORMAT}\")")
    if data.get("schema") != SCHEMA:
        raise MembenchError(f"{path}: baseline schema {data.get('schema')!r} is not supported (this membench reads "
                            f"schema {SCHEMA}); regenerate it with `membench baseline`")
    rows = data.get("rows")
    if not isinstance(rows, list) or not rows:
        raise MembenchError(f"{path}: malformed baseline (\"rows\" must be a non-empty list)")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise MembenchError(f"{path}: malformed baseline (row {i} is not an object)")
        for key, typ in ROW_KEYS.items():
            v = row.get(key)
            ok = isinstance(v, typ) and not isinstance(v, bool) if typ is not float else (
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
            if not ok:
                raise MembenchError(f"{path}: malformed baseline (row {i}: {key!r} must be {typ.__name__}, got {v!r})")
        if row["n_samples"] <= 0 or not 0 <= row["n_flagged"] <= row["n_samples"]:
            raise MembenchError(f"{path}: malformed baseline (row {i}: n_flagged {row['n_flagged']} "
                                f"of n_samples {row['n_samples']})")
        if abs(row["memorized"] - row["n_flagged"] / row["n_samples"]) > 1e-9 or not (
                0 <= row["ci_low"] <= row["memorized"] <= row["ci_high"] <= 1):
            raise MembenchError(f"{path}: malformed baseline (row {i}: memorized/ci do not match n_flagged/n_samples)")
    keys = [(r["model"], r["detector"], r["seed"]) for r in rows]
    if len(set(keys)) != len(keys):
        raise MembenchError(f"{path}: malformed baseline (duplicate (model, detector, seed) rows)")
    return data


def _rows_from_board(df: pd.DataFrame) -> list[dict[str, Any]]:
    from membench.models.checkpoints import checkpoint_hash
    from membench.store.directions import quality_columns
    from membench.models.specs import resolve_model

    rows = []
    qcols = quality_columns(df.columns)
    for _, r in df.iterrows():
        if r["status"] != "ok":
            continue
        ckpt = checkpoint_hash(resolve_model(r["model"]))
        if r.get("checkpoint") and r["checkpoint"] != ckpt:
            continue  # a stale result of an older checkpoint still in the store
        row = {"model": r["model"], "role": r["role"], "teacher": r["teacher"] or None, "sampler": r["sampler"],
               "detector": r["detector"], "seed": int(r["seed"]), "n_samples": int(r["n_samples"]),
               "n_flagged": int(r["n_flagged"]), "memorized": float(r["memorized"]),
               "ci_low": float(r["ci_low"]), "ci_high": float(r["ci_high"]),
               "checkpoint_hash": ckpt}
        for c in qcols + [f"{c}{s}" for c in qcols for s in ("_ci_low", "_ci_high")]:
            if c in r and pd.notna(r[c]):
                row[c] = float(r[c])
        rows.append(row)
    return rows


def write_baseline(out: str | Path, models: str | Sequence[str] = "all", detectors: str | Sequence[str] = "all",
                   n_samples: int = 1000, seed: int = 0, results_dir: str | Path | None = None,
                   cache_dir: str | Path | None = None, device: str = "auto", progress: bool = False,
                   command: str | None = None) -> dict[str, Any]:
    """Run (or reuse) the given rows and write them as a baseline file (atomically)."""
    from membench import __version__
    from membench.core.io import atomic_write_json
    from membench.api import run

    df = run(models=models, detectors=detectors, n_samples=n_samples, seed=seed, device=device,
             results_dir=results_dir, cache_dir=cache_dir, progress=progress)
    rows = _rows_from_board(df)
    if not rows:
        raise MembenchError("no completed rows to put in a baseline (every detector was unavailable)")
    data = {"format": FORMAT, "schema": SCHEMA, "membench": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": command or (f"membench baseline --out {out} --model {_join(models)} --detector "
                                   f"{_join(detectors)} --n-samples {n_samples} --seed {seed}"),
            "rows": rows}
    atomic_write_json(out, data)
    return data


def _join(x: str | Sequence[str]) -> str:
    return x if isinstance(x, str) else ",".join(x)


# ------------------------------------------------------------------ the check


@dataclass
class CheckResult:
    table: pd.DataFrame  # one row per (baseline row, metric)
    regressions: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # baseline rows that could not be recomputed
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.regressions and not self.unchecked


def _quality_verdict(col: str, base: dict[str, Any], new: pd.Series, qtol: float) -> tuple[str, str]:
    from membench.store.directions import direction

    b, v = float(base[col]), float(new[col])
    lower_better = direction(col) == "lower"
    margin = qtol * abs(b)
    bl, bh, nl, nh = (base.get(f"{col}_ci_low"), base.get(f"{col}_ci_high"),
                      new.get(f"{col}_ci_low"), new.get(f"{col}_ci_high"))
    has_ci = all(x is not None and pd.notna(x) for x in (bl, bh, nl, nh))
    if lower_better:
        worse = (float(nl) - float(bh) if has_ci else v - b) > margin
    else:
        worse = (float(bl) - float(nh) if has_ci else b - v) > margin
    detail = f"{b:.4g} -> {v:.4g} ({'lower' if lower_better else 'higher'} is better; tolerance {qtol:.0%} of baseline" \
             f"{', intervals compared' if has_ci else ''})"
    return ("REGRESSED" if worse else "ok"), detail


def _select(rows: list[dict[str, Any]], key: str, names: str | Sequence[str] | None, where: str) -> list[dict[str, Any]]:
    """The rows whose ``key`` is among ``names`` (all when None); a name not there is one line."""
    if not names:
        return rows
    want = set(split_list(names) if isinstance(names, str) else names)
    unknown = want - {r[key] for r in rows}
    if unknown:
        raise MembenchError(f"{key}(s) {sorted(unknown)} are not in {where}")
    return [r for r in rows if r[key] in want]


def check(baseline: str | Path, n_samples: int | None = None, tolerance: float = 0.02,
          quality_tolerance: float = 0.10, models: str | Sequence[str] | None = None,
          detectors: str | Sequence[str] | None = None, results_dir: str | Path | None = None,
          cache_dir: str | Path | None = None, device: str = "auto", progress: bool = False) -> CheckResult:
    """Recompute the baseline's rows and compare; see the module docstring for the rule."""
    from membench.models.checkpoints import checkpoint_hash
    from membench.store.directions import quality_columns
    from membench.api import run
    from membench.models.specs import resolve_model

    if not (isinstance(tolerance, (int, float)) and 0 <= tolerance < 1):
        raise MembenchError(f"--tolerance must be in [0, 1), got {tolerance!r}")
    if not (isinstance(quality_tolerance, (int, float)) and 0 <= quality_tolerance):
        raise MembenchError(f"--quality-tolerance must be >= 0, got {quality_tolerance!r}")
    if n_samples is not None and (not isinstance(n_samples, int) or n_samples <= 0):
        raise MembenchError(f"--n-samples must be a positive integer, got {n_samples!r}")
    data = read_baseline(baseline)
    rows = _select(data["rows"], "model", models, f"the baseline {baseline}")
    rows = _select(rows, "detector", detectors, "the baseline rows selected")
    for r in rows:
        resolve_model(r["model"])  # unknown model: one line before any work
    result = CheckResult(pd.DataFrame())
    # One run per (n, seed): every model x detector needed; rows are then picked out.
    groups: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((n_samples or r["n_samples"], r["seed"]), []).append(r)
    out_rows = []
    for (n, seed), grp in groups.items():
        ms = list(dict.fromkeys(r["model"] for r in grp))
        ds = list(dict.fromkeys(r["detector"] for r in grp))
        board = run(models=ms, detectors=ds, n_samples=n, seed=seed, device=device,
                    results_dir=resolve_results(results_dir, "check"),  # None: <workspace>/results/check
                    cache_dir=cache_dir, progress=progress)
        for base in grp:
            label = f"{base['model']} / {base['detector']} (seed {seed})"
            ckpt = checkpoint_hash(resolve_model(base["model"]))
            hit = board[(board["model"] == base["model"]) & (board["detector"] == base["detector"])]
            if "checkpoint" in hit:  # results of an older checkpoint may still sit in the store
                hit = hit[(hit["checkpoint"] == ckpt) | (hit["status"] != "ok")]
            if base.get("checkpoint_hash") and base["checkpoint_hash"] != ckpt:
                result.notes.append(f"{label}: checkpoint changed since the baseline "
                                    f"({base['checkpoint_hash'][:12]} -> {ckpt[:12]})")
            if hit.empty or hit.iloc[0]["status"] != "ok":
                note = hit.iloc[0]["note"] if not hit.empty else "no result"
                # A row that cannot be recomputed is unchecked: that fails the check too.
                result.unchecked.append(f"{label}: not recomputed ({note})")
                out_rows.append({"row": label, "metric": "memorized", "verdict": "NOT CHECKED", "detail": note})
                continue
            new = hit.iloc[0]
            d, lo, hi = difference_interval(int(new["n_flagged"]), int(new["n_samples"]),
                                            base["n_flagged"], base["n_samples"])
            verdict = "REGRESSED" if lo > tolerance else ("improved" if hi < -tolerance else "ok")
            detail = (f"{base['memorized']:.3f} [{base['ci_low']:.3f}, {base['ci_high']:.3f}] (n={base['n_samples']}) -> "
                      f"{new['memorized']:.3f} [{new['ci_low']:.3f}, {new['ci_high']:.3f}] (n={int(new['n_samples'])}); "
                      f"difference {d:+.3f} [{lo:+.3f}, {hi:+.3f}], tolerance {tolerance:+.3f}")
            out_rows.append({"row": label, "metric": "memorized ↓", "verdict": verdict, "detail": detail,
                             "baseline": base["memorized"], "new": float(new["memorized"]),
                             "diff": d, "diff_ci_low": lo, "diff_ci_high": hi})
            if verdict == "REGRESSED":
                result.regressions.append(f"{label}: memorization rose: {detail}")
            for col in quality_columns(base.keys()):
                if col not in new.index or pd.isna(new[col]):
                    result.notes.append(f"{label}: {col} in the baseline but not recomputed")
                    continue
                qv, qd = _quality_verdict(col, base, new, quality_tolerance)
                out_rows.append({"row": label, "metric": col, "verdict": qv, "detail": qd,
                                 "baseline": float(base[col]), "new": float(new[col])})
                if qv == "REGRESSED":
                    result.regressions.append(f"{label}: {col} got worse: {qd}")
    result.table = pd.DataFrame(out_rows)
    return result
