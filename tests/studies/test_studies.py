"""The digits studies: paired measurements against hand-made answers, the CD snapshot hook, and
each study end to end on tiny models (``--quick``)."""
import numpy as np
import pandas as pd
import pytest
import torch

from membench.cli import main
from membench.store.records import Record
from membench.studies.measure import paired_columns


def _rec(flags, nearest):
    flags = np.asarray(flags, dtype=bool)
    arrays = {"noise_index": np.arange(len(flags)), "scores": np.where(flags, 0.1, 0.9), "flags": flags,
              "nearest": np.asarray(nearest)}
    return Record("detection", {"name": "m"}, {"key": "k", "n": len(flags), "seed": 0}, {}, 
                  {"name": "l2ratio", "higher_is_memorized": False}, arrays=arrays)


def test_paired_columns_known_answer():
    teacher = _rec([1, 1, 1, 1, 0, 0, 0, 0], [0, 1, 2, 3, 4, 5, 6, 7])
    # same image for noises 0-2 and 4; flagged only on 0 and 5
    student = _rec([1, 0, 0, 0, 0, 1, 0, 0], [0, 1, 2, 9, 4, 8, 8, 8])
    imgs_t = np.zeros((8, 1, 2, 2), dtype=np.float32)
    imgs_s = imgs_t + np.arange(8, dtype=np.float32)[:, None, None, None]  # ||s - t|| = 2 i
    row = paired_columns(student, teacher, imgs_s, imgs_t)
    assert row["nearest_agreement"] == 4 / 8
    assert row["teacher_copies"] == 4
    assert row["copies_kept"] == 3 / 4 and row["copies_flagged"] == 1 / 4
    assert row["diff_vs_teacher"] == pytest.approx(2 / 8 - 4 / 8)
    assert row["diff_ci_low"] <= row["diff_vs_teacher"] <= row["diff_ci_high"]
    assert row["median_l2_to_teacher_sample"] == pytest.approx(np.median(2 * np.arange(8)))


def test_paired_difference_respects_pairing():
    a = np.array([True] * 30 + [False] * 70)
    imgs = np.zeros((100, 1, 1, 1), np.float32)
    row = paired_columns(_rec(a, np.zeros(100)), _rec(a, np.zeros(100)), imgs, imgs)
    d, lo, hi = row["diff_vs_teacher"], row["diff_ci_low"], row["diff_ci_high"]
    assert d == 0.0 and lo <= 0.0 <= hi and hi - lo < 0.1  # identical outcomes: a narrow interval around 0
    b = a.copy()
    b[:10] = False
    row = paired_columns(_rec(a, np.zeros(100)), _rec(b, np.zeros(100)), imgs, imgs)
    d, lo, hi = row["diff_vs_teacher"], row["diff_ci_low"], row["diff_ci_high"]
    assert d == pytest.approx(0.1) and lo > 0 and lo <= d <= hi


def test_cd_snapshots_start_at_the_teacher_and_end_at_the_student(tiny_teacher):
    from membench.models.checkpoints import load_denoiser
    from membench.data import load_dataset
    from membench.studies.pipeline import distill

    teacher, _ = load_denoiser(tiny_teacher)
    student, sampler, snaps, record = distill(teacher, load_dataset("digits:n=16"), "cd:batch_size=8", "cpu", False,
                                              snapshot_at=(0, 2, 3), iterations=3)
    assert sorted(snaps) == [0, 2, 3] and sampler.startswith("consistency")
    for p0, pt in zip(snaps[0].parameters(), teacher.parameters()):
        assert torch.equal(p0, pt)  # length 0: the teacher's weights (boundary scaling only)
    assert snaps[0].config.boundary and not teacher.config.boundary
    for p3, ps in zip(snaps[3].parameters(), student.parameters()):
        assert torch.equal(p3, ps)
    assert any(not torch.equal(a, b) for a, b in zip(snaps[2].parameters(), snaps[0].parameters()))


