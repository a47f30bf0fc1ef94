"""The leaderboard: one table built from the store's records (never a source of truth).

One row per detection record (model x detector x samples); the quality record of the same
sample set (its content key) adds the quality columns: ``fid_heldout``, ``kid_heldout``,
``kid_heldout_std``, ``precision_heldout`` (+ ``_ci_low``/``_ci_high``), ``recall_heldout``
(+ CI), the same with ``_train``, ``quality_n_heldout``/``_train``, ``quality_extractor`` and
``quality_note``. When a sample set has quality records from several extractors, the
digits classifier's is shown, else the newest.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from membench.store.records import Record

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = [
    "model", "role", "teacher", "method", "sampler", "nfe", "train_data", "detector",
    "n_samples", "seed", "status", "memorized", "ci_low", "ci_high", "n_flagged", "score_median", "note",
    "sample_key",
    "checkpoint",  # content hash of the weights: tells a stale result (older checkpoint) from the current one
    # calibration: the share of never-trained held-out images the same test flags (its floor)
    "heldout_flagged", "heldout_flagged_ci_low", "heldout_flagged_ci_high",
]
# Model- and set-level statistics some tests add (membership AUC / TPR at 1% FPR, C_T, MMD);
# each with _ci_low/_ci_high when it has an interval, NaN for the other tests.
TEST_METRICS = ("auc", "tpr_at_1fpr", "ct", "ct_null", "mmd_stat", "mmd_p")
WITH_INTERVAL = ("heldout_flagged", "auc", "tpr_at_1fpr")
COLUMNS += [c for m in TEST_METRICS for c in ((m, f"{m}_ci_low", f"{m}_ci_high") if m in WITH_INTERVAL else (m,))]
REFERENCES = ("heldout", "train")
QUALITY_COLUMNS = ["quality_extractor"] + [
    c for ref in REFERENCES for c in (
        f"fid_{ref}", f"kid_{ref}", f"kid_{ref}_std",
        f"precision_{ref}", f"precision_{ref}_ci_low", f"precision_{ref}_ci_high",
        f"recall_{ref}", f"recall_{ref}_ci_low", f"recall_{ref}_ci_high", f"quality_n_{ref}")
] + ["quality_note"]
DEFAULT_QUALITY_EXTRACTOR = "digits-classifier"  # the registry name of `--quality-extractor digits`
DIRECTION_NOTE = ("Memorized fraction: lower is less memorization; intervals are 95% Wilson intervals over "
                  "samples. Quality (digits-classifier features unless `quality_extractor` in the CSV says "
                  "otherwise): *held-out* columns compare the samples with the held-out images (the fair "
                  "reference); *train* compares them with the training images, which rewards memorization. "
                  "↓: lower is better, ↑: higher is better.")


def detection_row(rec: Record) -> dict[str, Any]:
    """The leaderboard row of one detection record (ok or unavailable)."""
    nan = float("nan")
    m, mem = rec.subject, rec.metrics.get("memorized")
    lo, hi = mem.interval if mem is not None and mem.interval else (nan, nan)
    return {
        "model": m["name"], "role": m.get("role", ""), "teacher": m.get("teacher") or "",
        "method": m.get("method") or "", "sampler": m.get("sampler", ""), "nfe": m.get("nfe"),
        "train_data": m.get("dataset") or rec.data.get("spec", ""), "detector": rec.test["name"],
        "n_samples": rec.n, "seed": rec.seed, "status": rec.status,
        "memorized": mem.value if mem is not None else nan, "ci_low": lo, "ci_high": hi,
        "n_flagged": rec.stats.get("n_flagged", -1), "score_median": rec.value("score_median"),
        # unavailable: the reason; ok: what the detector converted (e.g. gray -> RGB for an embedder)
        "note": rec.reason or rec.info.get("note", ""),
        "sample_key": rec.samples.get("key"), "checkpoint": m.get("checkpoint_hash") or "",
        **metric_columns(rec, ("heldout_flagged", *TEST_METRICS)),
    }


def metric_columns(rec: Record, names: Iterable[str]) -> dict[str, float]:
    """``name`` (and ``name_ci_low``/``_ci_high`` for WITH_INTERVAL) of each metric (NaN when absent)."""
    nan = float("nan")
    out: dict[str, float] = {}
    for name in names:
        metric = rec.metrics.get(name)
        out[name] = metric.value if metric is not None else nan
        if name in WITH_INTERVAL:
            lo, hi = metric.interval if metric is not None and metric.interval else (nan, nan)
            out[f"{name}_ci_low"], out[f"{name}_ci_high"] = lo, hi
    return out


def quality_columns_of(rec: Record) -> dict[str, Any]:
    """The flat quality columns of one quality record (ok or unavailable)."""
    extractor = rec.test.get("extractor", {}).get("name", "")
    if not rec.ok:
        return {"quality_extractor": extractor, "quality_note": f"unavailable: {rec.reason}"}
    out: dict[str, Any] = {"quality_extractor": extractor}
    for name, metric in rec.metrics.items():
        out[name] = metric.value
        if metric.interval is not None:
            out[f"{name}_ci_low"], out[f"{name}_ci_high"] = metric.interval
    out.update({k: v for k, v in rec.stats.items() if k in QUALITY_COLUMNS})
    return out


def _pick(records: list[Record]) -> Record:
    """The default extractor's record when there is one, else the newest."""
    newest_first = sorted(records, key=lambda r: r.created, reverse=True)
    return sorted(newest_first, key=lambda r: r.test.get("extractor", {}).get("name") != DEFAULT_QUALITY_EXTRACTOR)[0]


