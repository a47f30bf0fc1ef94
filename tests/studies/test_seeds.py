"""The seeds study runs in resumable parts and rebuilds its tables from whatever parts exist."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from membench.core.errors import MembenchError
from membench.studies.base import StudyContext, make_study

SMALL = {"teacher_seeds": (0,), "distill_seeds": (0,), "iterations": 4, "disjoint": False, "early_step": 0,
         "euler_steps": (1,), "n_samples": 16, "detectors": ("l2ratio",), "quality": False,
         "method": "cd:batch_size=8"}


def test_parts_are_written_once_and_tables_cover_every_weight_variant(tmp_path: Path) -> None:
    study = make_study("seeds", SMALL)
    assert study.parts() == ["cd-t0-d0"]
    tables = study.run(tmp_path, StudyContext())
    part = tmp_path / "parts" / "cd-t0-d0"
    assert {p.name for p in (part / "variants").iterdir()} == {"raw", "ema-corrected", "ema@3", "raw@3",
                                                                 "ema-corrected@3"}
    t = tables["seeds"]
    students = t[t["kind"] == "student"]
    assert set(students["variant"]) == {"ema", "raw", "ema-corrected"} and set(students["iterations"]) == {3, 4}
    assert students["nearest_agreement_vs_own"].between(0, 1).all()
    plateau = tables["summary"][tables["summary"]["metric"] == "plateau"]
    assert len(plateau) == 3 and plateau["l2ratio_plateau"].notna().all()
    stamp = (part / "membench.json").stat().st_mtime_ns
    make_study("seeds", SMALL).run(tmp_path, StudyContext())  # a rerun skips the finished part
    assert (part / "membench.json").stat().st_mtime_ns == stamp
    assert pd.read_csv(tmp_path / "parts.csv")["done"].all()


def test_unknown_part_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(MembenchError):
        make_study("seeds", {**SMALL, "only": ("cd-t9-d0",)}).run(tmp_path, StudyContext())


def test_ct_gets_snapshots_and_pd_its_per_stage_length(tmp_path: Path) -> None:
    ct = make_study("seeds", {**SMALL, "method": "ct:batch_size=8"})
    assert ct.parts() == ["ct-t0-d0"]
    t = ct.run(tmp_path / "ct", StudyContext())["seeds"]
    part = tmp_path / "ct" / "parts" / "ct-t0-d0"
    assert {"ema@3", "raw@3", "ema-corrected@3"} <= {p.name for p in (part / "variants").iterdir()}
    assert set(t[t["kind"] == "student"]["iterations"]) == {3, 4}
    pd_study = make_study("seeds", {**SMALL, "method": "pd:batch_size=8,start_steps=4"})
    t = pd_study.run(tmp_path / "pd", StudyContext())["seeds"]
    import json

    record = json.loads((tmp_path / "pd" / "parts" / "pd-t0-d0" / "membench.json").read_text())["training"]
    assert record["config"]["iterations_per_stage"] == 4 and len(record["stages"]) == 2  # 4 -> 2 -> 1 steps
    students = t[t["kind"] == "student"]
    assert set(students["iterations"]) == {4} and set(students["variant"]) == {"ema", "raw", "ema-corrected"}


def test_loss_plateau_rule() -> None:
    from membench.studies.seeds import loss_plateau

    flat = [1.0, 1.02, 0.98, 1.01, 0.99, 1.0, 1.03, 0.97, 1.0, 1.01, 0.99, 1.02, 0.98, 1.0, 1.01]  # 1,500 iterations
    falling = [1.0 - 0.03 * i + 0.002 * (-1) ** i for i in range(15)]
    assert loss_plateau(flat) is True
    assert loss_plateau(falling) is False
    assert loss_plateau([1.0, 0.9, 0.8]) is None  # fewer than 2 + 2 blocks: no verdict


def test_seeds_tables_script_prints_the_committed_numbers(capsys) -> None:
    """scripts/seeds_tables.py (the FINDINGS tables) formats cells of the committed CSVs, nothing else."""
    import importlib.util

    repo = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("seeds_tables", repo / "scripts" / "seeds_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main([str(repo / "benchmarks" / "seeds"), str(repo / "benchmarks" / "seeds-pd")])
    out = capsys.readouterr().out
    summary = pd.read_csv(repo / "benchmarks" / "seeds" / "summary.csv")
    final = summary[summary.kind == "student"].iterations.max()
    raw = summary[(summary.kind == "student") & (summary.variant == "raw") & (summary.iterations == final)
                  & (summary.detector == "l2ratio") & (summary.metric == "memorized")].iloc[0]
    assert f"| raw @ {int(final):,} | {int(raw.n_runs)} ({raw.runs}) | {raw['mean']:.3f} " in out
    rows = pd.read_csv(repo / "benchmarks" / "seeds-pd" / "seeds.csv")
    pd_raw = rows[(rows.variant == "raw") & (rows.detector == "l2ratio")].iloc[0]
    assert f"| `{pd_raw.model}`, raw @ {int(pd_raw.iterations):,} | {pd_raw.memorized:.3f} [" in out
