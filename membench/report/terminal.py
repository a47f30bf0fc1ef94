"""What `membench run` and `membench detect` print: made for a person, or data for a machine.

``--format table`` (the default): a compact table (model, detector, memorized [95% CI], FID,
NFE) and under it the paired effect of each student against its teacher (difference [95% CI],
McNemar p, the share of noises landing on the teacher's nearest training image beside its
null), then one line per pair read back from the store ("cached"). Rendered with ``rich`` to
fit 100 columns; plain ASCII (no colour, ASCII borders and symbols) when the output is not a
terminal. ``csv``/``json``/``markdown``: only the data, on standard output.

The null of a student's same-nearest-image share is the agreement of the NFE-matched control
with its teacher (``analysis.effect.null_row``); without one the row says "none measured".
"""
from __future__ import annotations

import io
import json
import math
import sys
from typing import IO, Any, Iterable

import pandas as pd

WIDTH = 100  # the widest a table is drawn, in characters

# Symbols per mode: a terminal gets Unicode, anything else plain ASCII.
UNICODE = {"delta": "Δ", "minus": "−", "x": "×", "down": "↓", "up": "↑"}
ASCII = {"delta": "diff", "minus": "-", "x": "x", "down": "(lower=less)", "up": ""}


def _num(v: Any, fmt: str = ".3g") -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def _ci(v: Any, lo: Any, hi: Any, fmt: str = ".3f") -> str:
    if v is None or pd.isna(v):
        return ""
    return f"{v:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def _p(p: Any) -> str:
    if p is None or pd.isna(p):
        return ""
    return "<1e-300" if p == 0 else f"{p:.2g}"


# ------------------------------------------------------------------ the rows


def compact_rows(board: pd.DataFrame) -> pd.DataFrame:
    """model, detector, memorized [95% CI], FID held-out, NFE: one row per leaderboard row."""
    rows = []
    for _, r in board.iterrows():
        mem = (_ci(r["memorized"], r["ci_low"], r["ci_high"]) if r["status"] == "ok"
               else f"unavailable: {r.get('note', '')}")
        fid = r.get("fid_heldout", float("nan"))
        nfe = r.get("nfe")
        rows.append({"model": r["model"] + ("" if r.get("role") in ("teacher", "samples", None, "")
                                            else f" ({r['role']})"),
                     "detector": r["detector"], "memorized [95% CI]": mem, "FID": _num(fid),
                     "NFE": "" if nfe is None or pd.isna(nfe) else str(int(nfe))})
    out = pd.DataFrame(rows, columns=["model", "detector", "memorized [95% CI]", "FID", "NFE"])
    if len(out) and not out["FID"].astype(bool).any() and not out["NFE"].astype(bool).any():
        # sample files (detect): no quality, no sampler; the score's median says more
        out = out.drop(columns=["FID", "NFE"])
        out["median score"] = [_num(v, ".4g") for v in board["score_median"]]
    return out


def effect_rows(effect: pd.DataFrame, sym: dict[str, str] = ASCII, with_teacher: bool | None = None) -> pd.DataFrame:
    """One row per student/control: difference [CI], McNemar p, same nearest image [CI] and its null.

    ``with_teacher``: a "vs" column naming each row's teacher (default: only when there are several)."""
    from membench.analysis.effect import null_row

    if with_teacher is None:
        with_teacher = effect["teacher"].nunique() > 1
    files = bool(len(effect)) and (effect["role"] == "samples").all()  # detect: sample sets, no controls
    cols = ["samples" if files else "student", *(["vs"] if with_teacher else []), "detector",
            f"{sym['delta']} memorized [95% CI]", "McNemar p", "same nearest [CI]", "null [CI]"]
    rows = []
    for _, r in effect.iterrows():
        base = [r["student"], *([r["teacher"]] if with_teacher else []), r["detector"]]
        if r["status"] != "ok":
            rows.append(base + [f"{r['status']}: {r['note']}", "", "", ""])
            continue
        diff = f"{r['diff']:+.3f} [{r['diff_ci_low']:+.3f}, {r['diff_ci_high']:+.3f}]".replace("-", sym["minus"])
        same = _ci(r["same_nearest"], r["same_nearest_ci_low"], r["same_nearest_ci_high"], ".2f")
        if r["role"] == "control":
            null = "(a control)"
        else:
            ctrl = null_row(effect, r)
            null = ("none measured" if ctrl is None else
                    _ci(ctrl["same_nearest"], ctrl["same_nearest_ci_low"], ctrl["same_nearest_ci_high"], ".2f"))
        rows.append(base + [diff, _p(r["mcnemar_p"]), same, null])
    out = pd.DataFrame(rows, columns=cols)
    return out.drop(columns=["null [CI]"]) if files else out


