"""`membench validate`: tasks, metrics against sklearn, merged atomic tables, unavailable detectors."""
import numpy as np
import pandas as pd
import pytest

from membench.cli import main
from membench.analysis.validate import perturb_shift, separation


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_shift_moves_by_one_pixel():
    x = np.arange(2 * 64, dtype=np.float32).reshape(2, 1, 8, 8) / 128 - 0.5
    rng = np.random.default_rng(3)
    moves = np.random.default_rng(3).integers(0, 4, 2)
    y = perturb_shift(x, rng)
    for i, m in enumerate(moves):
        axis, step = [(1, 1), (1, -1), (2, 1), (2, -1)][m]
        rolled = np.roll(x[i, 0], step, axis=axis - 1)
        edge = (0 if step == 1 else -1)
        if axis == 1:
            rolled[edge, :] = -1
        else:
            rolled[:, edge] = -1
        np.testing.assert_array_equal(y[i, 0], rolled)


def test_separation_matches_sklearn(rng):
    from sklearn.metrics import roc_auc_score, roc_curve

    labels = rng.random(400) < 0.3
    scores = rng.normal(0, 1, 400) - 1.5 * labels  # a distance: lower = memorized
    flags = scores < -1
    sep = separation(scores, flags, labels, higher_is_memorized=False)
    assert sep["auc"] == pytest.approx(roc_auc_score(labels, -scores), abs=1e-12)
    fpr, tpr, _ = roc_curve(labels, -scores)
    n_neg = (~labels).sum()
    # the strictest ROC point whose FPR is at most floor(0.01 n_neg) / n_neg
    assert sep["tpr_at_1fpr"] == pytest.approx(tpr[fpr <= np.floor(0.01 * n_neg) / n_neg].max())
    assert sep["flag_rate_pos"] == pytest.approx(flags[labels].mean())
    assert sep["threshold_at_1fpr"] < 0  # reported in the detector's own units
    undefined = separation(scores, flags, np.ones(400, bool), False)
    assert np.isnan(undefined["auc"]) and "memorized" in undefined["note"]


def test_validate_cli_writes_merged_table(tiny_teacher, tmp_path, capsys):
    res = tmp_path / "res"
    args = ["validate", "--model", "tiny", "--detector", "l2ratio,carlini,embedsim", "--tasks",
            "copies-noise,generated", "--n-samples", "24", "--results-dir", str(res), "--quiet"]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "AUC (95% CI)" in out
    df = pd.read_csv(res / "validation.csv")
    assert len(df) == 6 and set(df.task) == {"copies-noise", "generated"}
    copies = df[df.task == "copies-noise"].set_index("detector")
    assert (copies.n_pos == 16).all() and (copies.n_neg == 300).all()
    assert copies.loc["l2ratio", "auc"] > 0.9  # noisy training images are still far closer to their source
    gen = df[(df.task == "generated") & (df.detector == "l2ratio")].iloc[0]
    assert "labels come from this detector" in gen.note
    assert (res / "validation.md").is_file() and not list(res.rglob("*.tmp"))
    # a second call replaces its own rows and keeps the others
    code, _, err = run_cli(capsys, "validate", "--model", "tiny", "--detector", "l2ratio", "--tasks", "copies-shift",
                           "--results-dir", str(res), "--quiet")
    assert code == 0, err
    df2 = pd.read_csv(res / "validation.csv")
    assert len(df2) == 7
    assert run_cli(capsys, *args)[0] == 0
    assert len(pd.read_csv(res / "validation.csv")) == 7


def test_validate_all_lists_unavailable(tiny_teacher, tmp_path, capsys):
    res = tmp_path / "res"
    code, out, err = run_cli(capsys, "validate", "--model", "tiny", "--detector", "all", "--tasks", "copies-noise",
                             "--results-dir", str(res), "--quiet")
    assert code == 0, err
    df = pd.read_csv(res / "validation.csv").set_index("detector")
    assert df.loc["sscd", "status"] == "unavailable" and "sscd_disc_mixup" in df.loc["sscd", "note"]
    ok = df[df.status == "ok"]
    assert {"l2ratio", "carlini", "digits-sim", "embedsim", "sharpness"} <= set(ok.index)
    assert ok["auc"].between(0, 1).all()


@pytest.mark.parametrize("argv,match", [
    (["--detector", "sscd"], "sscd_disc_mixup.torchvision.pt are missing"),
    (["--tasks", "copies-blur"], "unknown task"),
    (["--noise", "3"], "--noise"),
    (["--detector", "l2ratoi"], "did you mean l2ratio"),
])
def test_validate_bad_input(tiny_teacher, tmp_path, capsys, argv, match):
    res = tmp_path / "res"
    code, _, err = run_cli(capsys, "validate", "--model", "tiny", "--tasks", "copies-noise", *argv,
                           "--results-dir", str(res), "--quiet")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and match in lines[0]
    assert not (res / "validation.csv").exists()