def test_distill_length_quick(tiny_teacher, tmp_path):
    out = tmp_path / "dl"
    assert main(["study", "distill-length", "--quick", "--quiet", "--set", "teacher=tiny", "--set", "n_samples=16",
                 "--out", str(out)]) == 0
    t = pd.read_csv(out / "distill_length.csv")
    assert set(t.model) == {"teacher", "control", "student"}
    assert sorted(t[t.model == "student"].length.unique()) == [0, 2, 4]
    st = t[t.model != "teacher"]
    assert st.nearest_agreement.between(0, 1).all() and st.diff_ci_method.notna().all()
    assert ((t.ci_low <= t.memorized) & (t.memorized <= t.ci_high)).all()
    # the 1-step student before distillation and the 1-step Euler teacher are the same computation
    # up to the boundary scaling at sigma_max (c_skip' differs from c_skip by sigma_min terms)
    s0 = t[(t.model == "student") & (t.length == 0) & (t.steps == 1)].iloc[0]
    c1 = t[(t.model == "control") & (t.steps == 1)].iloc[0]
    assert s0.pixel_fd_heldout == pytest.approx(c1.pixel_fd_heldout, rel=1e-3)
    for f in ("memorization.png", "pairing.png", "quality.png", "tradeoff.png", "examples.png", "record.json"):
        assert (out / f).is_file()
    # The study's points are records of the one store: the report reads them, students paired with the teacher.
    from membench.store.records import iter_records

    recs = list(iter_records(out, "detection"))
    assert len(recs) == len(t) and {r.subject["study"] for r in recs} == {"distill-length"}
    row = t[(t.model == "student") & (t.length == 2) & (t.steps == 1)].iloc[0]
    rec = next(r for r in recs if r.subject["name"] == "distill-length/student/length=2/steps=1/nfe=1"
               and r.test["name"] == row.detector)
    assert rec.value("memorized") == row.memorized and rec.subject["teacher"].startswith("distill-length/teacher")
    assert main(["report", "--results-dir", str(out), "--quiet"]) == 0
    effect = pd.read_csv(out / "report" / "effect.csv")
    assert (effect["status"] == "ok").all() and len(effect) == len(t[t.model != "teacher"])
    # a rerun reuses the stored measurements: the table is the same
    assert main(["study", "distill-length", "--quick", "--quiet", "--set", "teacher=tiny", "--set", "n_samples=16",
                 "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "distill_length.csv"), t)


def test_training_time_then_distill_length_on_its_teacher(tmp_path, monkeypatch):
    out = tmp_path / "tt"
    assert main(["study", "training-time", "--quick", "--quiet", "--set", "n_samples=12", "--set", "save_teacher=true",
                 "--out", str(out)]) == 0
    t = pd.read_csv(out / "training_time.csv")
    assert sorted(t.train_steps.unique()) == [2, 4]
    assert set(t[t.train_steps == 4].model) == {"teacher", "control", "student"}
    assert set(t[t.train_steps == 2].model) == {"teacher", "control"}  # not in distill_checkpoints
    assert (out / "teacher" / "membench.json").is_file()
    dl = tmp_path / "dl"
    assert main(["study", "distill-length", "--quick", "--quiet", "--set", f"teacher={out / 'teacher'}",
                 "--set", "n_samples=12", "--set", "lengths=0,1", "--set", "sample_steps=1", "--out", str(dl)]) == 0
    assert len(pd.read_csv(dl / "distill_length.csv"))


def test_sweep_quick(tmp_path):
    out = tmp_path / "sw"
    assert main(["sweep", "--quick", "--quiet", "--set", "sizes=8", "--set", "n_samples=12", "--out", str(out)]) == 0
    t = pd.read_csv(out / "sweep.csv")
    assert list(t.n_train.unique()) == [8] and set(t.model) == {"teacher", "control", "student"}


def test_sweep_resumes_finished_sizes(tmp_path):
    import json

    out = tmp_path / "sw"
    base = ["sweep", "--quick", "--quiet", "--set", "n_samples=12", "--out", str(out)]
    assert main(base + ["--set", "sizes=8"]) == 0
    first = pd.read_csv(out / "sweep.csv")
    (part,) = (out / "records" / "study").glob("*/*.json")  # size 8's rows, a study record
    assert json.loads(part.read_text())["test"]["config"]["n_train"] == 8
    stamp = part.stat().st_mtime_ns
    assert main(base + ["--set", "sizes=8,16"]) == 0
    record = json.loads((out / "record.json").read_text())
    assert record["sizes_reused"] == [8] and part.stat().st_mtime_ns == stamp
    both = pd.read_csv(out / "sweep.csv")
    assert sorted(both.n_train.unique()) == [8, 16]
    pd.testing.assert_frame_equal(both[both.n_train == 8].reset_index(drop=True), first, check_dtype=False)
    # a different budget is a different experiment: size 8 is recomputed, not reused
    assert main(base + ["--set", "sizes=8", "--set", "steps=3"]) == 0
    assert json.loads((out / "record.json").read_text())["sizes_reused"] == []
    assert len(list((out / "records" / "study").glob("sweep_n_train=8/*.json"))) == 2  # both experiments kept


def test_sweep_corrupt_part_is_one_line_error(tmp_path, capsys):
    out = tmp_path / "sw"
    argv = ["sweep", "--quick", "--quiet", "--set", "sizes=8", "--set", "n_samples=8", "--out", str(out)]
    assert main(argv) == 0
    (part,) = (out / "records" / "study").glob("*/*.json")
    part.write_text("{not json")
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "corrupt record" in err[0]


def test_study_input_errors(tiny_teacher, capsys):
    assert main(["study", "distill-length", "--set", "teacher=nope"]) == 1
    assert main(["study", "distill-length", "--set", "lengths=-1"]) == 1
    assert main(["sweep", "--set", "sizes=1"]) == 1
    assert main(["study", "training-time", "--set", "unet=huge"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("membench: error:") for line in err)
