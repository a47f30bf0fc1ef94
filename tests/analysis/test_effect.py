"""Paired statistics of the effect of distillation, against published values and independent counts."""
import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from membench.analysis.check import difference_interval
from membench.analysis.effect import compare, effect_table, mcnemar, pair_arrays, paired_difference_interval
from membench.core.errors import MembenchError
from membench.store.records import Metric, Record, iter_records, read_record, record_path, write_record


def test_paired_interval_matches_published_example():
    # Fagerland, Lydersen & Laake (2017), Cavo et al. 2012 table [[59, 6], [16, 80]]:
    # Newcombe square-and-add: estimate -0.0621 (95% CI -0.1186 to -0.0046).
    d, lo, hi = paired_difference_interval(59, 6, 16, 80)
    assert (round(d, 4), round(lo, 4), round(hi, 4)) == (-0.0621, -0.1186, -0.0046)


def test_independent_interval_matches_published_example():
    # Same book, Perondi et al. 2004 [[7, 27], [1, 33]]: Newcombe hybrid score 0.1765 (0.0189 to 0.3404).
    d, lo, hi = difference_interval(7, 34, 1, 34)
    assert (round(d, 4), round(lo, 4), round(hi, 4)) == (0.1765, 0.0189, 0.3404)


def test_paired_interval_approaches_wald_for_large_n():
    n11, n10, n01, n00 = 3000, 900, 600, 5500
    n = n11 + n10 + n01 + n00
    d, lo, hi = paired_difference_interval(n11, n10, n01, n00)
    se = math.sqrt(((n10 + n01) - (n10 - n01) ** 2 / n)) / n  # paired Wald
    assert d == pytest.approx((n10 - n01) / n)
    assert lo == pytest.approx(d - 1.959964 * se, abs=4e-4) and hi == pytest.approx(d + 1.959964 * se, abs=4e-4)


def test_paired_interval_coverage_is_near_nominal():
    rng = np.random.default_rng(0)
    probs = np.array([0.10, 0.15, 0.05, 0.70])  # both, first only, second only, neither
    true = probs[1] - probs[2]
    hits = 0
    for _ in range(2000):
        c = rng.multinomial(150, probs)
        _, lo, hi = paired_difference_interval(*map(int, c))
        hits += lo <= true <= hi
    assert 0.93 <= hits / 2000 <= 0.975


@pytest.mark.parametrize("b,c", [(6, 16), (0, 9), (12, 12), (1, 40), (0, 0), (230, 270)])
def test_mcnemar_matches_binomial_test(b, c):
    exact, midp = mcnemar(b, c)
    if b + c == 0:
        assert exact == midp == 1.0
        return
    # Independent reference: the binomial(m, 1/2) probabilities summed from log-gamma terms.
    m, k = b + c, min(b, c)
    pmf = [math.exp(math.lgamma(m + 1) - math.lgamma(i + 1) - math.lgamma(m - i + 1) - m * math.log(2))
           for i in range(k + 1)]
    assert exact == pytest.approx(min(1.0, 2 * math.fsum(pmf)), rel=1e-9)
    ref_mid = min(1.0, 2 * (math.fsum(pmf) - 0.5 * pmf[k]))
    assert midp == pytest.approx(ref_mid, rel=1e-9) and midp <= exact


def _arrays(noise, flags, nearest, scores, d1=None):
    out = {"noise_index": np.asarray(noise), "flags": np.asarray(flags, bool), "nearest": np.asarray(nearest),
           "scores": np.asarray(scores, float)}
    if d1 is not None:
        out["extra_d1"] = np.asarray(d1, float)
    return out


