"""`membench baseline` + `membench check`: passes on its own baseline, fails on a regressed one."""
import json

import pandas as pd
import pytest

from membench.analysis.check import EXIT_REGRESSED, _quality_verdict, read_baseline
from membench.cli import main
from membench.core.errors import MembenchError
from membench.core.stats import wilson_interval


def cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def baseline(tiny_teacher, tmp_path, capsys):
    path = tmp_path / "baseline.json"
    # threshold=1.0 flags every sample (memorized = 1): a row whose rise can be simulated.
    code, out, err = cli(capsys, "baseline", "--out", str(path), "--model", "tiny", "--detector",
                         "l2ratio,l2ratio:threshold=1.0", "--n-samples", "40", "--results-dir", str(tmp_path / "r"),
                         "--quiet")
    assert code == 0, err
    return path


def test_check_passes_on_own_baseline_with_fewer_samples(baseline, tmp_path, capsys):
    data = read_baseline(baseline)
    assert [r["detector"] for r in data["rows"]] == ["l2ratio", "l2ratio:threshold=1.0"]
    assert "membench baseline --out" in data["command"] and len(data["rows"][0]["checkpoint_hash"]) == 64
    code, out, err = cli(capsys, "check", "--baseline", str(baseline), "--n-samples", "20",
                         "--results-dir", str(tmp_path / "c"), "--quiet")
    assert code == 0, out + err
    assert "passed" in out and "REGRESSED" not in out
    assert "(n=20)" in out  # really recomputed with the smaller count