def null_legend(effect: pd.DataFrame) -> str:
    """Which control is each student's null, in one line."""
    from membench.analysis.effect import null_row

    used: dict[str, str] = {}
    missing = []
    for _, r in effect[effect["role"] == "student"].iterrows() if not effect.empty else []:
        ctrl = null_row(effect, r)
        if ctrl is None:
            missing.append(r["student"])
        else:
            used[ctrl["student"]] = f"{ctrl['student']} at {int(ctrl['nfe'])} NFE"
    text = ("same nearest: share of noises whose nearest training image is the teacher's; null: that share for "
            "the NFE-matched control" + (f" ({', '.join(used.values())})" if used else ""))
    if missing:
        text += f"; no null measured for {', '.join(dict.fromkeys(missing))}"
    return text + "."


def cached_lines(board: pd.DataFrame, sym: dict[str, str] = ASCII) -> list[str]:
    """One line per model x detector pair read back from the store instead of computed."""
    if "cached" not in board or not board["cached"].astype(bool).any():
        return []
    return [f"cached: {r['model']} {sym['x']} {r['detector']} (n={int(r['n_samples'])}, seed {int(r['seed'])})"
            for _, r in board[board["cached"].astype(bool)].iterrows()] + [
        "(cached: read from the store, not recomputed; --force recomputes)"]


def run_effect(results_dir: Any, board: pd.DataFrame) -> pd.DataFrame:
    """The effect rows of the students and controls in ``board`` (this run's rows), from the store."""
    from membench.analysis.effect import effect_table
    from membench.store.records import iter_records

    if board.empty:
        return pd.DataFrame()
    wanted = {(m, d, int(s), int(n)) for m, d, s, n in zip(board["model"], board["detector"], board["seed"],
                                                             board["n_samples"])}
    effect = effect_table(list(iter_records(results_dir, "detection")))
    if effect.empty:
        return effect
    keep = [(m, d, int(s), int(n)) in wanted for m, d, s, n in zip(effect["student"], effect["detector"],
                                                                    effect["seed"], effect["n_samples"])]
    return effect[keep].reset_index(drop=True)


def detect_effect(records: list[Any]) -> pd.DataFrame:
    """The paired comparison of ``detect``'s later sample sets with the first (empty for one set)."""
    from membench.analysis.effect import effect_table

    if not any(r.subject.get("teacher") for r in records):
        return pd.DataFrame()
    return effect_table(records)