def build(records: Iterable[Record]) -> "pd.DataFrame":
    """The leaderboard of ``records``: detection rows with their sample set's quality beside them."""
    import pandas as pd

    records = list(records)
    by_samples: dict[str, list[Record]] = {}
    for rec in records:
        if rec.kind == "quality":
            by_samples.setdefault(rec.samples.get("key"), []).append(rec)
    quality = {key: quality_columns_of(_pick([r for r in recs if r.ok] or recs)) for key, recs in by_samples.items()}
    rows = [{**detection_row(r), **quality.get(r.samples.get("key"), {})} for r in records if r.kind == "detection"]
    df = pd.DataFrame(rows, columns=COLUMNS + QUALITY_COLUMNS)
    for c in ("quality_extractor", "quality_note"):
        df[c] = df[c].astype(object).where(df[c].notna(), "")
    for c in QUALITY_COLUMNS:
        if c not in ("quality_extractor", "quality_note"):
            df[c] = pd.to_numeric(df[c], errors="coerce")
    return df.sort_values(["detector", "role", "model", "n_samples", "seed"], ascending=[True, False, True, True, True],
                          ignore_index=True)


def from_store(results_dir: str | Path, extra: Iterable[Record] = (), problems: list[str] | None = None
               ) -> "pd.DataFrame":
    """The leaderboard of every stored record, plus ``extra`` (this run's unavailable ones)."""
    from membench.store.records import iter_records

    corrupt: list[tuple[Path, str]] = []
    board = build([*iter_records(results_dir, problems=problems, corrupt=corrupt), *extra])
    rows = [corrupt_row(path, why) for path, why in corrupt if path.parent.parent.name == "detection"]
    if rows:  # never dropped in silence: the row stays, marked, until a rerun recomputes it
        import pandas as pd

        board = pd.concat([board, pd.DataFrame(rows, columns=board.columns)], ignore_index=True)
    return board


def corrupt_row(path: Path, why: str) -> dict[str, Any]:
    """The row of a detection record that cannot be read: named by its path, status ``corrupt``."""
    nan = float("nan")
    test = path.stem.rsplit("-", 1)[0]
    return {"model": path.parent.name, "detector": test, "status": "corrupt", "memorized": nan, "ci_low": nan,
            "ci_high": nan, "note": f"{why}; rerun the same command to recompute it", "quality_note": "",
            "quality_extractor": ""}


def rebuild(results_dir: str | Path, extra: Iterable[Record] = ()) -> "pd.DataFrame":
    """Rebuild ``leaderboard.csv``/``.md`` under ``results_dir`` from the store (under a lock, so
    concurrent runs' last rebuild sees every record) and return the table."""
    from membench.core.locks import file_lock
    from membench.store.records import lock_path

    with file_lock(lock_path(results_dir, "leaderboard")):
        board = from_store(results_dir, extra)
        write(board, results_dir)
    return board


def _ci(v: float, lo: float, hi: float) -> str:
    import pandas as pd

    return "" if pd.isna(v) else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def format_table(df: "pd.DataFrame") -> "pd.DataFrame":
    """The human-readable view: every interval beside its value, direction arrows in the headers."""
    import pandas as pd

    out = df[["model", "role", "teacher", "method", "sampler", "nfe", "train_data", "detector", "n_samples",
              "seed"]].copy()
    out["memorized ↓ (95% CI)"] = [
        _ci(f, lo, hi) if st == "ok" else f"{st}: {note}"
        for f, lo, hi, st, note in zip(df["memorized"], df["ci_low"], df["ci_high"], df["status"], df["note"])]
    out["median score"] = df["score_median"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    out["note"] = [n if st == "ok" and isinstance(n, str) else "" for st, n in zip(df["status"], df["note"])]
    if "fid_heldout" in df.columns:
        num = lambda v: "" if pd.isna(v) else format(v, ".3g")  # noqa: E731
        out["FID held-out ↓"] = df["fid_heldout"].map(num)
        out["KID held-out ↓"] = df["kid_heldout"].map(num)
        for col in ("precision_heldout", "recall_heldout"):
            out[f"{col.replace('_', ' ').replace('heldout', 'held-out')} ↑ (95% CI)"] = [
                _ci(*t) for t in zip(df[col], df[f"{col}_ci_low"], df[f"{col}_ci_high"])]
        out["FID train ↓"] = df["fid_train"].map(num)
    if df["quality_note"].astype(bool).any():
        out["quality note"] = list(df["quality_note"])
    return out


def write(df: "pd.DataFrame", results_dir: str | Path) -> tuple[Path, Path]:
    from membench.core.io import atomic_write_text

    results_dir = Path(results_dir)
    csv_path, md_path = results_dir / "leaderboard.csv", results_dir / "leaderboard.md"
    atomic_write_text(csv_path, df.to_csv(index=False))
    atomic_write_text(md_path, "# membench leaderboard\n\n" + DIRECTION_NOTE + "\n\n"
                      + format_table(df).to_markdown(index=False) + "\n")
    return csv_path, md_path
