"""Print the seeds study's tables as the markdown of docs/FINDINGS.md ("Seeds, nulls and ...").

    python scripts/seeds_tables.py benchmarks/seeds benchmarks/seeds-cd3000 benchmarks/seeds-pd ...

Reads each folder's ``seeds.csv`` (one row per image set and detector) and ``summary.csv``
(means over the CD runs, 95% t intervals over runs; plateau checks per run), which
``membench study seeds`` writes; and, for a folder holding a longer run of a run in the first
folder (same seeds and recipe), the paired change of its `l2ratio` flags from the first
folder's final length (Newcombe interval over the 1,000 noises, from the records' per-sample
arrays).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

WEIGHTS = {"": "", "ema": "saved EMA", "ema-corrected": "corrected EMA", "raw": "raw"}


def _ci(row: pd.Series, value: str, low: str, high: str) -> str:
    return "" if pd.isna(row[value]) else f"{row[value]:.3f} [{row[low]:.3f}, {row[high]:.3f}]"


def _num(x: float, fmt: str = ".3f") -> str:
    return "" if pd.isna(x) else format(x, fmt)


def image_sets(folders: list[Path], iterations: float | None) -> str:
    out = ["| image set | `l2ratio` | `carlini` | FID | recall | same nearest image as its teacher (as `teacher-s0`) "
           "| median L2 to its teacher's sample (to `teacher-s0`'s) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for folder in folders:
        df = pd.read_csv(folder / "seeds.csv")
        df["variant"] = df["variant"].fillna("")
        keep = df.iterations.isna() | (df.iterations == df.groupby("model").iterations.transform("max"))
        if iterations is not None:
            keep = df.iterations.isna() | (df.iterations == iterations) if folder == folders[0] else keep
        for (model, variant), g in df[keep].groupby(["model", "variant"], sort=False):
            by = g.set_index("detector")
            if "l2ratio" not in by.index or folder != folders[0] and g.kind.iloc[0] != "student":
                continue
            r = by.loc["l2ratio"]
            name = f"`{model}`" + (f", {WEIGHTS[variant]}" if variant else "")
            if not pd.isna(r.get("iterations")) and r.kind == "student":
                name += f" @ {int(r.iterations):,}"
            carlini = _ci(by.loc["carlini"], "memorized", "ci_low", "ci_high") if "carlini" in by.index else ""
            own = _ci(r, "nearest_agreement_vs_own", "agree_ci_low_vs_own", "agree_ci_high_vs_own")
            s0 = _num(r.nearest_agreement_vs_s0)
            agree = f"{own} ({s0})" if own else (f" ({s0})" if s0 else "")
            l2_own, l2_s0 = _num(r.median_l2_to_teacher_sample_vs_own, ".2f"), _num(r.median_l2_to_teacher_sample_vs_s0, ".2f")
            dist = f"{l2_own} ({l2_s0})" if l2_own else (f" ({l2_s0})" if l2_s0 else "")
            out.append(f"| {name} | {_ci(r, 'memorized', 'ci_low', 'ci_high')} | {carlini} | {_num(r.fid_heldout, '.2f')} "
                       f"| {_num(r.recall_heldout)} | {agree} | {dist} |")
    return "\n".join(out)


def means(folder: Path, iterations: float) -> str:
    s = pd.read_csv(folder / "summary.csv")
    s = s[(s.kind == "student") & (s.iterations == iterations)]
    out = ["| CD student weights @ iterations | runs | `l2ratio` mean [95% t over runs] | `carlini` | FID "
           "| agreement with own teacher | median L2 to own teacher's sample | `l2ratio` per run | paired `l2ratio` "
           "diff vs own teacher, per run |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    rows = pd.read_csv(folder / "seeds.csv")
    rows = rows[(rows.kind == "student") & (rows.iterations == iterations) & (rows.detector == "l2ratio")]
    for variant in ("ema", "ema-corrected", "raw"):
        g = s[s.variant == variant].set_index(["detector", "metric"])
        if g.empty:
            continue
        cell = lambda det, metric, fmt=".3f": (f"{format(g.loc[(det, metric), 'mean'], fmt)} "  # noqa: E731
                                               f"[{format(g.loc[(det, metric), 'seeds_ci_low'], fmt)}, "
                                               f"{format(g.loc[(det, metric), 'seeds_ci_high'], fmt)}]")
        first = g.loc[("l2ratio", "memorized")]
        by_run = rows[rows.variant == variant].set_index(rows[rows.variant == variant].model.str.replace(
            r"^\w+-t(\d+)-d(\d+)$", r"t\1d\2", regex=True)).diff_vs_teacher_vs_own
        diffs = " ".join(f"{by_run[run]:+.3f}" for run in str(first.runs).split())
        out.append(f"| {WEIGHTS[variant]} @ {int(iterations):,} | {int(first.n_runs)} ({first.runs}) "
                   f"| {cell('l2ratio', 'memorized')} | {cell('carlini', 'memorized')} "
                   f"| {cell('l2ratio', 'fid_heldout', '.2f')} | {cell('l2ratio', 'nearest_agreement_vs_own')} "
                   f"| {cell('l2ratio', 'median_l2_to_teacher_sample_vs_own', '.2f')} | {' '.join(f'{float(v):.3f}' for v in str(first['values']).split())} | {diffs} |")
    return "\n".join(out)


def plateaus(folder: Path) -> str:
    s = pd.read_csv(folder / "summary.csv")
    p = s[s.kind == "plateau"]
    if p.empty or "l2ratio_plateau" not in p:  # pd: no snapshot at 3/4 of its length, so no plateau check
        return ""
    out = ["| run | weights | `l2ratio` change, last quarter [95% paired] | `l2ratio` plateau | loss plateau |",
           "| --- | --- | --- | --- | --- |"]
    for _, r in p.iterrows():
        out.append(f"| {r.runs} | {WEIGHTS[r.variant]} | {r['mean']:+.3f} [{r.seeds_ci_low:+.3f}, {r.seeds_ci_high:+.3f}] "
                   f"| {'yes' if r.l2ratio_plateau else 'no'} | {'yes' if r.loss_plateau else 'no'} |")
    return "\n".join(out)


def _l2ratio_flags(folder: Path, model: str, variant: str, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    run = folder / "records" / "detection"
    (path,) = run.glob(f"seeds_{model}_{variant}_{iterations}_*variant={variant}_iterations={iterations}/l2ratio-*.npz")
    with np.load(path) as z:
        return z["flags"].astype(bool), z["noise_index"]


def continued(base: Path, longer: Path) -> str:
    """The longer run's students against the same run at the base folder's final length, paired by noise."""
    from membench.analysis.effect import paired_flags_difference

    short = pd.read_csv(base / "seeds.csv")
    end = int(short.iterations.max())
    rows = pd.read_csv(longer / "seeds.csv")
    rows = rows[(rows.kind == "student") & (rows.detector == "l2ratio")]
    out = [f"| weights | iterations | `l2ratio` | change from {end:,} [95% paired] |", "| --- | --- | --- | --- |"]
    for _, r in rows.sort_values(["variant", "iterations"]).iterrows():
        if not (short.model == r.model).any():
            continue
        a, ia = _l2ratio_flags(base, r.model, r.variant, end)
        b, ib = _l2ratio_flags(longer, r.model, r.variant, int(r.iterations))
        if not np.array_equal(ia, ib):
            raise SystemExit(f"{r.model}: the two runs' noises differ; not paired")
        d, lo, hi = paired_flags_difference(b, a)  # longer minus base
        out.append(f"| `{r.model}`, {WEIGHTS[r.variant]} | {int(r.iterations):,} | {b.mean():.3f} "
                   f"| {d:+.3f} [{lo:+.3f}, {hi:+.3f}] |")
    return "\n".join(out) if len(out) > 2 else ""


def main(argv: list[str]) -> None:
    folders = [Path(a) for a in argv] or [Path("benchmarks/seeds")]
    rows = {f: pd.read_csv(f / "seeds.csv") for f in folders}
    final = float(rows[folders[0]].iterations.max())
    # a longer run of a run in the first folder (same model name): its change from the first folder's length
    longer = [f for f in folders[1:] if rows[f].iterations.max() > final
              and set(rows[f].model) & set(rows[folders[0]].model)]
    print(image_sets(folders, final), "", means(folders[0], final), "", *(plateaus(f) for f in folders),
          *(continued(folders[0], f) for f in longer), sep="\n\n")


if __name__ == "__main__":
    main(sys.argv[1:])