def per_sample_table(records: list[Any]) -> pd.DataFrame:
    """One row per image and detector: set, file name, noise index, score, flag, nearest training image."""
    frames = []
    for r in records:
        a = r.load_arrays()
        n = len(a["scores"])
        frames.append(pd.DataFrame({
            "samples": r.subject["name"].removeprefix("samples:"), "detector": r.test["name"],
            "sample": range(n), "file": a.get("sample_name", [""] * n), "noise_index": a["noise_index"],
            "score": a["scores"], "flag": a["flags"], "nearest_train_index": a["nearest"]}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ------------------------------------------------------------------ rendering


def is_terminal(stream: IO[str]) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def _box(tty: bool) -> Any:
    """Header rule only, no vertical lines (columns 2 spaces apart); '-' off a terminal."""
    from rich import box

    return box.SIMPLE_HEAD if tty else box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)


def _rich_table(df: pd.DataFrame, tty: bool, right: Iterable[str] = ()) -> Any:
    from rich.table import Table

    table = Table(box=_box(tty), safe_box=not tty, pad_edge=False, show_edge=False, padding=(0, 1, 0, 0),
                  header_style="bold" if tty else "")
    right = set(right)
    for c in df.columns:
        table.add_column(str(c), justify="right" if c in right else "left", overflow="fold")
    for row in df.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    return table


# What plain-ASCII output writes for the non-ASCII characters a name or note may hold.
_TO_ASCII = str.maketrans({"−": "-", "–": "-", "—": "-", "×": "x", "→": "->", "Δ": "diff", "↓": "", "↑": "",
                           "≤": "<=", "≥": ">=", "·": "."})


def to_ascii(text: str) -> str:
    return text.translate(_TO_ASCII).encode("ascii", "replace").decode("ascii")


def render_table(board: pd.DataFrame, effect: pd.DataFrame, stream: IO[str] | None = None,
                 width: int | None = None, footer: Iterable[str] = (), tty: bool | None = None) -> None:
    """The human view: compact table, effects, cached lines, then ``footer`` lines.

    ``tty`` (default: whether ``stream`` is a terminal) picks colour and Unicode, else plain ASCII."""
    from rich.console import Console

    stream = stream or sys.stdout
    tty = is_terminal(stream) if tty is None else tty
    sym = UNICODE if tty else ASCII
    if width is None:
        width = min(WIDTH, Console(file=stream).width) if tty else WIDTH
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=tty, color_system="auto" if tty else None,
                      highlight=False, emoji=False, soft_wrap=False)
    seeds = sorted({int(s) for s in board["seed"]}) if len(board) else []
    ns = sorted({int(n) for n in board["n_samples"]}) if len(board) else []
    has_fid = "fid_heldout" in board and board["fid_heldout"].notna().any()
    console.print(f"n={', '.join(map(str, ns))} samples, seed {', '.join(map(str, seeds))}; memorized: flagged "
                  "fraction (lower = less)" + ("; FID vs held-out (lower = better)" if has_fid else ""),
                  markup=False, style="bold" if tty else None)
    console.print(_rich_table(compact_rows(board), tty, right=("FID", "NFE")))
    if effect is not None and not effect.empty:
        teachers = list(dict.fromkeys(effect["teacher"]))
        vs = f" vs {teachers[0]}" if len(teachers) == 1 else ""
        files = (effect["role"] == "samples").all()
        console.print(f"\nPaired comparison{vs}: each set {sym['minus']} the reference over the same noise indices "
                      "(95% CIs)." if files else
                      f"\nPaired effect of distillation{vs}: student {sym['minus']} teacher over the same noises "
                      "(95% CIs).", markup=False, style="bold" if tty else None)
        console.print(_rich_table(effect_rows(effect, sym), tty))
        console.print("same nearest: share of noises whose nearest training image is the reference's."
                      if files else null_legend(effect), markup=False)
    lines = [*cached_lines(board, sym), *footer]
    if lines:
        console.print()
    for line in lines:
        console.print(line, markup=False, soft_wrap=True)  # a path is never cut in two
    text = "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())  # no padding to the width
    stream.write(text if tty else to_ascii(text))


def _clean(df: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(df.to_json(orient="records", double_precision=15)) if not df.empty else []


def render_data(fmt: str, board: pd.DataFrame, effect: pd.DataFrame) -> str:
    """``csv``: the run's leaderboard rows, every column; ``json``: {"leaderboard", "effect"} with
    every column; ``markdown``: the compact table and the effect table."""
    if fmt == "csv":
        buf = io.StringIO()
        board.to_csv(buf, index=False)
        return buf.getvalue()
    if fmt == "json":
        return json.dumps({"leaderboard": _clean(board), "effect": _clean(effect)}, indent=1) + "\n"
    if fmt == "markdown":
        parts = [compact_rows(board).to_markdown(index=False)]
        if effect is not None and not effect.empty:
            parts.append(effect_rows(effect, UNICODE).to_markdown(index=False))
        return "\n\n".join(parts) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


def show(fmt: str, board: pd.DataFrame, effect: pd.DataFrame, footer: Iterable[str] = (),
         stream: IO[str] | None = None, quiet: bool = False) -> None:
    """Print in ``fmt``; for machine formats the footer and cached lines go to standard error."""
    stream = stream or sys.stdout
    if fmt == "table":
        render_table(board, effect, stream, footer=footer)
        return
    stream.write(render_data(fmt, board, effect))
    if not quiet:
        for line in [*cached_lines(board), *footer]:
            print(line, file=sys.stderr)
