"""End-to-end through the CLI entry point (in-process) on a tiny trained teacher."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

import membench
from membench.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_writes_results_and_leaderboard(tiny_teacher, tmp_path, capsys):
    res = tmp_path / "res"
    code, out, err = run_cli(capsys, "run", "--model", "tiny", "--detector", "l2ratio", "--n-samples", "40",
                             "--results-dir", str(res), "--quiet")
    assert code == 0, err
    assert "tiny" in out and "memorized" in out
    board = pd.read_csv(res / "leaderboard.csv")
    assert list(board["model"]) == ["tiny"] and board["n_samples"].item() == 40
    row = board.iloc[0]
    assert 0 <= row.ci_low <= row.memorized <= row.ci_high <= 1
    files = list((res / "records" / "detection" / "tiny").glob("*.json"))
    assert len(files) == 1
    rec = json.loads(files[0].read_text())
    arrays = np.load(files[0].with_suffix(".npz"))
    assert rec["stats"]["n_flagged"] == int(arrays["flags"].sum())
    assert rec["metrics"]["memorized"]["over"] == "samples" and rec["metrics"]["memorized"]["higher_is_memorized"]
    np.testing.assert_array_equal(arrays["noise_index"], np.arange(40))
    assert not list(res.rglob("*.tmp"))


def test_rerun_skips_completed_pairs(tiny_teacher, tmp_path, capsys):
    res = tmp_path / "res"
    args = ["run", "--model", "tiny", "--n-samples", "20", "--results-dir", str(res), "--quiet"]
    assert run_cli(capsys, *args)[0] == 0
    result = next((res / "records" / "detection" / "tiny").glob("*.json"))
    stamp = result.stat().st_mtime_ns
    shutil.rmtree(tiny_teacher.parent.parent / "cache", ignore_errors=True)
    assert run_cli(capsys, *args)[0] == 0
    assert result.stat().st_mtime_ns == stamp  # not recomputed
    assert run_cli(capsys, *args, "--force")[0] == 0
    assert result.stat().st_mtime_ns != stamp


def test_python_api_matches_cli(tiny_teacher, tmp_path):
    df = membench.run(models="tiny", detectors="l2ratio", n_samples=20, results_dir=tmp_path / "r")
    assert isinstance(df, pd.DataFrame) and len(df) == 1
    again = membench.run(models=["tiny"], detectors=["l2ratio"], n_samples=20, results_dir=tmp_path / "r2")
    assert df["memorized"].item() == again["memorized"].item()  # cached samples, same answer


@pytest.mark.parametrize("argv,match", [
    (["run", "--model", "techer"], "did you mean teacher"),
    (["run", "--model", "tiny", "--detector", "l2ratoi"], "did you mean l2ratio"),
    (["run", "--model", "tiny", "--n-samples", "0"], "positive"),
    (["run", "--model", "tiny", "--n-samples", "-5"], "positive"),
    (["run", "--model", "tiny", "--detector", "l2ratio:threshold=7"], "threshold"),
    (["detect", "--samples", "/nonexistent.npz", "--train", "digits:n=16"], "not found"),
    (["train", "--model", "tiny"], "already exists"),
])
def test_bad_input_one_line_nonzero(tiny_teacher, tmp_path, capsys, argv, match):
    code, out, err = run_cli(capsys, *argv, "--quiet") if argv[0] != "train" else run_cli(capsys, *argv)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("membench: error:")
    assert match in lines[0]


def test_corrupt_checkpoint_leaves_nothing(tiny_teacher, tmp_path, capsys):
    (tiny_teacher / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"garbage")
    res = tmp_path / "res"
    code, _, err = run_cli(capsys, "run", "--model", "tiny", "--n-samples", "5", "--results-dir", str(res), "--quiet")
    assert code == 1 and "checkpoint" in err
    assert not (res / "records").exists() and not (res / "leaderboard.csv").exists()


def test_detect_on_sample_file(tmp_path, capsys):
    from membench.data import load_dataset

    ds = load_dataset("digits:n=32")
    samples = np.concatenate([ds.images[:10] + 0.01, ds.heldout[:30]])
    np.savez(tmp_path / "s.npz", images=np.clip(samples, -1, 1))
    np.savez(tmp_path / "train.npz", images=ds.images)
    per = tmp_path / "per.csv"
    code, out, err = run_cli(capsys, "detect", "--samples", str(tmp_path / "s.npz"), "--train", str(tmp_path / "train.npz"),
                             "--per-sample", str(per), "--quiet")
    assert code == 0, err
    table = pd.read_csv(per)
    assert table["flag"][:10].all() and table["flag"][10:].mean() < 0.1
    np.testing.assert_array_equal(table["nearest_train_index"][:10], np.arange(10))
    assert "0.250" in out  # 10 of 40 flagged


def test_detect_shape_mismatch(tmp_path, capsys):
    np.savez(tmp_path / "s.npz", images=np.zeros((4, 1, 16, 16), np.float32))
    code, _, err = run_cli(capsys, "detect", "--samples", str(tmp_path / "s.npz"), "--train", "digits:n=16", "--quiet")
    assert code == 1 and "shape" in err


def test_list(capsys):
    assert run_cli(capsys, "list", "detectors")[1].split() == ["l2ratio"] or "l2ratio" in run_cli(capsys, "list", "detectors")[1]
    assert "teacher" in run_cli(capsys, "list", "models")[1]