def test_compare_counts_against_direct_enumeration(rng):
    n = 300
    t_flag, s_flag = rng.random(n) < 0.4, rng.random(n) < 0.3
    t_near, s_near = rng.integers(0, 5, n), rng.integers(0, 5, n)
    t_d1, s_d1 = rng.random(n), rng.random(n)
    # The student's arrays come in another order and cover only 250 of the teacher's noises.
    perm = rng.permutation(n)[:250]
    teacher = _arrays(np.arange(n), t_flag, t_near, t_d1, t_d1)
    student = _arrays(perm, s_flag[perm], s_near[perm], s_d1[perm], s_d1[perm])
    row = compare(pair_arrays(teacher, student, higher_is_memorized=False))

    # Independent count: walk over the noises by hand.
    cats = {"transferred": 0, "switched": 0, "suppressed": 0, "introduced": 0, "neither": 0}
    same = farther = 0
    for i in perm:
        if t_flag[i] and s_flag[i]:
            cats["transferred" if t_near[i] == s_near[i] else "switched"] += 1
        elif t_flag[i]:
            cats["suppressed"] += 1
        elif s_flag[i]:
            cats["introduced"] += 1
        else:
            cats["neither"] += 1
        if t_near[i] == s_near[i]:
            same += 1
            farther += s_d1[i] > t_d1[i]
    assert row["n_paired"] == 250
    for k, v in cats.items():
        assert row[f"n_{k}"] == v, k
    assert row["teacher_memorized"] == pytest.approx(t_flag[perm].mean())
    assert row["student_memorized"] == pytest.approx(s_flag[perm].mean())
    assert row["diff"] == pytest.approx(s_flag[perm].mean() - t_flag[perm].mean())
    assert row["diff_ci_low"] < row["diff"] < row["diff_ci_high"]
    assert row["same_nearest"] == pytest.approx(same / 250)
    assert row["student_farther"] == pytest.approx(farther / same)
    assert row["transfer_rate"] == pytest.approx(cats["transferred"] / t_flag[perm].sum())
    assert row["mcnemar_p"] == pytest.approx(sps.binomtest(cats["suppressed"], cats["suppressed"] + cats["introduced"]).pvalue)
    assert row["distance_source"] == "d1"
    for k in ("teacher_memorized", "transferred", "same_nearest"):
        assert row[f"{k}_ci_low"] <= row[k] <= row[f"{k}_ci_high"]


def test_same_image_less_precise_is_visible_without_threshold():
    # Student lands on the teacher's training image from every noise, only farther: the
    # threshold test passes it (0 flagged) but same_nearest = 1 and student_farther = 1.
    k = 50
    teacher = _arrays(np.arange(k), np.ones(k), np.arange(k) % 7, np.full(k, 0.05), np.full(k, 0.2))
    student = _arrays(np.arange(k), np.zeros(k), np.arange(k) % 7, np.full(k, 0.6), np.full(k, 1.5))
    row = compare(pair_arrays(teacher, student, False))
    assert row["n_suppressed"] == k and row["student_memorized"] == 0.0
    assert row["same_nearest"] == 1.0 and row["student_farther"] == 1.0
    assert row["same_nearest_distance_ratio_median"] == pytest.approx(7.5)
    assert row["diff_ci_high"] < 0 and row["mcnemar_p"] < 1e-10


def test_score_orientation_for_similarity_detectors():
    # No d1: the score stands in for the distance, negated when higher means memorized.
    t = _arrays(np.arange(4), [1, 1, 0, 0], [0, 1, 2, 3], [0.9, 0.8, 0.1, 0.2])
    s = _arrays(np.arange(4), [1, 0, 0, 0], [0, 1, 2, 3], [0.95, 0.3, 0.1, 0.1])
    p = pair_arrays(t, s, higher_is_memorized=True)
    assert p.distance_source == "-score"
    row = compare(p)
    assert row["student_farther"] == pytest.approx(2 / 4)  # noises 1 and 3 have lower similarity