def test_check_uses_current_checkpoint_not_stale_results(baseline, tiny_teacher, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    chk = tmp_path / "c"
    # the perturbed weights below change quality a lot; this test is about which result is used
    args = ["check", "--baseline", str(baseline), "--results-dir", str(chk), "--quality-tolerance", "100", "--quiet"]
    assert cli(capsys, *args)[0] == 0  # results of the original checkpoint now sit in the store
    weights = tiny_teacher / "unet" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(weights)
    name = next(k for k in tensors if k.endswith("conv_out.bias"))
    tensors[name] = tensors[name] + 0.5
    save_file(tensors, weights)
    code, out, err = cli(capsys, *args)
    assert code == 0, out + err
    assert out.count("note: tiny / ") == 2 and "checkpoint changed since the baseline" in out
    rows = [ln for ln in out.splitlines() if ln.startswith("| tiny / l2ratio (seed 0)") and "memorized" in ln]
    assert len(rows) == 1  # one row, from the new checkpoint's result
    assert len(list((chk / "records" / "detection" / "tiny").glob("*.json"))) == 4  # old and new results both kept


def _regress(path, detector, flagged):
    data = json.loads(path.read_text())
    for r in data["rows"]:
        if r["detector"] == detector:
            r["n_flagged"] = flagged
            r["memorized"] = flagged / r["n_samples"]
            r["ci_low"], r["ci_high"] = wilson_interval(flagged, r["n_samples"])
    path.write_text(json.dumps(data))


def test_check_fails_when_memorization_rose(baseline, tmp_path, capsys):
    # Pretend the baseline model memorized nothing under threshold=1.0: now it memorizes everything.
    _regress(baseline, "l2ratio:threshold=1.0", 0)
    code, out, err = cli(capsys, "check", "--baseline", str(baseline), "--n-samples", "20",
                         "--results-dir", str(tmp_path / "c"), "--quiet")
    assert code == EXIT_REGRESSED
    regressed = [l for l in out.splitlines() if l.startswith("REGRESSED:")]
    assert len(regressed) == 1 and "tiny / l2ratio:threshold=1.0" in regressed[0]
    assert "memorization rose" in regressed[0]


def test_check_takes_intervals_into_account(baseline, tmp_path, capsys):
    # 36 of 40 flagged in the baseline vs 20 of 20 now: higher, but the interval of the
    # difference includes +0.02, so it is not a regression at this sample size ...
    _regress(baseline, "l2ratio:threshold=1.0", 36)
    args = ["check", "--baseline", str(baseline), "--n-samples", "20", "--results-dir", str(tmp_path / "c"), "--quiet"]
    code, out, _ = cli(capsys, *args)
    assert code == 0, out
    assert "| ok " in out and "difference +0.100" in out
    # A negative tolerance is bad input, not a stricter check.
    code, _, err = cli(capsys, *args, "--tolerance", "-0.1")
    assert code == 1 and "--tolerance must be in [0, 1)" in err


def test_quality_verdicts_follow_direction():
    base = {"fid_heldout": 10.0, "precision_heldout": 0.8}
    assert _quality_verdict("fid_heldout", base, pd.Series({"fid_heldout": 10.9}), 0.1)[0] == "ok"
    assert _quality_verdict("fid_heldout", base, pd.Series({"fid_heldout": 11.5}), 0.1)[0] == "REGRESSED"
    assert _quality_verdict("fid_heldout", base, pd.Series({"fid_heldout": 2.0}), 0.1)[0] == "ok"  # better
    assert _quality_verdict("precision_heldout", base, pd.Series({"precision_heldout": 0.6}), 0.1)[0] == "REGRESSED"
    assert _quality_verdict("precision_heldout", base, pd.Series({"precision_heldout": 0.95}), 0.1)[0] == "ok"
    # With intervals on both sides, overlapping intervals are not a regression.
    b = {**base, "fid_heldout_ci_low": 8.0, "fid_heldout_ci_high": 12.0}
    new = pd.Series({"fid_heldout": 13.0, "fid_heldout_ci_low": 11.0, "fid_heldout_ci_high": 15.0})
    assert _quality_verdict("fid_heldout", b, new, 0.1)[0] == "ok"
    new = pd.Series({"fid_heldout": 16.0, "fid_heldout_ci_low": 14.0, "fid_heldout_ci_high": 18.0})
    assert _quality_verdict("fid_heldout", b, new, 0.1)[0] == "REGRESSED"


GOOD_ROW = {"model": "tiny", "detector": "l2ratio", "seed": 0, "n_samples": 10, "n_flagged": 0,
            "memorized": 0.0, "ci_low": 0.0, "ci_high": 0.2775}


@pytest.mark.parametrize("content,match", [
    (None, "baseline not found"),
    ("{ nope", "not JSON"),
    (json.dumps([1, 2]), "not a membench baseline"),
    (json.dumps({"format": "membench-baseline", "schema": 2, "rows": [GOOD_ROW]}), "schema 2 is not supported"),
    (json.dumps({"format": "membench-baseline", "schema": 1, "rows": []}), "non-empty list"),
    (json.dumps({"format": "membench-baseline", "schema": 1, "rows": [{**GOOD_ROW, "memorized": "x"}]}), "'memorized'"),
    (json.dumps({"format": "membench-baseline", "schema": 1, "rows": [{**GOOD_ROW, "n_flagged": 11}]}), "n_flagged 11"),
    (json.dumps({"format": "membench-baseline", "schema": 1, "rows": [{**GOOD_ROW, "memorized": 0.5}]}), "do not match"),
    (json.dumps({"format": "membench-baseline", "schema": 1, "rows": [GOOD_ROW, GOOD_ROW]}), "duplicate"),
    (json.dumps({"format": "membench-baseline", "schema": 1, "rows": [{**GOOD_ROW, "model": "nosuch"}]}),
     "unknown model 'nosuch'"),
])
def test_bad_baseline_one_line(tiny_teacher, tmp_path, capsys, content, match):
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content)
    code, out, err = cli(capsys, "check", "--baseline", str(path), "--results-dir", str(tmp_path / "c"), "--quiet")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("membench: error:") and match in lines[0]
    assert not (tmp_path / "c").exists()  # nothing computed, nothing written


def test_committed_baseline_is_valid():
    from pathlib import Path

    from membench.models.specs import model_names

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "leaderboard-baseline.json"
    data = read_baseline(path)
    assert {r["model"] for r in data["rows"]} <= set(model_names())
    assert data["command"].startswith("membench baseline")
    with pytest.raises(MembenchError, match="not in the baseline"):
        from membench.analysis.check import check

        check(path, models="no-such-model")
