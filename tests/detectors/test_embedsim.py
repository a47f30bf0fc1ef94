"""Embedding-similarity detectors (sscd, clip, digits-sim, embedsim) and their failure modes through the CLI."""
import json

import numpy as np
import pandas as pd
import pytest

from membench.cli import main
from membench.data import load_dataset
from membench.detectors import DetectorContext, make_detector
from membench.core.errors import MembenchError

from tests.features.embedder_fixtures import tiny_clip, tiny_sscd  # noqa: F401  (fixtures)


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_embedsim_pixels_matches_brute_force_cosine(rng, tmp_path):
    train = load_dataset("digits:n=64")
    samples = np.clip(rng.normal(0, 0.5, (50, 1, 8, 8)), -1, 1).astype(np.float32)
    out = make_detector("embedsim").detect(samples, train, DetectorContext(cache_dir=tmp_path))
    s = samples.reshape(50, -1).astype(np.float64)
    t = train.images.reshape(64, -1).astype(np.float64)
    s -= s.mean(1, keepdims=True)
    t -= t.mean(1, keepdims=True)
    cos = (s / np.linalg.norm(s, axis=1, keepdims=True)) @ (t / np.linalg.norm(t, axis=1, keepdims=True)).T
    np.testing.assert_allclose(out.scores, cos.max(1), atol=1e-5)
    np.testing.assert_array_equal(out.nearest, cos.argmax(1))
    np.testing.assert_array_equal(out.flags, out.scores > 0.9)
    assert out.info["p95"] == pytest.approx(np.quantile(out.scores, 0.95))


def test_digits_sim_flags_copies_not_heldout(tmp_path):
    ds = load_dataset("digits:n=64")
    copies = np.clip(ds.images + 0.05 * np.random.default_rng(1).standard_normal(ds.images.shape), -1, 1).astype(np.float32)
    det = make_detector("digits-sim")
    ctx = DetectorContext(cache_dir=tmp_path)
    out = det.detect(copies, ds, ctx)
    np.testing.assert_array_equal(out.nearest, np.arange(64))  # each copy retrieves its own source
    assert out.flags.mean() > 0.9
    fresh = det.detect(ds.heldout, ds, ctx)
    assert fresh.flags.mean() < 0.1 and out.info["train_embeddings_cached"] is False
    assert fresh.info["train_embeddings_cached"] is True


def test_sscd_detector_on_tiny_state_dict(tiny_sscd, tmp_path):  # noqa: F811
    ds = load_dataset("digits:n=16")
    det = make_detector(f"sscd:weights={tiny_sscd},size=64")
    out = det.detect(ds.images, ds, DetectorContext(cache_dir=tmp_path))
    np.testing.assert_allclose(out.scores, 1.0, atol=1e-5)  # each training image is its own nearest
    assert out.flags.all() and out.info["note"] == "sscd: gray replicated to RGB; resized 8x8 -> 64x64 (upsampled, bilinear)"
    assert "CC-BY-NC" in out.info["license"]


def test_config_key_follows_embedder_weights(tiny_sscd, tmp_path):  # noqa: F811
    a = make_detector(f"sscd:weights={tiny_sscd}").config()["embedder_id"]
    other = tmp_path / "other.pt"
    other.write_bytes(tiny_sscd.read_bytes() + b"\0")
    assert make_detector(f"sscd:weights={other}").config()["embedder_id"] != a
    assert make_detector("sscd").config()["embedder_id"] == "unavailable"


@pytest.mark.parametrize("spec,match", [
    ("sscd:threshold=1.5", "threshold"), ("clip:threshold=-2", "threshold"), ("digits-sim:threshold=true", "threshold"),
    ("embedsim:embedder=nope", "unknown feature extractor"), ("embedsim:embedder=pixels:bogus=1", "unknown option"),
])
def test_bad_configs(spec, match):
    with pytest.raises(MembenchError, match=match):
        make_detector(spec)


def test_cli_all_marks_missing_weights_unavailable(tiny_teacher, tmp_path, capsys):
    res = tmp_path / "res"
    code, out, err = run_cli(capsys, "run", "--model", "tiny", "--detector", "all", "--n-samples", "12",
                             "--results-dir", str(res), "--quiet")
    assert code == 0, err
    board = pd.read_csv(res / "leaderboard.csv").set_index("detector")
    from membench.core.registry import names
    from membench.detectors import DETECTORS, OPT_IN_GROUP

    everything = set(names("detectors")) - set(DETECTORS.names(tag=OPT_IN_GROUP))  # `all`: not the opt-in group
    assert everything and set(board.index) == everything  # every detector of `all` has a row
    for name in ("sscd", "clip"):
        assert board.loc[name, "status"] == "unavailable"
    assert "membench weights fetch sscd-disc-mixup" in board.loc["sscd", "note"]
    assert "membench weights fetch clip-vit-b-32-laion2b" in board.loc["clip", "note"]
    ok = board[board.status == "ok"]
    assert set(ok.index) == everything - {"sscd", "clip"}
    assert ok["memorized"].between(0, 1).all()
    assert "unavailable: sscd: weights" in out
    sharp = json.loads(next((res / "records" / "detection" / "tiny").glob("sharpness-*.json")).read_text())
    assert sharp["info"]["density"] == "self"


def test_cli_named_unavailable_detector_fails_one_line(tiny_teacher, tmp_path, capsys):
    res = tmp_path / "res"
    code, out, err = run_cli(capsys, "run", "--model", "tiny", "--detector", "sscd", "--n-samples", "8",
                             "--results-dir", str(res), "--quiet")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "sscd_disc_mixup.torchvision.pt are missing" in lines[0]
    assert not (res / "records").exists()


def test_cli_detect_with_user_weights_and_bad_channels(tiny_sscd, tmp_path, capsys):  # noqa: F811
    ds = load_dataset("digits:n=16")
    np.savez(tmp_path / "s.npz", images=ds.images[:4])
    code, out, err = run_cli(capsys, "detect", "--samples", str(tmp_path / "s.npz"), "--train", "digits:n=16",
                             "--detector", f"sscd:weights={tiny_sscd},size=64", "--quiet")
    assert code == 0, err
    assert "1.000" in out  # all four are training images
    two = np.zeros((4, 2, 8, 8), np.float32)
    np.savez(tmp_path / "two.npz", images=two)
    code, _, err = run_cli(capsys, "detect", "--samples", str(tmp_path / "two.npz"), "--train", str(tmp_path / "two.npz"),
                           "--detector", "digits-sim", "--quiet")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "got 2" in err
    code, _, err = run_cli(capsys, "detect", "--samples", str(tmp_path / "s.npz"), "--train", "digits:n=16",
                           "--detector", "sscd:threshold=3", "--quiet")
    assert code == 1 and "threshold" in err