def _write(res, name, role, teacher, n, flags, nearest, det="l2ratio", seed=0, fp="abc"):
    flags = np.asarray(flags, bool)
    rec = Record(kind="detection",
                 subject={"name": name, "role": role, "teacher": teacher, "method": "cd" if role == "student" else None,
                          "sampler": "x", "nfe": 1, "dataset": "digits:n=16", "checkpoint_hash": "h"},
                 samples={"key": f"k-{name}-{n}-{seed}", "n": n, "seed": seed, "source": "model"},
                 data={"spec": "digits:n=16", "fingerprint": fp},
                 test={"name": det, "base": "l2ratio", "config": {"threshold": 0.33}, "score": "l2_ratio",
                       "higher_is_memorized": False},
                 metrics={"memorized": Metric(float(flags.mean()), (0.0, 1.0), "wilson95", "samples", True)},
                 stats={"n_flagged": int(flags.sum())},
                 arrays={"noise_index": np.arange(n), "scores": np.where(flags, 0.1, 0.9), "flags": flags,
                         "nearest": np.asarray(nearest)})
    return write_record(res, rec)


def test_effect_table_pairs_by_detector_seed_and_reports_problems(tmp_path, rng):
    res = tmp_path / "res"
    t_flags, s_flags = rng.random(60) < 0.5, rng.random(40) < 0.2
    teach = _write(res, "teach", "teacher", None, 60, t_flags, rng.integers(0, 4, 60))
    _write(res, "stud", "student", "teach", 40, s_flags, rng.integers(0, 4, 40))
    _write(res, "stud", "student", "teach", 40, s_flags, rng.integers(0, 4, 40), seed=1)  # no teacher for seed 1
    _write(res, "ctrl", "control", "teach", 30, np.ones(30), np.zeros(30, int))
    broken = _write(res, "stud2", "student", "teach", 20, np.ones(20), np.zeros(20, int))
    broken.with_suffix(".npz").write_bytes(b"not a zip")
    (teach.parent / "junk.json").write_text("{ not json")
    problems = []
    with pytest.warns(UserWarning, match="junk.json"):
        records = list(iter_records(res, problems=problems))
    assert len(problems) == 1 and "junk.json" in problems[0]
    df = effect_table(records, problems).set_index(["student", "seed"])
    ok = df.loc[("stud", 0)]
    assert ok["status"] == "ok" and ok["n_paired"] == 40
    assert ok["teacher_memorized"] == pytest.approx(t_flags[:40].mean())  # only the common noises
    assert df.loc[("stud", 1)]["status"] == "no teacher result"
    assert "membench run --model teach" in df.loc[("stud", 1)]["note"]
    assert df.loc[("ctrl", 0)]["n_paired"] == 30 and df.loc[("ctrl", 0)]["student_memorized"] == 1.0
    assert df.loc[("stud2", 0)]["status"] == "error" and len(problems) == 2 and "unreadable" in problems[1]


def test_record_missing_required_keys_is_corrupt(tmp_path):
    res = tmp_path / "res"
    path = res / "records" / "detection" / "m" / "l2ratio-x.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"schema": 2, "kind": "detection", "subject": {"name": "m"}, "samples": {"n": 3}}))
    problems = []
    with pytest.warns(UserWarning, match="missing"):
        assert list(iter_records(res, problems=problems)) == []
    assert "missing data, test, metrics" in problems[0]


def test_record_paths_keep_dotted_detector_names_apart(tmp_path):
    def rec(det):
        return Record("detection", {"name": "m"}, {"key": "k", "n": 1, "seed": 0}, {"fingerprint": "f"}, {"name": det})

    a, b = record_path(tmp_path, rec("l2ratio:threshold=0.25")), record_path(tmp_path, rec("l2ratio:threshold=0.5"))
    assert a != b and a.name.startswith("l2ratio_threshold=0.25-") and a.name.endswith(".json")


def test_old_schema_is_refused_with_one_line(tmp_path):
    path = tmp_path / "records" / "detection" / "m" / "x.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"schema": 1, "model": {"name": "m"}}))
    with pytest.raises(MembenchError, match="schema 1 is not 2"):
        read_record(path)
